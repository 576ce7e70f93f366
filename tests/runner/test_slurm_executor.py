"""The Slurm executor's own logic without a cluster: sbatch parameters from the CLI options, a
job's thread sizing, reading squeue, and waiting for jobs that end without a result or can never
start (the real cluster: tests/runner/test_slurm_real.py)."""
from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from vibench.errors import VibenchError
from vibench.runner import executors, threads


def test_slurm_parameters_from_the_cli_options() -> None:
    assert executors.slurm_parameters() == {"timeout_min": 1440, "cpus_per_task": 8, "tasks_per_node": 1}
    params = executors.slurm_parameters(partition="cpu", timeout_min=30, cpus_per_task=2, gpus_per_node=0,
                                        mem_gb=3.5, options=["account=vi-reid", "qos = low", "mail-type=END"])
    assert params == {"timeout_min": 30, "cpus_per_task": 2, "tasks_per_node": 1, "slurm_partition": "cpu",
                      "mem_gb": 3.5, "slurm_additional_parameters": {"account": "vi-reid", "qos": "low",
                                                                     "mail_type": "END"}}
    assert "gpus_per_node" not in params  # 0 GPUs: no --gpus flag at all (a CPU partition refuses any)
    assert executors.slurm_parameters(gpus_per_node=2)["gpus_per_node"] == 2
    with pytest.raises(VibenchError, match=r"--slurm-option 'account': expected KEY=VALUE"):
        executors.slurm_parameters(options=["account"])
    with pytest.raises(VibenchError, match=r"--slurm-cpus-per-task 0: expected a positive number"):
        executors.slurm_parameters(cpus_per_task=0)
    with pytest.raises(VibenchError, match=r"--slurm-gpus-per-node -1: expected 0 or more"):
        executors.slurm_parameters(gpus_per_node=-1)


def test_a_job_sizes_its_threads_to_its_own_allocation(monkeypatch: pytest.MonkeyPatch) -> None:
    """The job inherits the submitter's environment: an OMP_NUM_THREADS that vibench chose for
    the submitting machine (8 CPUs) gives way to the job's SLURM_CPUS_PER_TASK (2); one the user
    exported is kept; --threads wins."""
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: set(range(8)))
    monkeypatch.setattr(threads, "cgroup_cpus", lambda: None)
    for key in ("OMP_NUM_THREADS", threads.AUTO_MARK, "SLURM_CPUS_PER_TASK"):
        monkeypatch.delenv(key, raising=False)
    threads.prepare_environment()  # the submitting process
    assert os.environ["OMP_NUM_THREADS"] == "8" and os.environ[threads.AUTO_MARK] == "1"
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "2")  # the job
    assert threads.size_job() == (2, "SLURM_CPUS_PER_TASK")
    assert os.environ["OMP_NUM_THREADS"] == "2"

    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # exported by the user: no mark
    monkeypatch.delenv(threads.AUTO_MARK)
    threads.prepare_environment()
    assert threads.AUTO_MARK not in os.environ
    assert threads.size_job() == (3, "OMP_NUM_THREADS")
    assert threads.size_job(threads=5) == (5, "--threads") and os.environ["OMP_NUM_THREADS"] == "5"


def _fake_squeue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    (tmp_path / "squeue").write_text("#!/bin/sh\n" + body)
    (tmp_path / "squeue").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")


def test_queue_states_reads_squeue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # squeue -h --states=all -o "%i %T %r" -j 11,12,13: one running, one pending and why, one cancelled
    _fake_squeue(tmp_path, monkeypatch, 'echo "11 RUNNING None"; echo "12 PENDING Resources"; '
                                        'echo "13 CANCELLED None"\n')
    assert executors.queue_states(["11", "12", "13"]) == {"11": "RUNNING", "12": "PENDING (Resources)",
                                                          "13": "CANCELLED"}
    # an id squeue no longer knows fails the whole call: asked one by one, the known ones answer
    _fake_squeue(tmp_path, monkeypatch, 'case "$6" in *,*|21) echo "slurm_load_jobs error: Invalid job id '
                                        'specified" >&2; exit 1;; 22) echo "22 RUNNING None";; esac\n')
    assert executors.queue_states(["21", "22"]) == {"22": "RUNNING"}
    # the controller not answering: nothing is concluded
    _fake_squeue(tmp_path, monkeypatch, 'echo "slurm_load_jobs error: Unable to contact slurm controller" >&2; exit 1\n')
    assert executors.queue_states(["31"]) is None


class FakeJob:
    def __init__(self, job_id: str, folder: Path, result: Any = None) -> None:
        self.job_id = job_id
        self.paths = SimpleNamespace(result_pickle=folder / f"{job_id}_result.pkl",
                                     stderr=folder / f"{job_id}_0_log.err")
        self._result = result
        self.cancelled = False
        if result is not None:
            self.paths.result_pickle.write_text("x")

    def result(self) -> Any:
        return self._result

    def stderr(self) -> str:
        return "srun: Job step aborted\nslurmstepd: *** STEP 12.0 CANCELLED ***\n"

    def cancel(self, check: bool = True) -> None:
        self.cancelled = True


def test_waiting_reports_lost_and_never_starting_jobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      mock_plugin: None) -> None:
    """One job finishes, one is cancelled (no result), one can never start: the wait ends with
    three outcomes, never hangs, and cancels the job that would pend forever."""
    from vibench.protocols import resolve_protocols
    from vibench.runner.cells import plan_cells

    plans = plan_cells(["mock"], resolve_protocols("regdb-v2t"), regdb_splits=(1, 2, 3))
    ok = {"cell": plans[0].cell.to_dict(), "status": "done"}
    jobs = [FakeJob("11", tmp_path, ok), FakeJob("12", tmp_path), FakeJob("13", tmp_path)]
    monkeypatch.setattr(executors, "queue_states",
                        lambda ids: {"12": "CANCELLED", "13": "PENDING (PartitionConfig)"})
    monkeypatch.setattr(executors, "POLL_S", 0.0)
    monkeypatch.setattr(executors, "RESULT_GRACE_S", 0.0)
    outcomes = {o["cell"]["cell_id"]: o for o in executors._wait_slurm(plans, jobs)}
    assert outcomes[plans[0].cell.cell_id] == ok
    lost = outcomes[plans[1].cell.cell_id]
    assert lost["status"] == "failed" and lost["error"].startswith("Slurm job 12 ended (CANCELLED) without a result")
    assert "STEP 12.0 CANCELLED" in lost["error"] and "run again to resume" in lost["error"]
    never = outcomes[plans[2].cell.cell_id]
    assert never["status"] == "failed" and "cannot start (squeue reason PartitionConfig" in never["error"]
    assert jobs[2].cancelled and not jobs[1].cancelled

    # a job gone from the queue whose result appears within the grace period is not lost
    late = FakeJob("14", tmp_path)
    monkeypatch.setattr(executors, "queue_states", lambda ids: {})
    monkeypatch.setattr(executors, "RESULT_GRACE_S", 0.5)
    monkeypatch.setattr(executors.time, "sleep", lambda s: late.paths.result_pickle.write_text("x"))
    late._result = ok
    assert list(executors._wait_slurm(plans[:1], [late])) == [ok]


def test_no_sbatch_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(executors.shutil, "which", lambda name: None)
    with pytest.raises(VibenchError, match="'sbatch' is not on the PATH .*scripts/slurm-localhost.sh"):
        executors.make_submitit_executor(tmp_path, cluster="slurm")
