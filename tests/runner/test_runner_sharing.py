"""Two `vibench run` processes on one store: the per-cell lock makes the second skip a cell the
first is computing and come back to it at the end; every cell is computed exactly once and the
store verifies."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vibench.cli import main

ARGS = ["run", "--methods", "mock", "--protocols", "regdb-v2t", "--regdb-splits", "1,2,3,4,5,6",
        "--device", "cpu"]


def test_two_processes_compute_every_cell_once(runner_env: dict[str, str], tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "store"
    procs = [subprocess.Popen([sys.executable, "-m", "vibench.cli", *ARGS, "--out", str(out)], env=runner_env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=900) for p in procs]
    for p, (stdout, stderr) in zip(procs, results):
        assert p.returncode == 0, stderr
    cells = sorted((out / "cells").iterdir())
    assert len(cells) == 6
    # each cell ran once: one timings entry, one "done" over both processes, the other skipped it
    for cell in cells:
        assert len(json.loads((cell / "timings.json").read_text())["runs"]) == 1, cell.name
    statuses = [line.split()[-2] for stdout, _ in results for line in stdout.splitlines()
                if line.startswith("mock__")]
    assert statuses.count("done") == 6 and statuses.count("skipped") == 6, statuses
    # a cell found busy was waited for, never computed by the second process
    for stdout, stderr in results:
        for line in stderr.splitlines():
            if "being computed by" in line:
                assert line.startswith("skipped ") and "came back to it at the end" in line, line
    assert main(["store", "verify", str(out)]) == 0
    assert "6 ok" in capsys.readouterr().out


def test_lock_is_exclusive_and_released_when_the_holder_dies(tmp_path: Path) -> None:
    """A second holder is refused while the first holds the lock; a killed holder leaves no
    stale lock (the kernel drops it)."""
    from vibench.store import CellLock

    first = CellLock(tmp_path, "c")
    assert first.acquire(wait=False)
    assert "pid" in CellLock(tmp_path, "c").holder()
    assert not CellLock(tmp_path, "c").acquire(wait=False)
    first.release()
    second = CellLock(tmp_path, "c")
    assert second.acquire(wait=False)
    second.release()
    code = ("import os, sys; sys.path[:0] = sys.argv[1:2]; from vibench.store import CellLock; "
            f"assert CellLock({str(tmp_path)!r}, 'c').acquire(wait=False); os._exit(9)")
    assert subprocess.run([sys.executable, "-c", code, ""]).returncode == 9
    third = CellLock(tmp_path, "c")
    assert third.acquire(wait=False), "a dead holder's lock was not released"
    third.release()
