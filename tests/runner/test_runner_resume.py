"""The run matrix end to end with a tiny plug-in method: completion, skipping, kill -9 at random
moments and resume with identical results, failure isolation, and the submitit path."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest


def vibench_cmd() -> list[str]:
    return [sys.executable, "-m", "vibench.cli"]


ARGS = ["run", "--methods", "mock", "--protocols", "sysu-all-single,sysu-mixid-i,regdb-v2t",
        "--regdb-splits", "1,2", "--max-trials", "3", "--device", "cpu"]
#: cell directory names start with the grid position; config, data source and hash follow
CELLS = {"mock__sysu__standard__split0__seed0", "mock__regdb__standard__split1__seed0",
         "mock__regdb__standard__split2__seed0"}
SUFFIX = "__tiny__syn-tiny-s0__"


def cell_dir(out: Path, prefix: str) -> Path:
    """The one cell directory of `out` whose name starts with `prefix` (the grid position)."""
    found = [p for p in (out / "cells").iterdir() if p.name.startswith(prefix + "__")]
    assert len(found) == 1, (prefix, found)
    return found[0]


def _run(env: dict[str, str], out: Path, *extra: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([*vibench_cmd(), *ARGS, "--out", str(out), *extra], env=env,
                          capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"vibench run failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def _metrics(out: Path) -> dict[str, dict]:
    found = {}
    for path in sorted((out / "cells").glob("*/metrics/*.json")):
        doc = json.loads(path.read_text())
        found[f"{path.parent.parent.name}/{path.stem}"] = doc["trials"]
    return found


def _assert_store_intact(out: Path) -> None:
    """Every file of the store parses: nothing half-written survived the kills."""
    for path in (out / "cells").rglob("*.json"):
        json.loads(path.read_text())
    for path in (out / "cells").rglob("*.npz"):
        with np.load(path, allow_pickle=False) as z:
            for key in z.files:
                z[key]
    assert not list((out / "cells").rglob("*.tmp")), "temporary files left behind"


@pytest.fixture(scope="module")
def reference_store(runner_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reference")
    proc = _run(runner_env, out)
    assert "3 done" in proc.stdout
    return out


def test_run_completes_every_cell(reference_store: Path) -> None:
    cells = {p.name.split(SUFFIX)[0] for p in (reference_store / "cells").iterdir()}
    assert cells == CELLS
    for name in CELLS:
        cell = cell_dir(reference_store, name)
        assert cell.name.startswith(name + SUFFIX) and len(cell.name.split(SUFFIX)[1]) == 8
        assert (cell / "DONE").exists()
        spec = json.loads((cell / "spec.json").read_text())
        assert spec["schema_version"] == 2 and spec["cell"]["cell_id"] == cell.name
        assert spec["cell"]["config"] == "tiny" and spec["cell"]["data"] == "synthetic-tiny-s0"
        assert spec["cell"]["config_hash"] == spec["config_hash"]
        assert spec["config_hash"] and spec["provenance"]["packages"]["torch"]
        assert spec["data"]["kind"] == "synthetic"
        for proto in spec["protocols"].values():
            assert all(len(h) == 64 for h in proto["trials"].values())
        model = json.loads((cell / "model.json").read_text())
        assert model["params"]["registered"] > 0 and model["latency"]["ms_per_image"] > 0
    sysu_cell = cell_dir(reference_store, "mock__sysu__standard__split0__seed0")
    sysu = json.loads((sysu_cell / "metrics" / "sysu-all-single.json").read_text())
    assert sorted(sysu["trials"]) == ["0", "1", "2"]
    assert 0.0 <= sysu["summary"]["rank1"] <= 1.0
    assert (sysu_cell / "rankings" / "sysu-all-single" / "trial-2.npz").exists()


def test_second_run_skips_and_touches_nothing(reference_store: Path, runner_env: dict[str, str]) -> None:
    before = {p: p.stat().st_mtime_ns for p in (reference_store / "cells").rglob("*") if p.is_file()}
    proc = _run(runner_env, reference_store)
    assert "3 skipped" in proc.stdout
    after = {p: p.stat().st_mtime_ns for p in (reference_store / "cells").rglob("*") if p.is_file()}
    assert before == after


def test_kill9_at_random_moments_then_resume_gives_identical_results(reference_store: Path,
                                                                     runner_env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "killed"
    rng = random.Random(1234)
    kills = 0
    for _ in range(4):
        proc = subprocess.Popen([*vibench_cmd(), *ARGS, "--out", str(out)], env=runner_env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rng.uniform(2.0, 9.0))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
        if out.exists():
            _assert_store_intact(out)
    assert kills >= 1, "the run finished before any kill: lengthen the work"
    _run(runner_env, out)
    _assert_store_intact(out)
    assert _metrics(out) == _metrics(reference_store)


def test_adding_a_protocol_only_evaluates(reference_store: Path, runner_env: dict[str, str], tmp_path: Path) -> None:
    import shutil

    out = tmp_path / "store"
    shutil.copytree(reference_store, out)
    cell = cell_dir(out, "mock__sysu__standard__split0__seed0")
    model = cell / "train" / "model.pt"
    stamp = model.stat().st_mtime_ns
    proc = subprocess.run([*vibench_cmd(), "run", "--methods", "mock", "--protocols", "sysu-all-single,sysu-indoor-single",
                           "--max-trials", "3", "--device", "cpu", "--out", str(out)], env=runner_env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert (cell / "metrics" / "sysu-indoor-single.json").exists()
    assert model.stat().st_mtime_ns == stamp, "the checkpoint was rewritten: training ran again"
    assert json.loads((cell / "DONE").read_text())["protocols"] == ["sysu-all-single", "sysu-indoor-single", "sysu-mixid-i"]


def test_failure_in_one_cell_does_not_stop_the_others(runner_env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "store"
    proc = _run(runner_env, out, "--set", "options.fail_on=regdb", check=False)
    assert proc.returncode == 1
    assert "1 done" in proc.stdout and "2 failed" in proc.stdout
    assert "FAILED mock__regdb__standard__split1__seed0__" in proc.stderr
    assert (cell_dir(out, "mock__sysu__standard__split0__seed0") / "DONE").exists()
    err = (cell_dir(out, "mock__regdb__standard__split1__seed0") / "error.txt").read_text()
    assert "mock configured to fail on regdb" in err
    # the corrected command is not answered from (or blocked by) the failed attempts
    proc = _run(runner_env, out)
    assert "3 done" in proc.stdout, proc.stdout


def test_submitit_local_executor_runs_cells(mock_plugin: None, runner_env: dict[str, str], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The Slurm path (one submitit job per cell, same resume rules) through submitit's local executor."""
    from vibench.protocols import resolve_protocols
    from vibench.runner.cells import plan_cells
    from vibench.runner.datasources import DataSources
    from vibench.runner.executors import run_submitit

    for key in ("PYTHONPATH", "VIBENCH_PLUGINS"):
        monkeypatch.setenv(key, runner_env[key])
    plans = plan_cells(["mock"], resolve_protocols("regdb-v2t"), regdb_splits=(1, 2))
    options = {"out": str(tmp_path / "store"), "data": DataSources().to_dict(), "device": "cpu", "overwrite": "missing"}
    seen = []
    outcomes = run_submitit(plans, options, folder=tmp_path / "jobs", cluster="local", on_done=seen.append)
    assert [o["status"] for o in outcomes] == ["done", "done"], [o.get("error") for o in outcomes]
    assert len(seen) == 2
    again = run_submitit(plans, options, folder=tmp_path / "jobs2", cluster="local", on_done=lambda o: None)
    assert [o["status"] for o in again] == ["skipped", "skipped"]
