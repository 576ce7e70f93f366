"""A `--jobs N` pool worker exits when the `vibench run` that started it is killed (found when a
killed smoke run's two workers went on training its queued cells beside the next run)."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", (
    "import os, time\\n"
    "from vibench.runner.executors import _exit_with_parent\\n"
    "_exit_with_parent(os.getppid(), 0.1)\\n"
    "print('ready', flush=True)\\n"
    "time.sleep(120)\\n")])
print(child.pid, flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        state = next(line for line in status.read_text().splitlines() if line.startswith("State:"))
    except (FileNotFoundError, StopIteration):
        return False
    return "Z" not in state.split()[1]  # a zombie has exited (nobody reaped it yet)


def test_worker_exits_when_its_parent_is_killed() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    try:
        lines = {parent.stdout.readline().strip() for _ in range(2)}
        assert "ready" in lines, lines
        (child,) = (int(x) for x in lines if x != "ready")
        assert _alive(child)
        time.sleep(0.3)
        assert _alive(child)  # its parent is alive: it keeps running
        parent.kill()
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(child), "the worker outlived its killed parent"
    finally:
        parent.kill()
