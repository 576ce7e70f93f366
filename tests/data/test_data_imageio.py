"""Image decoding conventions (docs/metrics.md#test-time-conventions): forced RGB, PIL LANCZOS resize."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vibench.data.imageio import image_problem, load_resized, load_resized_array, load_rgb
from vibench.errors import VibenchError


def test_grayscale_jpeg_loads_as_three_equal_channels(tmp_path: Path) -> None:
    gray = np.tile(np.arange(0, 240, 20, dtype=np.uint8), (16, 1))  # 16 x 12 ramp
    path = tmp_path / "ir.jpg"
    Image.fromarray(gray, mode="L").save(path, quality=95)
    assert Image.open(path).mode == "L"  # what SYSU's infrared JPEGs look like
    img = load_rgb(path)
    assert img.mode == "RGB" and img.size == (12, 16)
    arr = np.asarray(img)
    assert arr.shape == (16, 12, 3)
    assert (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all()
    assert np.array_equal(arr[..., 0], np.asarray(Image.open(path)))


def test_palette_rgba_and_16bit_become_rgb(tmp_path: Path) -> None:
    Image.new("RGBA", (4, 3), (10, 20, 30, 40)).save(tmp_path / "a.png")
    Image.new("P", (4, 3), 7).save(tmp_path / "p.png")
    deep = np.array([[0, 1000], [2000, 4000]], dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "t16.png")
    assert np.asarray(load_rgb(tmp_path / "a.png"))[0, 0].tolist() == [10, 20, 30]
    assert load_rgb(tmp_path / "p.png").mode == "RGB"
    t16 = np.asarray(load_rgb(tmp_path / "t16.png"))
    # max scaled to 255: 1000 -> 63.75 -> 64, 2000 -> 127.5 -> 128 (round half to even)
    assert t16[..., 0].tolist() == [[0, 64], [128, 255]]


def test_load_resized_is_pil_lanczos(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    src = rng.integers(0, 256, size=(40, 20, 3), dtype=np.uint8)
    Image.fromarray(src).save(tmp_path / "x.png")
    out = load_resized(tmp_path / "x.png", 24, 12)
    assert out.size == (12, 24)
    expected = np.asarray(Image.fromarray(src).resize((12, 24), Image.LANCZOS))
    assert np.array_equal(np.asarray(out), expected)
    bilinear = np.asarray(Image.fromarray(src).resize((12, 24), Image.BILINEAR))
    assert not np.array_equal(expected, bilinear)  # the choice of filter is observable
    arr = load_resized_array(tmp_path / "x.png", 24, 12)
    assert arr.dtype == np.uint8 and arr.shape == (24, 12, 3) and np.array_equal(arr, expected)
    same = load_resized_array(tmp_path / "x.png", 40, 20)
    assert np.array_equal(same, src)  # no resampling when the size already matches


def test_bad_images_raise_vibench_error(tmp_path: Path) -> None:
    with pytest.raises(VibenchError, match=r"missing\.jpg does not exist"):
        load_rgb(tmp_path / "missing.jpg")
    (tmp_path / "junk.jpg").write_bytes(b"\xff\xd8garbage")
    with pytest.raises(VibenchError, match=r"junk\.jpg is unreadable or corrupt"):
        load_rgb(tmp_path / "junk.jpg")
    Image.new("RGB", (64, 64), (1, 2, 3)).save(tmp_path / "ok.jpg")
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "ok.jpg").read_bytes()[:200])
    assert image_problem(tmp_path / "ok.jpg") is None
    assert "corrupt" in (image_problem(tmp_path / "cut.jpg") or "")
    assert image_problem(tmp_path / "nope.jpg") == "image does not exist"
