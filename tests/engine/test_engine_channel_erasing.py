"""CAJ's random channel erasing (the augmentation PMCM §4.1.3 cites): box geometry replayed by
hand from the generator, per-channel fill values after normalisation, the rest untouched."""
from __future__ import annotations

import math

import numpy as np
import pytest

from vibench.engine import augment as A
from vibench.errors import VibenchError

CAJ = (0.4914, 0.4822, 0.4465)


def _replay_box(seed: int, h: int, w: int, area=(0.02, 0.4), r: float = 0.3) -> tuple[int, int, int, int] | None:
    """The box Zhong/CAJ erasing draws from a fresh generator (p = 1): the first try that fits."""
    rng = np.random.default_rng(seed)
    assert rng.random() < 1.0
    for _ in range(100):
        target = rng.uniform(*area) * h * w
        ratio = rng.uniform(r, 1 / r)
        eh, ew = int(round(math.sqrt(target * ratio))), int(round(math.sqrt(target / ratio)))
        if 0 < eh < h and 0 < ew < w:
            return int(rng.integers(0, h - eh + 1)), int(rng.integers(0, w - ew + 1)), eh, ew
    return None


def test_fill_pixel_is_the_inverse_normalisation_of_cajs_values():
    op, _ = A.build_op({"op": "channel_random_erasing", "p": 1.0})
    # 255 (mean_c + v_c std_c): 255 (0.485 + 0.4914 * 0.229) = 152.37, 255 (0.456 + 0.4822 * 0.224) = 143.82,
    # 255 (0.406 + 0.4465 * 0.225) = 129.14
    assert op.fill.tolist() == [152, 144, 129]


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_box_filled_per_channel_and_rest_untouched(seed: int):
    h, w = 48, 24
    img = np.random.default_rng(100 + seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    op, _ = A.build_op({"op": "channel_random_erasing", "p": 1.0})
    out = op(img, np.random.default_rng(seed))
    box = _replay_box(seed, h, w)
    assert box is not None
    y, x, eh, ew = box
    inside = np.zeros((h, w), bool)
    inside[y : y + eh, x : x + ew] = True
    assert 0.02 * h * w - eh - ew <= inside.sum() <= 0.4 * h * w + eh + ew  # area fraction (rounded sides)
    assert (out[~inside] == img[~inside]).all()
    t = A.to_tensor_batch(out[None]).numpy()[0]  # (3, H, W) normalised
    for c in range(3):
        half_level = 0.5 / (255 * A.IMAGENET_STD[c])
        assert np.abs(t[c][inside] - CAJ[c]).max() <= half_level + 1e-6
        assert np.allclose(t[c][inside], t[c][inside][0])  # one constant per channel
    # the three channels get different values (a per-channel fill, not one grey)
    assert len({round(float(t[c][inside][0]), 4) for c in range(3)}) == 3


def test_probability_and_custom_values():
    img = np.full((40, 20, 3), 9, dtype=np.uint8)
    op, _ = A.build_op({"op": "channel_random_erasing", "p": 0.5})
    hits = sum(not np.array_equal(op(img, np.random.default_rng(s)), img) for s in range(400))
    assert 160 <= hits <= 240  # Binomial(400, 0.5): mean 200, sd 10
    never, _ = A.build_op({"op": "channel_random_erasing", "p": 0.0})
    assert never(img, np.random.default_rng(0)) is img
    # value 0 in every channel = the ImageNet mean colour (Zhong's erasing with fill "mean")
    zero, _ = A.build_op({"op": "channel_random_erasing", "p": 1.0, "value": 0.0})
    assert zero.fill.tolist() == [124, 116, 104]


def test_bad_parameters_are_named():
    with pytest.raises(VibenchError, match="channel_random_erasing: p must be in"):
        A.build_op({"op": "channel_random_erasing", "p": 1.5})
    with pytest.raises(VibenchError, match="3 per-channel"):
        A.build_op({"op": "channel_random_erasing", "value": [0.1, 0.2]})
    with pytest.raises(VibenchError, match="outside the 0-255"):
        A.build_op({"op": "channel_random_erasing", "value": [5.0, 0.0, 0.0]})
