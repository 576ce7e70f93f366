"""Compute threads sized to the CPUs a process may use.

PyTorch starts as many intra-op threads as the machine has cores, whatever share of them the
process was given; several vibench processes on one machine (or one Slurm allocation) then run
many more spinning threads than cores and slow each other down by an order of magnitude. Every
vibench process therefore sizes its pools to the CPUs it is *allowed*: the smallest of the
affinity mask (``os.sched_getaffinity``), the cgroup CPU quota (``/sys/fs/cgroup/cpu.max``, or
cgroup v1's ``cpu.cfs_quota_us / cpu.cfs_period_us``, rounded up) and Slurm's allocation
(``SLURM_CPUS_PER_TASK``); an ``OMP_NUM_THREADS`` the user exported, or ``vibench run --threads
N``, overrides it, and ``--jobs N`` divides it among the N cells that run at once. OpenMP threads wait passively (``OMP_WAIT_POLICY=PASSIVE``)
unless the user set a policy: a finished parallel region then sleeps instead of spinning on a
core another process needs (measured in docs/training.md, "Threads and parallel runs").
"""
from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_V2 = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1 = (Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us"))


def cgroup_cpus(v2: Path = CGROUP_V2, v1: tuple[Path, Path] = CGROUP_V1) -> int | None:
    """The cgroup CPU quota in whole CPUs (rounded up), or None when there is no quota."""
    try:
        quota, period = v2.read_text().split()[:2]
        if quota == "max":
            return None
        return max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    try:
        quota_us, period_us = int(v1[0].read_text()), int(v1[1].read_text())
    except (OSError, ValueError):
        return None
    return None if quota_us <= 0 or period_us <= 0 else max(1, math.ceil(quota_us / period_us))


def allowed_cpus() -> tuple[int, str]:
    """(CPUs this process may use, where the limit comes from), see the module docstring."""
    try:
        found = [(len(os.sched_getaffinity(0)), "affinity")]
    except AttributeError:  # not Linux
        found = [(os.cpu_count() or 1, "cpu_count")]
    quota = cgroup_cpus()
    if quota:
        found.append((quota, "cgroup quota"))
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm.isdigit() and int(slurm) > 0:
        found.append((int(slurm), "SLURM_CPUS_PER_TASK"))
    return min(found)


def total_threads(threads: int | None = None) -> int:
    """The compute threads of a run: ``--threads``, else ``OMP_NUM_THREADS`` when set (by the
    user, or by :func:`prepare_environment`), else the allowed CPUs."""
    if threads:
        return int(threads)
    env = os.environ.get("OMP_NUM_THREADS", "")
    return int(env) if env.isdigit() and int(env) > 0 else allowed_cpus()[0]


def threads_per_job(jobs: int, threads: int | None = None) -> int:
    """Intra-op threads for each of `jobs` cells running at once (at least one)."""
    return max(1, total_threads(threads) // max(1, jobs))


#: set (to "1") by :func:`prepare_environment` when it chose OMP_NUM_THREADS itself: a Slurm job
#: inherits the submitting process's environment and must size itself to its own allocation
AUTO_MARK = "VIBENCH_OMP_AUTO"


def prepare_environment() -> None:
    """Before torch is imported: size OpenMP to the allowed CPUs and let idle OpenMP threads
    sleep, unless the user set these variables (their values win)."""
    if "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = str(allowed_cpus()[0])
        os.environ[AUTO_MARK] = "1"
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def size_job(threads: int | None = None) -> tuple[int, str]:
    """In a job started on another machine or allocation (a Slurm job, which inherits the
    environment of the process that submitted it), before torch is imported: drop an
    OMP_NUM_THREADS that vibench chose for the submitting machine, then size as
    :func:`prepare_environment` does here (``--threads`` given to the submitter wins, then an
    OMP_NUM_THREADS the user exported, then the CPUs of this job: SLURM_CPUS_PER_TASK, affinity,
    cgroup quota). Returns (threads, where the number comes from)."""
    if os.environ.pop(AUTO_MARK, None):
        os.environ.pop("OMP_NUM_THREADS", None)
    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)
        source = "--threads"
    elif "OMP_NUM_THREADS" in os.environ:
        source = "OMP_NUM_THREADS"
    else:
        source = allowed_cpus()[1]
    prepare_environment()
    return total_threads(), source


def configure_torch(threads: int) -> None:
    """Set torch's intra-op and inter-op pools to `threads` (inter-op can be set only before
    torch runs its first parallel work; later calls keep the size it has)."""
    import torch  # lazy: prepare_environment() runs before torch is imported (vibench.cli imports this module)

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:
        pass
