"""PMCM items fixed against the paper: the per-patch Bernoulli(p) patch-mix draw (§3.3.1), Eq. 9's
weight = the configured ratio p, and the paper config's augmentation (CAJ random channel erasing)."""
from __future__ import annotations

import torch

from vibench.engine.config import load_config
from vibench_methods.mixing.build import build_mixer
from vibench_methods.mixing.patchmix import PatchMix, patchmix_mask
from vibench_methods.pmcm import pmml_weight


def test_paper_config_uses_the_per_patch_draw_and_channel_erasing() -> None:
    for dataset, p in (("sysu", 0.1), ("regdb", 0.5)):
        cfg = load_config("pmcm", "paper", dataset=dataset)
        assert cfg["pmcm"]["mixing"]["patchmix"] == {"patch": 16, "p": p, "sampling": "bernoulli"}
        for mod in ("visible", "infrared"):
            ops = [a["op"] for a in cfg["augment"][mod]]
            assert ops == ["hflip", "channel_random_erasing"], (dataset, mod, ops)
    mixer = build_mixer({"kind": "patchmix", "patchmix": {"patch": 16, "p": 0.1, "sampling": "bernoulli"}})
    assert isinstance(mixer, PatchMix) and mixer.sampling == "bernoulli"


def test_visible_patch_count_is_binomial_not_round_pT() -> None:
    # 384 x 192 with 16 x 16 patches: T = 24 x 12 = 288; p = 0.1 -> Binomial(288, 0.1):
    # mean T p = 28.8, variance T p (1 - p) = 25.92. The exact reading would give 29 every time.
    g = torch.Generator().manual_seed(0)
    n = 2000
    counts = torch.tensor([int(patchmix_mask(24, 12, 0.1, "bernoulli", g).sum()) for _ in range(n)], dtype=torch.float64)
    mean, var = float(counts.mean()), float(counts.var())
    assert abs(mean - 28.8) < 5 * (25.92 / n) ** 0.5  # 5 standard errors of the mean (0.57)
    assert abs(var - 25.92) < 5 * 25.92 * (2 / (n - 1)) ** 0.5  # 5 standard errors of the variance (4.1)
    assert float((counts == 29).double().mean()) < 0.15  # P(X = 29) = 0.078 for Binomial(288, 0.1)
    assert len(set(counts.tolist())) > 10
    exact = {int(patchmix_mask(24, 12, 0.1, "exact", g).sum()) for _ in range(50)}
    assert exact == {29}


def test_patch_draws_are_independent_per_patch() -> None:
    # each patch visible with probability p on its own: across draws, a patch's frequency is p and
    # two patches co-occur with probability p^2 (the exact sampler gives a slightly negative correlation)
    g = torch.Generator().manual_seed(1)
    masks = torch.stack([patchmix_mask(4, 2, 0.5, "bernoulli", g).flatten() for _ in range(4000)]).double()
    freq = masks.mean(0)
    assert float((freq - 0.5).abs().max()) < 0.04  # sd of one frequency = 0.0079
    both = (masks[:, 0] * masks[:, 1]).mean()
    assert abs(float(both) - 0.25) < 0.03
    # the mixed image copies whole patches: each 16 x 16 patch is all visible or all infrared
    vis, ir = torch.ones(3, 3, 64, 32), torch.zeros(3, 3, 64, 32)
    out = PatchMix(patch=16, p=0.5, sampling="bernoulli")(vis, ir, g).ir_based
    patches = out[:, 0].reshape(3, 4, 16, 2, 16).permute(0, 1, 3, 2, 4).reshape(3, 8, 256)
    assert bool(((patches.amin(-1) == patches.amax(-1))).all())


def test_eq9_weight_is_the_configured_ratio_not_the_realised_share() -> None:
    pm = PatchMix(patch=16, p=0.1, sampling="bernoulli")
    realised = torch.tensor([0.05, 0.20])  # a draw's visible shares differ from p
    assert pmml_weight(pm, "ir_based", realised) == 0.1
    assert abs(pmml_weight(pm, "vis_based", realised) - 0.9) < 1e-12
    # generators without a ratio (PMCM Table 4 alternatives): the mean realised visible share
    assert abs(pmml_weight(object(), "ir_based", realised) - 0.125) < 1e-7
