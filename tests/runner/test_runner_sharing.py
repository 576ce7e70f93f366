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


def test_busy_cell_is_skipped_then_come_back_to(mock_plugin: None, runner_env: dict[str, str],
                                                tmp_path: Path) -> None:
    """Deterministic version: this test holds one cell's lock; the run computes the other cells
    first, touches nothing of the held one, and computes it once the lock is released."""
    import time

    from vibench.protocols import resolve_protocols
    from vibench.runner.cells import plan_cells
    from vibench.store import CellLock

    out = tmp_path / "store"
    held = plan_cells(["mock"], resolve_protocols("regdb-v2t"), regdb_splits=(1,))[0].cell.cell_id
    lock = CellLock(out, held)
    assert lock.acquire(wait=False)
    proc = subprocess.Popen([sys.executable, "-m", "vibench.cli", *ARGS[:6], "1,2,3", *ARGS[7:], "--out", str(out)],
                            env=runner_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 600
        while len(list((out / "cells").glob("*/DONE"))) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.2)
        time.sleep(1.0)
        assert not (out / "cells" / held).exists(), "the held cell was touched"
        assert proc.poll() is None, "the run ended without the held cell"
    finally:
        lock.release()
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    assert "3 done" in stdout
    assert f"done {held}: being computed by" in stderr and "came back to it at the end" in stderr
