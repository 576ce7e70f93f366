"""Executors: cells are independent, so they run in-process (one after another, or one per GPU
in a process pool) or as Slurm jobs through submitit (one job per cell). Every executor goes
through :func:`run_cell_job`, so the resume rules are the same everywhere: a job re-runs
nothing that its cell directory already holds, and every executor takes the cell's lock and comes
back at the end to the cells another process was computing (vibench.store.lock)."""
from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from vibench.errors import VibenchError
from vibench.runner.cells import CellPlan
from vibench.runner.datasources import DataSources
from vibench.runner.threads import configure_torch

Outcome = dict[str, Any]
JobOptions = dict[str, Any]


def run_cell_job(plan: dict[str, Any], options: JobOptions) -> Outcome:
    """Run one cell from plain data (picklable for process pools and Slurm). With
    ``options["wait"]`` false a cell locked by another process comes back as "busy"."""
    # lazy: spawned pool workers import this module before _init_worker sizes OpenMP; execute imports torch
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
        wait=bool(options.get("wait", True)),
    )
    return outcome.to_dict()


def _two_passes(plans: Sequence[CellPlan], run: Callable[[list[CellPlan], bool], Iterable[Outcome]],
                on_done: Callable[[Outcome], None]) -> list[Outcome]:
    """Run every cell without waiting for locks, then come back to the cells another process
    was computing and wait for them (they are usually skipped then, finished by the other)."""
    outcomes, busy, first = [], [], {}
    by_id = {p.cell.cell_id: p for p in plans}
    for outcome in run(list(plans), False):
        if outcome["status"] == "busy":
            busy.append(by_id[outcome["cell"]["cell_id"]])
            first[outcome["cell"]["cell_id"]] = outcome["notes"]
            continue
        outcomes.append(outcome)
        on_done(outcome)
    for outcome in run(busy, True) if busy else ():
        outcome["notes"] = [f"{n}; came back to it at the end" for n in first[outcome["cell"]["cell_id"]]] + list(
            outcome.get("notes") or [])
        outcomes.append(outcome)
        on_done(outcome)
    return outcomes


def run_local(plans: Sequence[CellPlan], options: JobOptions, *, on_done: Callable[[Outcome], None],
              on_phase: Callable[[str, str], None] | None = None) -> list[Outcome]:
    """In-process, one cell after another (phases reported through `on_phase`)."""
    from vibench.runner.execute import run_cell  # lazy: see run_cell_job (this module must stay torch-free)

    def run(todo: list[CellPlan], wait: bool) -> Iterable[Outcome]:
        for plan in todo:
            yield run_cell(plan, out=Path(options["out"]), data=DataSources.from_dict(options["data"]),
                           device=options["device"], overwrite=options["overwrite"], wait=wait,
                           progress=(lambda phase, _p=plan: on_phase(_p.cell.cell_id, phase)) if on_phase else None
                           ).to_dict()

    return _two_passes(plans, run, on_done)


def _init_worker(queue: Any, threads: int) -> None:
    item = queue.get() if queue is not None else None
    if item is not None:
        os.environ["VIBENCH_WORKER_GPU"] = str(item)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    configure_torch(threads)


def run_pool(plans: Sequence[CellPlan], options: JobOptions, *, workers: int, threads: int,
             gpus: Sequence[int] = (), on_done: Callable[[Outcome], None]) -> list[Outcome]:
    """`workers` processes, each running one cell at a time with `threads` compute threads
    (``--jobs N`` on a CPU machine), or one worker per GPU when `gpus` is given."""
    ctx = mp.get_context("spawn")
    queue = None
    if gpus:
        queue = ctx.Queue()
        for g in gpus:
            queue.put(g)
        workers = len(gpus)
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(queue, threads)) as pool:
        def run(todo: list[CellPlan], wait: bool) -> Iterable[Outcome]:
            futures = [pool.submit(run_cell_job, p.to_dict(), {**options, "wait": wait}) for p in todo]
            for fut in as_completed(futures):
                yield fut.result()

        return _two_passes(plans, run, on_done)


def run_gpu_pool(plans: Sequence[CellPlan], options: JobOptions, gpus: Sequence[int], *,
                 on_done: Callable[[Outcome], None], threads: int = 1) -> list[Outcome]:
    """One worker process per GPU, each running one cell at a time on its own GPU."""
    return run_pool(plans, options, workers=len(gpus), threads=threads, gpus=gpus, on_done=on_done)


def make_submitit_executor(folder: Path, *, cluster: str = "slurm", parameters: dict[str, Any] | None = None) -> Any:
    """A submitit executor: ``cluster="slurm"`` for Slurm, ``"local"`` runs the same jobs as
    local subprocesses (used by the tests)."""
    try:
        import submitit  # lazy: optional dependency, only the Slurm/submitit executor needs it
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

    def run(todo: list[CellPlan], wait: bool) -> Iterable[Outcome]:
        jobs = [executor.submit(run_cell_job, p.to_dict(), {**options, "wait": wait}) for p in todo]
        for plan, job in zip(todo, jobs):
            try:
                yield job.result()
            except Exception as exc:  # the job itself died (node failure, timeout)
                yield {"cell": plan.cell.to_dict(), "status": "failed", "error": f"job {job.job_id}: {exc}",
                       "seconds": 0.0, "rows": [], "notes": []}

    return _two_passes(list(plans), run, on_done)
