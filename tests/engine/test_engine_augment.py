"""Each augmentation part on hand examples: shape, dtype and behaviour."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vibench.engine import augment as A
from vibench.errors import VibenchError


def _img(h: int = 6, w: int = 4) -> np.ndarray:
    x = np.arange(h * w * 3, dtype=np.uint8).reshape(h, w, 3)
    return x


class _Fixed:
    """A stand-in generator returning scripted values (tests the parts' decisions)."""

    def __init__(self, randoms=(), integers=(), uniforms=()):
        self.r, self.i, self.u = list(randoms), list(integers), list(uniforms)

    def random(self):
        return self.r.pop(0)

    def integers(self, lo, hi=None, size=None, dtype=None):
        return self.i.pop(0)

    def uniform(self, lo, hi):
        return self.u.pop(0)


def test_pad_crop_offsets():
    img = _img()
    out = A.PadCrop(pad=2)(img, _Fixed(integers=[0, 4]))  # top=0, left=4: bottom-right shift
    assert out.shape == img.shape and out.dtype == np.uint8
    # padded[0:6, 4:8] = rows -2..3 of the image, columns 2..5 (cols 4,5 are padding zeros)
    assert (out[:2] == 0).all()
    assert np.array_equal(out[2:, :2], img[:4, 2:])
    assert (out[:, 2:] == 0).all()
    centre = A.PadCrop(pad=2)(img, _Fixed(integers=[2, 2]))
    assert np.array_equal(centre, img)


def test_hflip():
    img = _img()
    assert np.array_equal(A.HFlip(0.5)(img, _Fixed(randoms=[0.1])), img[:, ::-1])
    assert A.HFlip(0.5)(img, _Fixed(randoms=[0.9])) is img


def test_random_erasing_fills_a_rectangle_with_the_mean():
    img = np.full((10, 10, 3), 7, dtype=np.uint8)
    # p passes, area 0.16 * 100 = 16 px, ratio 1 -> 4x4 at (y=1, x=2)
    out = A.RandomErasing(p=1.0)(img, _Fixed(randoms=[0.0], uniforms=[0.16, 1.0], integers=[1, 2]))
    assert out.dtype == np.uint8
    assert (out[1:5, 2:6] == [124, 116, 104]).all()
    mask = np.ones((10, 10), bool)
    mask[1:5, 2:6] = False
    assert (out[mask] == 7).all()
    assert A.RandomErasing(p=0.5)(img, _Fixed(randoms=[0.7])) is img


def test_channel_exchange_and_adaptive_gray():
    img = np.zeros((2, 2, 3), dtype=np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 10, 100, 200
    g = A.ChannelExchange(gray=2)(img, _Fixed(integers=[1]))
    assert (g == 100).all()  # green copied to all channels
    gray = A.ChannelExchange(gray=3)(img, _Fixed(integers=[3]))
    assert (gray == round(0.299 * 10 + 0.587 * 100 + 0.114 * 200)).all()
    assert (A.ChannelAdapGray(p=0.5)(img, _Fixed(randoms=[0.2], integers=[2])) == 200).all()
    assert A.ChannelAdapGray(p=0.5)(img, _Fixed(randoms=[0.8])) is img


def test_grayscale_luma():
    img = np.array([[[255, 0, 0], [0, 0, 255]]], dtype=np.uint8)
    out = A.Grayscale()(img, np.random.default_rng(0))
    assert out.shape == (1, 2, 3)
    assert (out[0, 0] == 76).all() and (out[0, 1] == 29).all()  # 0.299*255=76.2, 0.114*255=29.1


def test_color_jitter_brightness_then_contrast():
    img = np.array([[[100, 100, 100], [50, 50, 50]]], dtype=np.uint8)
    out = A.ColorJitter(0.3, 0.3)(img, _Fixed(uniforms=[1.2, 0.5]))
    # brightness x1.2 -> 120, 60; mean luma 90; contrast 0.5: 0.5*x + 0.5*90 -> 105, 75
    assert out[0, 0].tolist() == [105] * 3 and out[0, 1].tolist() == [75] * 3


def test_gaussian_blur():
    img = np.zeros((21, 21, 3), dtype=np.uint8)
    img[10, 10] = 255
    out = A.GaussianBlur(kernel=5, sigma=1.0)(img, _Fixed(uniforms=[1.0]))
    k = A.gaussian_kernel1d(5, 1.0)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert out[10, 10, 0] == round(255 * k[2] * k[2])
    assert out[10, 11, 0] == round(255 * k[2] * k[3])
    assert out[0, 0, 0] == 0
    flat = np.full((8, 8, 3), 90, dtype=np.uint8)
    assert (A.GaussianBlur(kernel=7, sigma=(0.1, 3.0))(flat, np.random.default_rng(0)) == 90).all()


def test_random_choice_and_pipeline_epoch_window():
    img = _img()
    rc = A.RandomChoice([A.HFlip(1.0), A.Grayscale()])
    assert np.array_equal(rc(img, _Fixed(integers=[0], randoms=[0.0])), img[:, ::-1])
    pipe = A.build_pipeline([{"op": "grayscale", "epochs": [0, 2]}, {"op": "hflip", "p": 1.0}])
    e0 = pipe(img, np.random.default_rng(0), epoch=1)
    e5 = pipe(img, np.random.default_rng(0), epoch=2)
    assert (e0[..., 0] == e0[..., 1]).all()  # grayscale inside the window
    assert np.array_equal(e5, img[:, ::-1])  # only the flip after it


def test_pipeline_from_config_and_errors():
    pipe = A.build_pipeline([
        {"op": "pad_crop", "pad": 2}, {"op": "hflip"}, {"op": "random_erasing", "p": 0.5},
        {"op": "random_choice", "ops": [{"op": "color_jitter"}, {"op": "gaussian_blur", "kernel": 3}]},
        {"op": "channel_exchange"}, {"op": "channel_adap_gray"},
    ])
    rng = np.random.default_rng(0)
    out = pipe(_img(16, 8), rng)
    assert out.shape == (16, 8, 3) and out.dtype == np.uint8
    a = pipe(_img(16, 8), np.random.default_rng(5))
    b = pipe(_img(16, 8), np.random.default_rng(5))
    assert np.array_equal(a, b)  # deterministic given the generator
    with pytest.raises(VibenchError, match="did you mean 'hflip'"):
        A.build_pipeline([{"op": "hfilp"}])
    with pytest.raises(VibenchError, match="bad parameters"):
        A.build_pipeline([{"op": "hflip", "prob": 0.5}])
    with pytest.raises(VibenchError, match="uint8"):
        pipe(np.zeros((4, 4, 3), np.float32), rng)


def test_to_tensor_batch_normalises():
    x = np.full((2, 4, 2, 3), 255, dtype=np.uint8)
    t = A.to_tensor_batch(x)
    assert t.shape == (2, 3, 4, 2) and t.dtype == torch.float32
    expected = [(1 - m) / s for m, s in zip(A.IMAGENET_MEAN, A.IMAGENET_STD)]
    assert torch.allclose(t[0, :, 0, 0], torch.tensor(expected))
