"""Executors: cells are independent, so they run in-process (one after another, or one per GPU
in a process pool) or as Slurm jobs through submitit (one job per cell). Every executor goes
through :func:`run_cell_job`, so the resume rules are the same everywhere: a job re-runs
nothing that its cell directory already holds."""
from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from vibench.errors import VibenchError
from vibench.runner.cells import CellPlan

Outcome = dict[str, Any]
JobOptions = dict[str, Any]


def run_cell_job(plan: dict[str, Any], options: JobOptions) -> Outcome:
    """Run one cell from plain data (picklable for process pools and Slurm)."""
    from vibench.runner.datasources import DataSources
    from vibench.runner.execute import run_cell

    device = options["device"]
    gpu = os.environ.get("VIBENCH_WORKER_GPU")
    if gpu is not None and device != "cpu":
        device = f"cuda:{gpu}"
    outcome = run_cell(
        CellPlan.from_dict(plan),
        out=Path(options["out"]),
        data=DataSources.from_dict(options["data"]),
        device=device,
        overwrite=options["overwrite"],
    )
    return outcome.to_dict()


def run_local(plans: Sequence[CellPlan], options: JobOptions, *, on_done: Callable[[Outcome], None],
              on_phase: Callable[[str, str], None] | None = None) -> list[Outcome]:
    """In-process, one cell after another (phases reported through `on_phase`)."""
    from vibench.runner.datasources import DataSources
    from vibench.runner.execute import run_cell

    outcomes = []
    for plan in plans:
        outcome = run_cell(plan, out=Path(options["out"]), data=DataSources.from_dict(options["data"]),
                           device=options["device"], overwrite=options["overwrite"],
                           progress=(lambda phase, _p=plan: on_phase(_p.cell.cell_id, phase)) if on_phase else None)
        outcomes.append(outcome.to_dict())
        on_done(outcomes[-1])
    return outcomes


def _init_worker(queue: Any) -> None:
    os.environ["VIBENCH_WORKER_GPU"] = str(queue.get())


def run_gpu_pool(plans: Sequence[CellPlan], options: JobOptions, gpus: Sequence[int], *,
                 on_done: Callable[[Outcome], None]) -> list[Outcome]:
    """One worker process per GPU, each running one cell at a time on its own GPU."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    for g in gpus:
        queue.put(g)
    outcomes = []
    with ProcessPoolExecutor(max_workers=len(gpus), mp_context=ctx, initializer=_init_worker, initargs=(queue,)) as pool:
        futures = [pool.submit(run_cell_job, p.to_dict(), options) for p in plans]
        for fut in as_completed(futures):
            outcomes.append(fut.result())
            on_done(outcomes[-1])
    return outcomes


def make_submitit_executor(folder: Path, *, cluster: str = "slurm", parameters: dict[str, Any] | None = None) -> Any:
    """A submitit executor: ``cluster="slurm"`` for Slurm, ``"local"`` runs the same jobs as
    local subprocesses (used by the tests)."""
    try:
        import submitit
    except ImportError:  # pragma: no cover - submitit is a dependency
        raise VibenchError("the slurm executor needs the 'submitit' package (pip install submitit)") from None
    executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
    params = {"timeout_min": 24 * 60, "gpus_per_node": 1, "tasks_per_node": 1, "cpus_per_task": 8}
    if cluster == "local":
        params = {"timeout_min": 60}
    params.update(parameters or {})
    executor.update_parameters(**params)
    return executor


def run_submitit(plans: Iterable[CellPlan], options: JobOptions, *, folder: Path, cluster: str = "slurm",
                 parameters: dict[str, Any] | None = None, on_done: Callable[[Outcome], None]) -> list[Outcome]:
    """Submit one job per cell and wait for them; a job that dies is reported as failed."""
    executor = make_submitit_executor(folder, cluster=cluster, parameters=parameters)
    plans = list(plans)
    jobs = [executor.submit(run_cell_job, p.to_dict(), options) for p in plans]
    outcomes = []
    for plan, job in zip(plans, jobs):
        try:
            outcome = job.result()
        except Exception as exc:  # the job itself died (node failure, timeout)
            outcome = {"cell": plan.cell.to_dict(), "status": "failed", "error": f"job {job.job_id}: {exc}",
                       "seconds": 0.0, "rows": []}
        outcomes.append(outcome)
        on_done(outcome)
    return outcomes
