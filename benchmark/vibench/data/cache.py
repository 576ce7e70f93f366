"""The training image cache: every image decoded and resized once, then memory-mapped.

Images are decoded with :func:`vibench.data.imageio.load_resized` (RGB, PIL LANCZOS, the AGW
convention of docs/metrics.md#test-time-conventions) into one uint8 ``.npy`` array of shape (N, H, W, 3) whose rows
follow the given record list. The file name is keyed by the dataset manifest hash, the image size,
the hash of the record list, the resolved root and the (size, mtime) of every image file, so
changing the tree, the size, the records or the pixels on disk selects another file. The array
is built under a temporary name and renamed when complete (``vibench.io``), so a killed build
never leaves a file that a later run would trust (the next build of the same file deletes a
temporary left by a ``kill -9`` once it is an hour old). Later runs open it with
``np.load(mmap_mode='r')`` and decode nothing.
"""
from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from tqdm import tqdm

from vibench.data.imageio import load_resized_array
from vibench.data.records import DatasetIndex, ImageRecord, records_sha256
from vibench.errors import VibenchError
from vibench.io import atomic_path, read_json, stable_hash, write_json_atomic
from vibench.paths import cache_dir

CACHE_VERSION = 1
RESIZE = "PIL-LANCZOS"
#: a build's temporary file untouched for this long belongs to a killed build
STALE_TEMP_S = 3600.0


def default_cache_root() -> Path:
    """``$VIBENCH_IMAGE_CACHE`` if set, else ``cache_dir()/images`` (``$VIBENCH_CACHE`` moves it)."""
    env = os.environ.get("VIBENCH_IMAGE_CACHE")
    return Path(env).expanduser() if env else cache_dir() / "images"


def files_fingerprint(root: Path, records: Sequence[ImageRecord]) -> str:
    """sha256 over (path, size, mtime) of every record's file: a tree regenerated in place
    (same paths, new pixels) selects a new cache file. A missing file hashes as (-1, -1)."""
    h = hashlib.sha256()
    for r in records:
        try:
            st = os.stat(root / r.path)
            h.update(f"{r.path}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{r.path}\t-1\t-1\n".encode())
    return h.hexdigest()


class ImageCache:
    """Decoded, resized uint8 images of `records` (paths relative to `root`), memory-mapped.

    ``cache[i]`` is record i as an (H, W, 3) uint8 array. The object pickles without its
    memory map (DataLoader workers reopen the file), so it is cheap to hand to workers.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        records: Sequence[ImageRecord],
        height: int,
        width: int,
        *,
        manifest_hash: str | None = None,
        dataset: str = "data",
        cache_root: str | os.PathLike[str] | None = None,
    ) -> None:
        if height < 1 or width < 1:
            raise VibenchError(f"image cache size must be positive, got height={height}, width={width}")
        self.root = Path(root)
        self.records = tuple(records)
        self.height, self.width = int(height), int(width)
        self.manifest_hash = manifest_hash or records_sha256(self.records)
        self.dataset = dataset
        self.cache_root = Path(cache_root) if cache_root is not None else default_cache_root()
        self.key = stable_hash({
            "version": CACHE_VERSION, "resize": RESIZE, "manifest": self.manifest_hash,
            "size": [self.height, self.width], "records": records_sha256(self.records),
            "root": str(self.root.resolve()), "files": files_fingerprint(self.root, self.records),
        })[:32]
        self._array: np.ndarray | None = None
        self._positions: dict[str, int] | None = None

    @classmethod
    def for_index(
        cls,
        index: DatasetIndex,
        records: Sequence[ImageRecord],
        height: int,
        width: int,
        *,
        cache_root: str | os.PathLike[str] | None = None,
        build: bool = True,
        workers: int | None = None,
    ) -> "ImageCache":
        """The cache of `records` of `index` at (height, width), built now unless `build` is False."""
        cache = cls(index.root, records, height, width, manifest_hash=index.manifest_hash(),
                    dataset=index.name, cache_root=cache_root)
        if build:
            cache.ensure(workers=workers)
        return cache

    # -- files ------------------------------------------------------------------------------
    @property
    def path(self) -> Path:
        """The ``.npy`` array file: ``<cache_root>/<dataset>-<H>x<W>-<key>.npy``."""
        return self.cache_root / f"{self.dataset}-{self.height}x{self.width}-{self.key}.npy"

    @property
    def meta_path(self) -> Path:
        return self.path.with_suffix(".json")

    def is_built(self) -> bool:
        """True when a complete array of the expected shape is on disk."""
        if not self.path.is_file():
            return False
        try:
            arr = np.load(self.path, mmap_mode="r")
        except (ValueError, OSError):
            return False
        return arr.dtype == np.uint8 and arr.shape == self.shape

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.records), self.height, self.width, 3)

    def ensure(self, *, workers: int | None = None, progress: bool = False) -> Path:
        """Build the cache unless a complete one exists; returns its path."""
        if not self.is_built():
            self.build(workers=workers, progress=progress)
        return self.path

    def build(self, *, workers: int | None = None, progress: bool = False) -> Path:
        """Decode and resize every record into a temporary .npy, then rename it into place.

        Decoding runs in threads (PIL releases the GIL while decoding and resizing).
        """
        workers = workers or min(8, os.cpu_count() or 1)
        try:
            self._write(workers, progress)
        except OSError as exc:
            raise VibenchError(f"cannot write the image cache {self.path} ({exc}); point "
                               "$VIBENCH_IMAGE_CACHE (or $VIBENCH_CACHE) at a writable folder "
                               f"with {self._nbytes() / 2**30:.2f} GiB free") from None
        self._array = None
        return self.path

    def _nbytes(self) -> int:
        n, h, w, c = self.shape
        return n * h * w * c

    def _remove_stale_temps(self, max_age_s: float = STALE_TEMP_S) -> None:
        """Delete temporaries of this cache file left by a killed build (older than max_age_s)."""
        now = time.time()
        for tmp in self.cache_root.glob(f".{self.path.name}.*.tmp"):
            try:
                if now - tmp.stat().st_mtime > max_age_s:
                    tmp.unlink()
            except OSError:
                pass

    def _write(self, workers: int, progress: bool) -> None:
        self._remove_stale_temps()
        write_json_atomic(self.meta_path, self._meta())
        with atomic_path(self.path) as tmp:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=self.shape)

            def fill(i: int) -> None:
                out[i] = load_resized_array(self.root / self.records[i].path, self.height, self.width)

            indices: Any = range(len(self.records))
            if progress:
                indices = tqdm(indices, desc=f"caching {self.dataset} images", unit="img")
            with ThreadPoolExecutor(max_workers=workers) as pool:
                for _ in pool.map(fill, indices):
                    pass
            out.flush()
            del out

    def _meta(self) -> dict[str, Any]:
        return {
            "version": CACHE_VERSION, "resize": RESIZE, "dataset": self.dataset, "root": str(self.root),
            "manifest_hash": self.manifest_hash, "records_sha256": records_sha256(self.records),
            "height": self.height, "width": self.width, "num_images": len(self.records),
        }

    # -- access -----------------------------------------------------------------------------
    @property
    def array(self) -> np.ndarray:
        """The read-only (N, H, W, 3) uint8 memory map (opened on first use in each process)."""
        if self._array is None:
            if not self.path.is_file():
                raise VibenchError(f"image cache {self.path} is not built (call ensure() first)")
            arr = np.load(self.path, mmap_mode="r")
            if arr.shape != self.shape or arr.dtype != np.uint8:
                raise VibenchError(f"image cache {self.path} has shape {arr.shape} {arr.dtype}, "
                                   f"expected {self.shape} uint8; delete it to rebuild")
            self._array = arr
        return self._array

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> np.ndarray:
        """Record i's pixels: a writable (H, W, 3) uint8 copy (ready for torch.from_numpy)."""
        return np.array(self.array[i])

    def get(self, rel_path: str) -> np.ndarray:
        """Pixels of the record whose relative path is `rel_path`."""
        if self._positions is None:
            self._positions = {r.path: i for i, r in enumerate(self.records)}
        try:
            return self[self._positions[rel_path]]
        except KeyError:
            raise VibenchError(f"{rel_path} is not one of the {len(self.records)} cached records") from None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_array"] = None  # never pickle the mapped pixels
        return state


def load_images(records: Sequence[ImageRecord], root: str | os.PathLike[str], size: Sequence[int], *,
                cache_root: str | os.PathLike[str] | None = None, dataset: str = "data") -> np.ndarray:
    """The (N, H, W, 3) uint8 read-only memory map of `records` at size=(H, W), building the
    cache on first use (the hook :mod:`vibench.engine.images` calls)."""
    cache = ImageCache(root, records, int(size[0]), int(size[1]), dataset=dataset, cache_root=cache_root)
    cache.ensure()
    return cache.array


def read_cache_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON sidecar of a cache file (what it was built from)."""
    return read_json(Path(path).with_suffix(".json"))
