"""A per-cell lock, so several processes (terminals, Slurm jobs, the GPU pool) can share a store.

The lock is ``<out>/locks/<cell_id>.lock``, held with the operating system's advisory file lock
(the ``filelock`` library: ``fcntl.flock`` on Unix). The kernel releases it when the holding
process ends, however it ends (kill -9 included), so a lock never outlives its holder and there
is no stale lock to clean up. While it holds the lock a process writes ``<cell_id>.holder``
(host, pid, start time) next to it, so a process that finds the cell busy can say who computes
it. Locks live outside ``cells/`` because ``--overwrite always`` deletes a cell directory while
holding its lock.
"""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from filelock import FileLock, Timeout

from vibench.io import write_text_atomic

#: seconds between two attempts when waiting for a busy cell
POLL_SECONDS = 0.5


class CellLock:
    """The lock of one cell of store `out` (module docstring)."""

    def __init__(self, out: Path, cell_id: str) -> None:
        folder = Path(out) / "locks"
        self.path = folder / f"{cell_id}.lock"
        self.holder_path = folder / f"{cell_id}.holder"
        self._lock: FileLock | None = None

    def acquire(self, *, wait: bool) -> bool:
        """Take the lock; with ``wait=False`` give up at once (False) when another holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.path), thread_local=False)
        try:
            lock.acquire(timeout=-1 if wait else 0, poll_interval=POLL_SECONDS)
        except Timeout:
            return False
        self._lock = lock
        write_text_atomic(self.holder_path, f"{socket.gethostname()} pid {os.getpid()} since "
                                            f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        return True

    def release(self) -> None:
        if self._lock is None:
            return
        try:
            self.holder_path.unlink()
        except FileNotFoundError:
            pass
        self._lock.release()
        self._lock = None

    def holder(self) -> str:
        """Who holds the lock, as its holder file says ('another process' when unknown)."""
        try:
            return self.holder_path.read_text().strip() or "another process"
        except OSError:
            return "another process"
