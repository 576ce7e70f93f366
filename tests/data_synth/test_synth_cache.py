"""ensure_synthetic: generate once into the cache, reuse, regenerate when stale, survive races;
generate(): atomic (a failed run leaves nothing), refuses to clobber, validates its inputs."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from vibench.data.synth import MARKER, ensure_synthetic, generate, read_marker, synthetic_root
from vibench.data.synth import writer
from vibench.errors import VibenchError


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VIBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_generated_once_then_reused(cache: Path) -> None:
    root = ensure_synthetic("regdb")
    assert root == cache / "synthetic" / "regdb-tiny-s0" == synthetic_root("regdb", "tiny", 0)
    stamp = (root / MARKER).stat().st_mtime_ns
    assert ensure_synthetic("regdb", "tiny", 0) == root
    assert (root / MARKER).stat().st_mtime_ns == stamp


def test_stale_cache_is_regenerated(cache: Path) -> None:
    root = ensure_synthetic("regdb")
    killed = root.parent / f".{root.name}.partial-dead"      # a killed earlier generation
    (killed / "Visible").mkdir(parents=True)
    marker = read_marker(root)
    marker["generator_version"] = -1
    (root / MARKER).write_text(json.dumps(marker))
    (root / "Visible/1/0001_v_01.bmp").unlink()
    assert ensure_synthetic("regdb") == root
    assert read_marker(root)["generator_version"] == writer.GENERATOR_VERSION
    assert (root / "Visible/1/0001_v_01.bmp").is_file()
    assert [p.name for p in root.parent.iterdir() if not p.name.endswith(".lock")] == [root.name]


def test_concurrent_callers_get_one_tree(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = writer.write_tree
    monkeypatch.setattr(writer, "write_tree", lambda *a, **k: calls.append(1) or real(*a, **k))
    roots: list[Path] = []
    threads = [threading.Thread(target=lambda: roots.append(ensure_synthetic("regdb"))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(roots)) == 1 and len(roots) == 3
    assert len(calls) == 1
    assert read_marker(roots[0]) is not None


def test_failed_generation_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(spec, seed, out, workers=1):
        (out / "cam1").mkdir()
        raise RuntimeError("killed")
    monkeypatch.setattr(writer, "write_tree", broken)
    with pytest.raises(RuntimeError):
        generate("sysu", tmp_path / "tree")
    assert list(tmp_path.iterdir()) == []


def test_refuses_non_empty_root_unless_overwrite(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    (root / "keep.txt").write_text("mine")
    with pytest.raises(VibenchError, match="not empty"):
        generate("regdb", root)
    generate("regdb", root, overwrite=True)
    assert not (root / "keep.txt").exists() and (root / "idx").is_dir()


def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(VibenchError, match="did you mean 'llcm'"):
        generate("llmc", tmp_path / "x")
    with pytest.raises(VibenchError, match="did you mean 'paper'"):
        ensure_synthetic("sysu", "papr")
    with pytest.raises(VibenchError, match="seed"):
        generate("sysu", tmp_path / "x", seed=-1)
    (tmp_path / "file").write_text("")
    with pytest.raises(VibenchError, match="not a folder"):
        generate("sysu", tmp_path / "file")
