"""Same seed -> byte-identical trees (whatever the worker count); another seed -> other data."""
from __future__ import annotations

import hashlib
from pathlib import Path

from vibench.data.synth import generate


def tree_hash(root: Path) -> str:
    """sha256 over every file's relative path and bytes, in sorted order."""
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes(sysu_root: Path, tmp_path: Path) -> None:
    again = generate("sysu", tmp_path / "again", "tiny", 0)
    assert tree_hash(again) == tree_hash(sysu_root)


def test_worker_count_does_not_change_bytes(regdb_root: Path, tmp_path: Path) -> None:
    parallel = generate("regdb", tmp_path / "parallel", "tiny", 0, workers=2)
    assert tree_hash(parallel) == tree_hash(regdb_root)


def test_other_seed_other_data(llcm_root: Path, tmp_path: Path) -> None:
    other = generate("llcm", tmp_path / "other", "tiny", 1)
    assert tree_hash(other) != tree_hash(llcm_root)
    assert (other / "idx/train_vis.txt").read_text() != (llcm_root / "idx/train_vis.txt").read_text()
    first = sorted((llcm_root / "test_vis").rglob("*.jpg"))[0].relative_to(llcm_root)
    if (other / first).exists():
        assert (other / first).read_bytes() != (llcm_root / first).read_bytes()
