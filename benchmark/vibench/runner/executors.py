"""Executors: cells are independent, so they run in-process (one after another, or one per GPU
in a process pool) or as Slurm jobs through submitit (one job per cell). Every executor goes
through :func:`run_cell_job`, so the resume rules are the same everywhere: a job re-runs
nothing that its cell directory already holds, and every executor takes the cell's lock and comes
back at the end to the cells another process was computing (vibench.store.lock)."""
from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import subprocess
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from vibench.errors import VibenchError
from vibench.runner.cells import CellPlan
from vibench.runner.datasources import DataSources
from vibench.runner.threads import configure_torch, size_job

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


#: seconds between a pool worker's checks that the `vibench run` that started it is alive
PARENT_POLL_S = 1.0


def _exit_with_parent(parent: int, poll_s: float = PARENT_POLL_S) -> None:
    """Exit this worker process when its parent is gone (the parent was killed: SIGTERM/SIGKILL
    reach only it). Without this the orphaned workers went on training the queued cells for
    many minutes, invisibly, beside the next run. What a dying worker leaves is safe: writes
    are atomic, the cell's lock is released by the OS, and the next run resumes the cell."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="vibench-parent-watch", daemon=True).start()


def _init_worker(queue: Any, threads: int, parent: int | None = None) -> None:
    if parent is not None:
        _exit_with_parent(parent)
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
                             initargs=(queue, threads, os.getpid())) as pool:
        def run(todo: list[CellPlan], wait: bool) -> Iterable[Outcome]:
            futures = [pool.submit(run_cell_job, p.to_dict(), {**options, "wait": wait}) for p in todo]
            for fut in as_completed(futures):
                yield fut.result()

        return _two_passes(plans, run, on_done)


def run_gpu_pool(plans: Sequence[CellPlan], options: JobOptions, gpus: Sequence[int], *,
                 on_done: Callable[[Outcome], None], threads: int = 1) -> list[Outcome]:
    """One worker process per GPU, each running one cell at a time on its own GPU."""
    return run_pool(plans, options, workers=len(gpus), threads=threads, gpus=gpus, on_done=on_done)


#: sbatch defaults of the slurm executor; `vibench run --slurm-*` options replace them (a
#: partition's own limits may be lower: see docs/training.md, "Running on Slurm")
SLURM_DEFAULTS: dict[str, Any] = {"timeout_min": 24 * 60, "cpus_per_task": 8, "tasks_per_node": 1}
#: Slurm job states (squeue --states=all) after which a job writes nothing more
SLURM_ENDED = {"BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY",
               "PREEMPTED", "REVOKED", "SPECIAL_EXIT", "TIMEOUT"}
#: reasons squeue gives for a pending job that the cluster will never start as asked (a request
#: above the partition's CPUs, memory, nodes or time limit, an unknown account or QOS): the job
#: is cancelled and its cell reported as failed instead of waiting forever
SLURM_NEVER = {"PartitionConfig", "PartitionTimeLimit", "PartitionNodeLimit", "BadConstraints",
               "InvalidAccount", "InvalidQOS", "DependencyNeverSatisfied"}
#: seconds between two looks at the jobs (result files; the queue every QUEUE_POLL_S)
POLL_S = 1.0
QUEUE_POLL_S = 10.0
#: seconds a job may be gone from the queue before its missing result counts as lost (a shared
#: file system may show the result file late)
RESULT_GRACE_S = 15.0


def slurm_parameters(*, partition: str | None = None, timeout_min: int | None = None,
                     cpus_per_task: int | None = None, gpus_per_node: int | None = None,
                     mem_gb: float | None = None, options: Iterable[str] = ()) -> dict[str, Any]:
    """submitit parameters from the `vibench run --slurm-*` options. ``gpus_per_node`` 0 asks for
    no GPU (a CPU partition refuses any --gpus request); ``mem_gb`` None leaves memory to the
    partition's default; `options` are extra ``KEY=VALUE`` sbatch options (account=..., qos=...)."""
    params: dict[str, Any] = dict(SLURM_DEFAULTS)
    for key, value in (("slurm_partition", partition), ("timeout_min", timeout_min),
                       ("cpus_per_task", cpus_per_task), ("mem_gb", mem_gb)):
        if value is not None:
            params[key] = value
    for key, value in (("timeout_min", timeout_min), ("cpus_per_task", cpus_per_task), ("mem_gb", mem_gb)):
        if value is not None and value <= 0:
            raise VibenchError(f"--slurm-{key.replace('_', '-')} {value}: expected a positive number")
    if gpus_per_node is not None and gpus_per_node < 0:
        raise VibenchError(f"--slurm-gpus-per-node {gpus_per_node}: expected 0 or more")
    if gpus_per_node:
        params["gpus_per_node"] = int(gpus_per_node)
    extra = {}
    for item in options:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise VibenchError(f"--slurm-option {item!r}: expected KEY=VALUE, an sbatch long option without "
                               "the dashes (e.g. account=myproject, qos=normal)")
        extra[key.strip().replace("-", "_")] = value.strip()
    if extra:
        params["slurm_additional_parameters"] = extra
    return params


def make_submitit_executor(folder: Path, *, cluster: str = "slurm", parameters: dict[str, Any] | None = None) -> Any:
    """A submitit executor: ``cluster="slurm"`` for Slurm, ``"local"`` runs the same jobs as
    local subprocesses (used by the tests)."""
    try:
        import submitit  # lazy: optional dependency, only the Slurm/submitit executor needs it
    except ImportError:  # pragma: no cover - submitit is a dependency
        raise VibenchError("the slurm executor needs the 'submitit' package (pip install submitit)") from None
    if cluster == "slurm" and shutil.which("sbatch") is None:
        raise VibenchError("--executor slurm: 'sbatch' is not on the PATH (run on a Slurm login node; "
                           "scripts/slurm-localhost.sh starts a one-node cluster on this machine)")
    executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
    params = dict(SLURM_DEFAULTS) if cluster == "slurm" else {"timeout_min": 60}
    params.update(parameters or {})
    if cluster != "slurm":
        params = {k: v for k, v in params.items() if not k.startswith("slurm_")}
    executor.update_parameters(**params)
    return executor


def slurm_job(plan: dict[str, Any], options: JobOptions) -> Outcome:
    """The body of one Slurm job: size the compute threads to this job's allocation (not to the
    machine that submitted it: the job inherits its environment), say so in the job's log, run
    the cell."""
    count, source = size_job(options.get("threads"))
    print(f"vibench job {plan['cell']['cell_id']}: {count} compute threads ({source})", flush=True)
    configure_torch(count)
    return run_cell_job(plan, options)


def queue_states(job_ids: Sequence[str]) -> dict[str, str] | None:
    """job id -> state as ``squeue --states=all`` shows it ("PENDING (reason)" for a pending
    job); a job missing from the answer has left the queue (it ended longer ago than the
    cluster's MinJobAge). None when squeue itself could not answer (the controller busy or
    down): nothing is concluded then."""
    try:
        proc = subprocess.run(["squeue", "-h", "--states=all", "-o", "%i %T %r", "-j", ",".join(job_ids)],
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        # squeue fails as a whole when one asked-for id is unknown: ask for each one
        if "Invalid job id" not in proc.stderr or len(job_ids) == 1:
            return {} if "Invalid job id" in proc.stderr else None
        found: dict[str, str] = {}
        for jid in job_ids:
            one = queue_states([jid])
            if one is None:
                return None
            found.update(one)
        return found
    states = {}
    for line in proc.stdout.splitlines():
        jid, state, reason = (line.split(maxsplit=2) + ["", ""])[:3]
        states[jid] = state if state != "PENDING" else f"{state} ({reason.strip()})"
    return states


def _lost(plan: CellPlan, job: Any, state: str) -> Outcome:
    """The outcome of a job that ended without a result (cancelled, killed, timed out, node lost)."""
    log = ""
    try:
        log = (job.stderr() or "").strip()
    except OSError:
        pass
    tail = " | ".join(log.splitlines()[-3:])
    return {"cell": plan.cell.to_dict(), "status": "failed", "seconds": 0.0, "rows": [], "notes": [],
            "error": f"Slurm job {job.job_id} ended ({state}) without a result; its log: {job.paths.stderr}"
                     + (f" (last lines: {tail})" if tail else "") + "; run again to resume the cell"}


def _never(plan: CellPlan, job: Any, reason: str) -> Outcome:
    """The outcome of a job cancelled because the cluster would never start it."""
    return {"cell": plan.cell.to_dict(), "status": "failed", "seconds": 0.0, "rows": [], "notes": [],
            "error": f"Slurm job {job.job_id} cannot start (squeue reason {reason}: the request exceeds "
                     "what the partition offers or allows); cancelled it. Ask for less with "
                     "--slurm-cpus-per-task, --slurm-mem-gb, --slurm-gpus-per-node or --slurm-timeout-min, "
                     "or choose --slurm-partition (sinfo; scontrol show partition)"}


def _wait_slurm(todo: list[CellPlan], jobs: list[Any]) -> Iterator[Outcome]:
    """Yield each job's outcome as it ends. A job's result file ends it; one that left the queue
    (or ended per squeue) without a result within RESULT_GRACE_S is reported as failed. Waiting
    never relies on sacct, which clusters without an accounting database do not answer."""
    waiting = dict(zip((job.job_id for job in jobs), zip(todo, jobs)))
    ended: dict[str, tuple[float, str]] = {}
    last_queue = 0.0
    while waiting:
        for jid, (plan, job) in list(waiting.items()):
            if job.paths.result_pickle.exists():
                del waiting[jid]
                try:
                    yield job.result()
                except Exception as exc:  # the job raised outside run_cell (import error, ...)
                    yield {"cell": plan.cell.to_dict(), "status": "failed", "error": f"Slurm job {jid}: {exc}",
                           "seconds": 0.0, "rows": [], "notes": []}
            elif jid in ended and time.monotonic() - ended[jid][0] > RESULT_GRACE_S:
                del waiting[jid]
                yield _lost(plan, job, ended[jid][1])
        if waiting and time.monotonic() - last_queue > QUEUE_POLL_S:
            last_queue = time.monotonic()
            states = queue_states(list(waiting))
            for jid in list(waiting) if states is not None else ():
                state = states.get(jid, "gone from the queue")
                if jid not in states or state in SLURM_ENDED:
                    ended.setdefault(jid, (time.monotonic(), state))
                elif state.startswith("PENDING (") and state[9:-1] in SLURM_NEVER:
                    plan, job = waiting.pop(jid)
                    job.cancel(check=False)
                    yield _never(plan, job, state[9:-1])
        if waiting:
            time.sleep(POLL_S)


def run_submitit(plans: Iterable[CellPlan], options: JobOptions, *, folder: Path, cluster: str = "slurm",
                 parameters: dict[str, Any] | None = None, on_done: Callable[[Outcome], None]) -> list[Outcome]:
    """Submit one job per cell (named after the cell) and wait for them; a job that ends without
    a result (scancel, time limit, node failure) is reported as failed, and the next run resumes
    its cell from what it had written."""
    executor = make_submitit_executor(folder, cluster=cluster, parameters=parameters)

    def submit(plan: CellPlan, wait: bool) -> Any:
        executor.update_parameters(name=f"vibench-{plan.cell.cell_id}")
        try:
            return executor.submit(slurm_job if cluster == "slurm" else run_cell_job, plan.to_dict(),
                                   {**options, "wait": wait})
        except Exception as exc:  # sbatch refused the job: a flag the cluster does not accept
            raise VibenchError(f"--executor {cluster}: submitting {plan.cell.cell_id} failed: "
                               f"{str(exc).strip()}; check --slurm-partition, --slurm-cpus-per-task, "
                               "--slurm-gpus-per-node, --slurm-mem-gb, --slurm-timeout-min and "
                               "--slurm-option against the partition's limits (sinfo, scontrol show "
                               "partition)") from None

    def run(todo: list[CellPlan], wait: bool) -> Iterable[Outcome]:
        jobs = [submit(p, wait) for p in todo]
        if cluster == "slurm":
            yield from _wait_slurm(todo, jobs)
            return
        for plan, job in zip(todo, jobs):
            try:
                yield job.result()
            except Exception as exc:  # the job itself died
                yield {"cell": plan.cell.to_dict(), "status": "failed", "error": f"job {job.job_id}: {exc}",
                       "seconds": 0.0, "rows": [], "notes": []}

    return _two_passes(list(plans), run, on_done)
