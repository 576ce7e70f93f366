"""Extra augmentation views (augment.<modality>_extra_view): CAJ's colour + channel-exchanged
visible views of one sampled image, stacked view-major with repeated labels."""
from __future__ import annotations

import numpy as np
import pytest

from vibench.engine.augment import build_views
from vibench.engine.batch_sampler import EpochPlan
from vibench.engine.config import load_config
from vibench.engine.schema import validate
from vibench.engine.sections import AugmentConfig
from vibench.engine.trainer import _EpochBatches
from vibench.errors import VibenchError


def _colour_images(n: int = 6, h: int = 8, w: int = 4) -> np.ndarray:
    """Image k: R = 200 - k, G = 100 + k, B = 30 + 2k everywhere (three different channels)."""
    imgs = np.zeros((n, h, w, 3), dtype=np.uint8)
    for k in range(n):
        imgs[k] = (200 - k, 100 + k, 30 + 2 * k)
    return imgs


def _plan() -> EpochPlan:
    vis = np.array([[0, 1, 2]])
    ir = np.array([[3, 4, 5]])
    return EpochPlan(vis=vis, ir=ir, labels=np.array([[7, 7, 9]]))


def test_visible_extra_view_keeps_colour_and_adds_channel_exchanged_rows() -> None:
    imgs = _colour_images()
    aug = {"visible": [], "visible_extra_view": [{"op": "channel_exchange", "gray": 2}], "infrared": []}
    vis_pipes, ir_pipes = build_views(aug, "visible"), build_views(aug, "infrared")
    assert (len(vis_pipes), len(ir_pipes)) == (2, 1)
    batch = _EpochBatches(imgs, _plan(), vis_pipes, ir_pipes, [0, 0], 0)[0]
    vis = batch["vis"].numpy()
    assert vis.shape == (6, 8, 4, 3) and batch["ir"].shape == (3, 8, 4, 3)
    # labels and record indices repeated, view-major: rows i and 3 + i are one sample
    assert batch["vis_label"].tolist() == [7, 7, 9, 7, 7, 9]
    assert batch["vis_index"].tolist() == [0, 1, 2, 0, 1, 2]
    assert batch["ir_label"].tolist() == [7, 7, 9] and batch["ir_index"].tolist() == [3, 4, 5]
    for i, k in enumerate([0, 1, 2]):
        # view 0: the colour image itself (identity pipeline), three different channels
        assert np.array_equal(vis[i], imgs[k]) and len({int(c) for c in vis[i, 0, 0]}) == 3
        # view 1: channel exchange with gray = 2 copies R, G or B into all three channels
        px = vis[3 + i, 0, 0]
        assert px[0] == px[1] == px[2] and int(px[0]) in {200 - k, 100 + k, 30 + 2 * k}


def test_extra_view_leaves_the_base_view_unchanged_and_draws_its_own_randomness() -> None:
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(6, 16, 8, 3), dtype=np.uint8)
    crop = [{"op": "pad_crop", "pad": 4}, {"op": "hflip", "p": 0.5}]
    one = _EpochBatches(imgs, _plan(), build_views({"visible": crop}, "visible"), build_views({}, "infrared"), [3, 0], 2)[0]
    two_aug = {"visible": crop, "visible_extra_view": crop}
    two = _EpochBatches(imgs, _plan(), build_views(two_aug, "visible"), build_views({}, "infrared"), [3, 0], 2)[0]
    assert np.array_equal(two["vis"][:3].numpy(), one["vis"].numpy())
    # the same pipeline in the extra view draws other crops/flips (independent generators)
    assert not np.array_equal(two["vis"][3:].numpy(), two["vis"][:3].numpy())
    assert np.array_equal(two["ir"].numpy(), imgs[[3, 4, 5]])


def test_extra_view_lists_are_validated() -> None:
    cfg = validate(AugmentConfig, {"visible_extra_view": [{"op": "channel_exchange", "gray": 2}]}, "aug")
    assert cfg.visible_extra_view == ({"op": "channel_exchange", "gray": 2},)
    with pytest.raises(VibenchError, match="channel_exchang"):
        validate(AugmentConfig, {"visible_extra_view": [{"op": "channel_exchang"}]}, "aug")


def test_tmpa_paper_config_trains_on_colour_plus_channel_augmented_views() -> None:
    aug = load_config("tmpa", "paper", dataset="regdb")["augment"]
    assert not any(s["op"] == "channel_exchange" for s in aug["visible"])
    assert [s["op"] for s in aug["visible_extra_view"]][-1] == "channel_exchange"
