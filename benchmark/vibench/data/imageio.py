"""Image decoding with the reference conventions (docs/metrics.md#test-time-conventions).

* Every image is returned as 3-channel RGB: SYSU-MM01's infrared JPEGs may be single-channel and
  none of the reference repositories converts them, so vibench forces RGB (flagged in docs/metrics.md#test-time-conventions).
* Resizing follows AGW/DDAG/CAJ/DEEN ``TestData``: PIL ``resize((w, h), LANCZOS)`` (the removed
  ``Image.ANTIALIAS`` is LANCZOS), not torchvision's bilinear resize.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from vibench.errors import VibenchError


def load_rgb(path: str | os.PathLike[str]) -> Image.Image:
    """Decode `path` into a fully loaded 3-channel RGB PIL image.

    Grayscale ('L'), palette, 16-bit and RGBA images are converted with ``convert('RGB')``.
    Raises VibenchError naming the file when it is missing, unreadable or corrupt.
    """
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode == "RGB":
                return img.copy()
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                # 16/32-bit thermal frames: scale to 8 bits before the RGB conversion.
                arr = np.asarray(img, dtype=np.float64)
                hi = float(arr.max()) if arr.size else 0.0
                arr8 = np.zeros(arr.shape, np.uint8) if hi <= 0 else (arr * (255.0 / hi)).round().astype(np.uint8)
                return Image.fromarray(arr8, mode="L").convert("RGB")
            return img.convert("RGB")
    except FileNotFoundError:
        raise VibenchError(f"image {path} does not exist") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise VibenchError(f"image {path} is unreadable or corrupt ({exc}); expected a JPEG/PNG/BMP file") from None


def load_resized(path: str | os.PathLike[str], height: int, width: int) -> Image.Image:
    """`load_rgb` then PIL LANCZOS resize to (height, width): the AGW test-time convention."""
    img = load_rgb(path)
    if img.size != (width, height):
        img = img.resize((width, height), Image.LANCZOS)
    return img


def load_resized_array(path: str | os.PathLike[str], height: int, width: int) -> np.ndarray:
    """`load_resized` as a uint8 array of shape (height, width, 3)."""
    return np.asarray(load_resized(path, height, width), dtype=np.uint8)


def image_problem(path: str | os.PathLike[str]) -> str | None:
    """None when `path` decodes completely as an image, else what is wrong (for --deep checks)."""
    try:
        with Image.open(path) as img:
            img.load()
            if img.size[0] < 1 or img.size[1] < 1:
                return "image has zero size"
    except FileNotFoundError:
        return "image does not exist"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        return f"unreadable or corrupt image ({exc}); expected a decodable JPEG/PNG/BMP"
    return None
