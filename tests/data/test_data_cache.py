"""The memory-mapped training image cache: round trip, keys, atomic builds, throughput."""
from __future__ import annotations

import os
import pickle
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import vibench.data.cache as cache_mod
import vibench.data.imageio as imageio
from vibench.data.cache import ImageCache, load_images
from vibench.data.records import DatasetIndex, ImageRecord
from vibench.errors import VibenchError

H, W = 32, 16


def make_jpeg_tree(root: Path, n: int, size: tuple[int, int] = (30, 64), seed: int = 0) -> list[ImageRecord]:
    """`n` noisy JPEGs (width x height = `size`) in a SYSU-like layout; every 3rd one grayscale."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        cam = 3 if i % 3 == 0 else 1
        rel = f"cam{cam}/{i // 4 + 1:04d}/{i % 4 + 1:04d}.jpg"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
        img = Image.fromarray(pixels)
        (img.convert("L") if cam == 3 else img).save(root / rel, quality=90)
        records.append(ImageRecord(rel, i // 4 + 1, cam, "infrared" if cam == 3 else "visible"))
    return records


def test_round_trip_equals_decode_and_resize(tmp_path: Path) -> None:
    records = make_jpeg_tree(tmp_path / "data", 7)
    cache = ImageCache(tmp_path / "data", records, H, W, manifest_hash="m", dataset="sysu",
                       cache_root=tmp_path / "cache")
    assert not cache.is_built()
    path = cache.ensure()
    assert path.parent == tmp_path / "cache" and path.name.startswith(f"sysu-{H}x{W}-") and path.suffix == ".npy"
    assert cache.is_built() and len(cache) == 7
    arr = np.load(path, mmap_mode="r")
    assert isinstance(arr, np.memmap) and arr.shape == (7, H, W, 3) and arr.dtype == np.uint8
    for i, r in enumerate(records):
        expected = imageio.load_resized_array(tmp_path / "data" / r.path, H, W)
        assert np.array_equal(cache[i], expected)
        assert np.array_equal(cache.get(r.path), expected)
    assert cache[0].flags.writeable  # a copy: torch.from_numpy accepts it
    with pytest.raises(VibenchError, match="not one of the 7 cached records"):
        cache.get("cam9/0001/0001.jpg")


def test_later_runs_never_decode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    records = make_jpeg_tree(tmp_path / "data", 5)
    first = ImageCache(tmp_path / "data", records, H, W, manifest_hash="m", cache_root=tmp_path / "c")
    first.ensure()
    expected = np.stack([first[i] for i in range(5)])

    def no_decode(*args: object, **kwargs: object) -> np.ndarray:
        raise AssertionError("decoded a JPEG although the cache exists")

    monkeypatch.setattr(cache_mod, "load_resized_array", no_decode)
    again = ImageCache(tmp_path / "data", records, H, W, manifest_hash="m", cache_root=tmp_path / "c")
    assert again.path == first.path
    again.ensure()
    assert np.array_equal(np.stack([again[i] for i in range(5)]), expected)
    clone = pickle.loads(pickle.dumps(again))  # what DataLoader workers receive
    assert clone._array is None and np.array_equal(clone[4], expected[4])


def test_key_changes_with_records_size_manifest_and_pixels(tmp_path: Path) -> None:
    records = make_jpeg_tree(tmp_path / "data", 6)
    root, croot = tmp_path / "data", tmp_path / "c"

    def cache_path(recs: list[ImageRecord], h: int = H, w: int = W, m: str = "m") -> Path:
        return ImageCache(root, recs, h, w, manifest_hash=m, cache_root=croot).path

    base = cache_path(records)
    assert cache_path(list(records)) == base
    assert cache_path(records[:5]) != base                 # a record dropped
    assert cache_path(records[::-1]) != base               # a different order
    relabelled = [ImageRecord(r.path, r.pid + 1, r.cam, r.modality) for r in records]
    assert cache_path(relabelled) != base                  # same files, other labels
    assert cache_path(records, h=H + 1) != base            # another size
    assert cache_path(records, m="other") != base          # another dataset manifest

    old = ImageCache(root, records, H, W, manifest_hash="m", cache_root=croot)
    old.ensure()
    img = root / records[2].path                            # regenerate one image in place
    Image.new("RGB", (30, 64), (200, 0, 0)).save(img)
    st = img.stat()
    os.utime(img, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    fresh = ImageCache(root, records, H, W, manifest_hash="m", cache_root=croot)
    assert fresh.path != old.path and not fresh.is_built()
    fresh.ensure()
    assert np.array_equal(fresh[2], imageio.load_resized_array(img, H, W))
    assert not np.array_equal(fresh[2], old[2])


def test_killed_build_leaves_no_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    records = make_jpeg_tree(tmp_path / "data", 6)
    real = imageio.load_resized_array
    calls = {"n": 0}

    def dies_midway(path: Path, h: int, w: int) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # stands in for a kill during the build
        return real(path, h, w)

    monkeypatch.setattr(cache_mod, "load_resized_array", dies_midway)
    cache = ImageCache(tmp_path / "data", records, H, W, manifest_hash="m", cache_root=tmp_path / "c")
    with pytest.raises(KeyboardInterrupt):
        cache.build(workers=1)
    assert not cache.path.exists() and not cache.is_built()
    assert [p.name for p in (tmp_path / "c").iterdir()] == [cache.meta_path.name]  # no temp, no .npy
    monkeypatch.setattr(cache_mod, "load_resized_array", real)
    cache.ensure()
    assert cache.is_built()


def test_truncated_cache_file_is_rebuilt(tmp_path: Path) -> None:
    records = make_jpeg_tree(tmp_path / "data", 3)
    cache = ImageCache(tmp_path / "data", records, H, W, manifest_hash="m", cache_root=tmp_path / "c")
    cache.ensure()
    good = cache[1]
    cache.path.write_bytes(cache.path.read_bytes()[:300])  # e.g. a disk-full copy
    fresh = ImageCache(tmp_path / "data", records, H, W, manifest_hash="m", cache_root=tmp_path / "c")
    assert not fresh.is_built()
    fresh.ensure()
    assert np.array_equal(fresh[1], good)


def test_for_index_and_engine_hook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    records = tuple(make_jpeg_tree(tmp_path / "data", 4))
    index = DatasetIndex("sysu", tmp_path / "data", (0,), {0: records}, {0: ()}, {})
    cache = ImageCache.for_index(index, index.train(), H, W, cache_root=tmp_path / "c")
    assert cache.manifest_hash == index.manifest_hash() and cache.is_built()
    monkeypatch.setenv("VIBENCH_IMAGE_CACHE", str(tmp_path / "env-cache"))
    arr = load_images(list(records), tmp_path / "data", (H, W))
    assert arr.shape == (4, H, W, 3) and arr.dtype == np.uint8 and not arr.flags.writeable
    assert np.array_equal(arr[3], cache[3])
    assert len(list((tmp_path / "env-cache").glob("*.npy"))) == 1
    with pytest.raises(VibenchError, match="must be positive"):
        ImageCache(tmp_path / "data", records, 0, W)


def _epoch_uncached(root: Path, records: list[ImageRecord]) -> int:
    total = 0
    for r in records:
        total += int(imageio.load_resized_array(root / r.path, 288, 144)[0, 0, 0])
    return total


def _epoch_cached(cache: ImageCache) -> int:
    return sum(int(cache[i][0, 0, 0]) for i in range(len(cache)))


def test_cache_throughput_ratio(tmp_path: Path, benchmark: object) -> None:
    """Images/s of one pass over a JPEG tree (AGW size 288x144), decoded vs memory-mapped.

    Source JPEGs are 128x256 (w x h), about SYSU's visible crops. The cached pass must be at
    least 5x faster (measured ~100x; see docs/datasets.md)."""
    root = tmp_path / "data"
    records = make_jpeg_tree(root, 48, size=(128, 256))
    cache = ImageCache(root, records, 288, 144, manifest_hash="bench", cache_root=tmp_path / "c")
    cache.ensure(workers=1)
    assert _epoch_cached(cache) == _epoch_uncached(root, records)  # same pixels

    def best_of(fn, repeats: int = 3) -> float:  # type: ignore[no-untyped-def]
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    t_decode = best_of(lambda: _epoch_uncached(root, records))
    t_cached = best_of(lambda: _epoch_cached(cache))
    rates = {"decode_images_per_s": len(records) / t_decode, "cached_images_per_s": len(records) / t_cached,
             "speedup": t_decode / t_cached}
    benchmark.extra_info.update(rates)  # type: ignore[attr-defined]
    benchmark(_epoch_cached, cache)  # type: ignore[operator]
    print(f"\nthroughput: {rates}")
    assert rates["speedup"] > 5.0, rates


def test_unwritable_cache_dir_and_missing_image_are_clear_errors(tmp_path: Path) -> None:
    records = make_jpeg_tree(tmp_path / "data", 2)
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the cache folder should be")
    with pytest.raises(VibenchError, match=r"cannot write the image cache .*not_a_dir.*VIBENCH_IMAGE_CACHE"):
        ImageCache(tmp_path / "data", records, H, W, cache_root=blocker).ensure()
    gone = records + [ImageRecord("cam1/0009/0001.jpg", 9, 1, "visible")]
    cache = ImageCache(tmp_path / "data", gone, H, W, cache_root=tmp_path / "c")
    with pytest.raises(VibenchError, match=r"cam1/0009/0001\.jpg does not exist"):
        cache.ensure()
    assert not cache.path.exists()
    empty = ImageCache(tmp_path / "data", [], H, W, cache_root=tmp_path / "c")
    assert empty.ensure() and empty.array.shape == (0, H, W, 3)


def test_stale_temporaries_of_killed_builds_are_removed(tmp_path: Path) -> None:
    records = make_jpeg_tree(tmp_path / "data", 2)
    cache = ImageCache(tmp_path / "data", records, H, W, cache_root=tmp_path / "c")
    (tmp_path / "c").mkdir()
    old = tmp_path / "c" / f".{cache.path.name}.abc123.tmp"   # what kill -9 leaves behind
    recent = tmp_path / "c" / f".{cache.path.name}.def456.tmp"  # maybe another live build
    other = tmp_path / "c" / ".other.npy.zzz.tmp"
    for f in (old, recent, other):
        f.write_bytes(b"partial")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    os.utime(other, (two_hours_ago, two_hours_ago))
    cache.ensure()
    assert not old.exists() and recent.exists() and other.exists()


def test_sigkill_during_build_leaves_no_trusted_file(tmp_path: Path) -> None:
    """A real kill -9 mid-build: no .npy appears; the next build succeeds."""
    import signal
    import subprocess
    import sys

    records = make_jpeg_tree(tmp_path / "data", 6)
    script = (
        "import sys, time\n"
        "import vibench.data.cache as io\n"
        "from vibench.data.cache import ImageCache\n"
        "from vibench.data.records import ImageRecord\n"
        "real = io.load_resized_array\n"
        "def slow(*a):\n"
        "    time.sleep(0.5)\n"
        "    return real(*a)\n"
        "io.load_resized_array = slow\n"
        f"recs = [ImageRecord(p, 1, 1, 'visible') for p in {[r.path for r in records]!r}]\n"
        f"c = ImageCache({str(tmp_path / 'data')!r}, recs, {H}, {W}, cache_root={str(tmp_path / 'c')!r})\n"
        "c.build(workers=1)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.time() + 60
        while not list((tmp_path / "c").glob(".*.tmp")) and time.time() < deadline:
            assert proc.poll() is None, "the build ended before it could be killed"
            time.sleep(0.05)
        assert list((tmp_path / "c").glob(".*.tmp")), "the build never started writing"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    recs = [ImageRecord(r.path, 1, 1, "visible") for r in records]
    cache = ImageCache(tmp_path / "data", recs, H, W, cache_root=tmp_path / "c")
    assert not list((tmp_path / "c").glob("*.npy")) and not cache.is_built()
    cache.ensure()
    assert cache.is_built() and np.array_equal(cache[5], imageio.load_resized_array(tmp_path / "data" / records[5].path, H, W))


def test_cache_feeds_a_torch_dataloader(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    records = make_jpeg_tree(tmp_path / "data", 5)
    cache = ImageCache(tmp_path / "data", records, H, W, cache_root=tmp_path / "c")
    cache.ensure()
    batches = list(torch.utils.data.DataLoader(cache, batch_size=2, shuffle=False, num_workers=0))
    assert [tuple(b.shape) for b in batches] == [(2, H, W, 3), (2, H, W, 3), (1, H, W, 3)]
    assert batches[0].dtype == torch.uint8
    assert np.array_equal(batches[2][0].numpy(), cache[4])
