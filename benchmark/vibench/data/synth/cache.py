"""Generate-once synthetic datasets under the vibench cache, safe for concurrent callers."""
from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from vibench.data.synth.scales import get_scale
from vibench.data.synth.writer import _check_seed, generate, marker_content, read_marker
from vibench.paths import cache_dir

try:  # POSIX advisory locks; elsewhere the atomic rename alone keeps the tree consistent.
    import fcntl
except ImportError:  # pragma: no cover - non-POSIX
    fcntl = None  # type: ignore[assignment]


def synthetic_root(dataset: str, scale: str = "tiny", seed: int = 0) -> Path:
    """Where ensure_synthetic keeps (dataset, scale, seed): cache_dir()/synthetic/<d>-<scale>-s<seed>."""
    get_scale(dataset, scale)
    return cache_dir() / "synthetic" / f"{dataset}-{scale}-s{_check_seed(seed)}"


def is_current(root: Path, dataset: str, scale: str, seed: int) -> bool:
    """True when `root` holds a complete tree made by this generator version for these settings."""
    marker = read_marker(root)
    if marker is None:
        return False
    expected = json.loads(json.dumps(marker_content(get_scale(dataset, scale), seed)))
    return all(marker.get(key) == value for key, value in expected.items())


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `lock_path` (blocks until other holders release it)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def ensure_synthetic(dataset: str, scale: str = "tiny", seed: int = 0) -> Path:
    """The root of synthetic (dataset, scale, seed), generated on first use.

    A cached tree whose marker names another generator version or other parameters is stale
    and is regenerated (atomically replaced). Concurrent callers serialise on a lock file, so
    only one generates and the others reuse its tree."""
    root = synthetic_root(dataset, scale, seed)
    if is_current(root, dataset, scale, seed):
        return root
    with _locked(root.parent / f".{root.name}.lock"):
        if not is_current(root, dataset, scale, seed):
            _remove_leftovers(root)
            generate(dataset, root, scale, seed, overwrite=True)
    return root


def _remove_leftovers(root: Path) -> None:
    """Delete temporary folders of killed earlier generations of `root` (call under the lock:
    in the cache only lock holders generate, so any such folder is dead)."""
    for pattern in (f".{root.name}.partial-*", f".{root.name}.old-*"):
        for leftover in root.parent.glob(pattern):
            shutil.rmtree(leftover, ignore_errors=True)
