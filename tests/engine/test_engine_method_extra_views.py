"""Method.extra_views: further training views built from the decoded, un-augmented image with a
generator of their own (the engine hook AMINet's independently augmented upper-body crop uses)."""
from __future__ import annotations

import numpy as np
import torch

from vibench.engine.augment import build_pipeline
from vibench.engine.batch_sampler import EpochPlan
from vibench.engine.trainer import HOOK_VIEW_TAG, _EpochBatches


def _images() -> np.ndarray:
    # image i: rows hold 10*i + row, columns 0..3 in the green channel, so flips and crops are visible
    img = np.zeros((3, 4, 4, 3), dtype=np.uint8)
    for i in range(3):
        img[i, :, :, 0] = (10 * i + np.arange(4))[:, None]
        img[i, :, :, 1] = np.arange(4)[None, :]
    return img


def test_extra_view_gets_the_raw_image_and_its_own_generator() -> None:
    images = _images()
    plan = EpochPlan(vis=np.array([[0, 1]]), ir=np.array([[2, 2]]), labels=np.array([[0, 1]]))
    seen: list[tuple[np.ndarray, str, float]] = []

    def views(image, modality, augment, rng):
        seen.append((image.copy(), modality, float(rng.random())))
        return {"top": augment(image[:2], rng), "raw": image[:2].copy()}

    gray = build_pipeline([{"op": "grayscale", "p": 1.0}])  # changes the main view, not the raw input
    data = _EpochBatches(images, plan, [gray], [gray], [7, 0], 3, views)
    out = data[0]
    assert set(out) >= {"vis", "ir", "vis_top", "ir_top", "vis_raw", "ir_raw"}
    assert out["vis"].shape == (2, 4, 4, 3) and out["vis_top"].shape == (2, 2, 4, 3)
    # the hook received the un-augmented image (not the grayscale main view) with its modality
    assert [m for _, m, _ in seen] == ["visible", "visible", "infrared", "infrared"]
    assert np.array_equal(seen[0][0], images[0]) and np.array_equal(seen[1][0], images[1])
    assert torch.equal(out["vis_raw"][1], torch.from_numpy(images[1, :2]))
    # ... and its own generator: seed (seed, stage, epoch, batch, modality, slot, HOOK_VIEW_TAG)
    assert seen[1][2] == np.random.default_rng([7, 0, 3, 0, 0, 1, HOOK_VIEW_TAG]).random()
    assert seen[2][2] == np.random.default_rng([7, 0, 3, 0, 1, 0, HOOK_VIEW_TAG]).random()
    # the main views are exactly what they are without a hook (their draws are untouched)
    plain = _EpochBatches(images, plan, [gray], [gray], [7, 0], 3)[0]
    assert set(plain) == {"vis", "ir", "vis_index", "ir_index", "vis_label", "ir_label"}
    assert torch.equal(plain["vis"], out["vis"]) and torch.equal(plain["ir"], out["ir"])
    # the augment callable is the modality's pipeline: grayscale of the top rows, luma by hand
    r, g = images[0, :2, :, 0].astype(float), images[0, :2, :, 1].astype(float)
    luma = np.clip(np.rint(0.299 * r + 0.587 * g), 0, 255)
    assert np.array_equal(out["vis_top"][0, :, :, 2].numpy(), luma)


def test_hook_and_config_extra_view_draw_from_different_streams() -> None:
    """A method with both a config extra view (key ends in view number 1) and the hook: the two
    extra images of one slot come from different generators."""
    images = _images()
    plan = EpochPlan(vis=np.array([[0, 1]]), ir=np.array([[2, 2]]), labels=np.array([[0, 1]]))
    hook_draws: list[float] = []

    def views(image, modality, augment, rng):
        hook_draws.append(float(rng.random()))
        return {}

    config_draws: list[float] = []

    def extra_pipe(image, rng, epoch):
        config_draws.append(float(rng.random()))
        return image

    data = _EpochBatches(images, plan, [lambda im, rng, epoch: im, extra_pipe], [lambda im, rng, epoch: im],
                         [7, 0], 3, views)
    out = data[0]
    assert out["vis"].shape[0] == 4  # base + config extra view rows
    assert len(config_draws) == 2 and len(hook_draws) == 4
    assert not set(config_draws) & set(hook_draws)
