"""Decoded images for training and extraction: (N, H, W, 3) uint8 arrays, decoded once.

The engine never decodes JPEGs inside the training loop: every image a run needs is decoded and
resized once (PIL, LANCZOS, as AGW's ``TestData`` does; docs/metrics.md#test-time-conventions) into one uint8 array.
When the datasets subsystem's memory-mapped :class:`vibench.data.cache.ImageCache` is importable
it is used (so the arrays persist across runs); otherwise images are decoded here, in memory.
Within one process, arrays are memoised by (root, size, record list), so training and
extraction of the same split do not decode twice.
"""
from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from vibench.data import cache as image_cache
from vibench.data.records import ImageRecord
from vibench.errors import VibenchError

_MEMO: "OrderedDict[str, np.ndarray]" = OrderedDict()
_MEMO_MAX = 6


def _key(records: Sequence[ImageRecord], root: Path, size: tuple[int, int]) -> str:
    h = hashlib.sha256(f"{Path(root).resolve()}|{size[0]}x{size[1]}".encode())
    for r in records:
        h.update(r.path.encode("utf-8") + b"\n")
    return h.hexdigest()


def decode_image(path: Path, size: tuple[int, int]) -> np.ndarray:
    """One image as (H, W, 3) uint8, forced to RGB and resized with LANCZOS to size=(H, W)."""
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if im.size != (size[1], size[0]):
                im = im.resize((size[1], size[0]), Image.LANCZOS)
            return np.asarray(im, dtype=np.uint8).copy()
    except FileNotFoundError:
        raise VibenchError(f"image {path} does not exist") from None
    except OSError as exc:
        raise VibenchError(f"cannot decode image {path}: {exc}") from None


def _from_image_cache(records: Sequence[ImageRecord], root: Path, size: tuple[int, int]) -> np.ndarray | None:
    """The arrays from vibench.data.cache (memory-mapped, built on first use); None when the
    cache is switched off with $VIBENCH_NO_IMAGE_CACHE."""
    if os.environ.get("VIBENCH_NO_IMAGE_CACHE"):
        return None
    return np.asarray(image_cache.load_images(list(records), Path(root), tuple(size)))


def load_images(records: Sequence[ImageRecord], root: str | Path, size: Sequence[int]) -> np.ndarray:
    """(N, H, W, 3) uint8 array of `records` (paths relative to `root`) at size (H, W)."""
    size_t = (int(size[0]), int(size[1]))
    if size_t[0] <= 0 or size_t[1] <= 0:
        raise VibenchError(f"image size must be two positive integers (H, W), got {list(size)}")
    root = Path(root)
    key = _key(records, root, size_t)
    if key in _MEMO:
        _MEMO.move_to_end(key)
        return _MEMO[key]
    arr = _from_image_cache(records, root, size_t)
    if arr is None:
        arr = np.empty((len(records), size_t[0], size_t[1], 3), dtype=np.uint8)
        for i, r in enumerate(records):
            arr[i] = decode_image(root / r.path, size_t)
    arr.setflags(write=False)
    _MEMO[key] = arr
    while len(_MEMO) > _MEMO_MAX:
        _MEMO.popitem(last=False)
    return arr


def clear_memo() -> None:
    """Drop the in-process memo (tests)."""
    _MEMO.clear()
