"""PedMix (TMPA Eq. 1-3) and PMCM patch-mix on hand examples."""
from __future__ import annotations

import pytest
import torch

from vibench.errors import VibenchError
from vibench_methods.mixing.build import build_mixer
from vibench_methods.mixing.patchmix import PatchMix, patchmix_mask
from vibench_methods.mixing.pedmix import CENTRE, OUTER, SUB_CENTRE, PedMix, pedmix_mask, pedmix_regions


def test_pedmix_regions_paper_grid() -> None:
    # 288 x 144 image, 12 x 12 patches -> 24 x 12 grid; Phi1 = 192 x 48 px, Phi2 = 240 x 96 px.
    r = pedmix_regions(24, 12, 12)
    assert (r == CENTRE).sum() == 16 * 4 == 64
    assert (r == SUB_CENTRE).sum() == 20 * 8 - 64 == 96
    assert (r == OUTER).sum() == 288 - 160 == 128
    assert torch.all(r[4:20, 4:8] == CENTRE)
    assert torch.all(r[2:22, 2:10][r[2:22, 2:10] != CENTRE] == SUB_CENTRE)
    assert r[1, 5] == OUTER and r[22, 5] == OUTER and r[10, 1] == OUTER and r[10, 10] == OUTER
    assert r[2, 2] == SUB_CENTRE and r[21, 9] == SUB_CENTRE and r[4, 3] == SUB_CENTRE


def test_pedmix_regions_small_hand_example() -> None:
    # 6 x 3 grid of 1-px patches (patch centres at 0.5, 1.5, ...), boxes half-open [top, bottom):
    # Phi1 = 4 x 1 px -> rows [1, 5) -> centres 1.5..4.5 = rows 1..4; cols [1, 2) -> col 1.
    # Phi2 = 5 x 2 px -> rows [0.5, 5.5) -> rows 0..4; cols [0.5, 2.5) -> cols 0, 1.
    r = pedmix_regions(6, 3, 1)
    expected = torch.tensor([[1, 1, 2], [1, 0, 2], [1, 0, 2], [1, 0, 2], [1, 0, 2], [2, 2, 2]])
    assert torch.equal(r, expected)


def test_pedmix_mask_counts_per_region() -> None:
    r = pedmix_regions(24, 12, 12)
    g = torch.Generator().manual_seed(0)
    m = pedmix_mask(r, (0.65, 0.70, 0.75), g)
    assert int(m[r == CENTRE].sum()) == round(0.65 * 64) == 42
    assert int(m[r == SUB_CENTRE].sum()) == round(0.70 * 96) == 67
    assert int(m[r == OUTER].sum()) == round(0.75 * 128) == 96


def test_pedmix_realised_ratios_and_pixels() -> None:
    # visible = ones, infrared = zeros: a pixel's value says where it came from.
    b, h, w = 3, 288, 144
    vis, ir = torch.ones(b, 3, h, w), torch.zeros(b, 3, h, w)
    mix = PedMix()(vis, ir, torch.Generator().manual_seed(1))
    r = pedmix_regions(24, 12, 12)
    for i in range(b):
        from_vis = mix.vis_based[i, 0, ::12, ::12] == 1  # one pixel per patch
        assert torch.all(mix.vis_based[i] == mix.vis_based[i, 0:1].expand(3, -1, -1))
        # A_i = fraction taken from the OTHER modality (text reading, default)
        assert int((~from_vis)[r == CENTRE].sum()) == 42
        assert int((~from_vis)[r == SUB_CENTRE].sum()) == 67
        assert int((~from_vis)[r == OUTER].sum()) == 96
        from_ir = mix.ir_based[i, 0, ::12, ::12] == 0
        assert int((~from_ir).sum()) == 42 + 67 + 96
        # whole patches: every pixel of a patch has the patch's source
        blocks = mix.vis_based[i, 0].reshape(24, 12, 12, 12).permute(0, 2, 1, 3)
        assert torch.all(blocks.amin((2, 3)) == blocks.amax((2, 3)))
    assert torch.allclose(mix.vis_fraction_vis_based, torch.full((b,), (288 - 205) / 288))
    assert torch.allclose(mix.vis_fraction_ir_based, torch.full((b,), 205 / 288))


def test_pedmix_own_reading_and_determinism() -> None:
    vis, ir = torch.ones(2, 3, 96, 48), torch.zeros(2, 3, 96, 48)
    own = PedMix(patch=4, ratio_counts="own")(vis, ir, torch.Generator().manual_seed(0))
    r = pedmix_regions(24, 12, 4)
    kept = own.vis_based[0, 0, ::4, ::4] == 1
    assert int(kept[r == CENTRE].sum()) == 42  # literal Eq. 2: A_C of the centre kept from x^V
    a = PedMix(patch=4)(vis, ir, torch.Generator().manual_seed(5)).vis_based
    b = PedMix(patch=4)(vis, ir, torch.Generator().manual_seed(5)).vis_based
    assert torch.equal(a, b)
    with pytest.raises(VibenchError):
        PedMix(ratios=(0.5, 0.5))
    with pytest.raises(VibenchError):
        PedMix()(vis, ir[:1])


def test_patchmix_exact_count() -> None:
    # 384 x 192 with 16 x 16 patches: 24 x 12 = 288 patches; p = 0.1 -> exactly round(28.8) = 29 visible.
    g = torch.Generator().manual_seed(0)
    m = patchmix_mask(24, 12, 0.1, "exact", g)
    assert int(m.sum()) == 29
    vis, ir = torch.ones(4, 3, 384, 192), torch.zeros(4, 3, 384, 192)
    out = PatchMix(patch=16, p=0.1)(vis, ir, g)
    counts = (out.ir_based[:, 0, ::16, ::16] == 1).flatten(1).sum(1)
    assert counts.tolist() == [29, 29, 29, 29]
    assert torch.allclose(out.vis_fraction_ir_based, torch.full((4,), 29 / 288))
    # the visible-based view swaps the roles: round(0.9 * 288) = 259 visible patches
    assert (out.vis_based[:, 0, ::16, ::16] == 1).flatten(1).sum(1).tolist() == [259] * 4
    # RegDB setting p = 0.5 -> 144 of 288
    assert int(patchmix_mask(24, 12, 0.5, "exact", g).sum()) == 144
    assert int(patchmix_mask(24, 12, 0.0, "exact", g).sum()) == 0


def test_patchmix_bernoulli_mean() -> None:
    g = torch.Generator().manual_seed(0)
    fr = torch.stack([patchmix_mask(24, 12, 0.1, "bernoulli", g).float().mean() for _ in range(400)])
    assert abs(float(fr.mean()) - 0.1) < 0.01
    assert float(fr.std()) > 0.005  # varies from image to image, unlike "exact"


def test_build_mixer() -> None:
    assert build_mixer({"kind": "none"}) is None
    assert isinstance(build_mixer({"kind": "pedmix", "pedmix": {"patch": 4}}), PedMix)
    pm = build_mixer({"kind": "patchmix", "patchmix": {"patch": 4, "p": 0.5}})
    assert isinstance(pm, PatchMix) and pm.p == 0.5
    with pytest.raises(VibenchError, match="pedmix"):
        build_mixer({"kind": "pedmixx"})
    with pytest.raises(VibenchError, match="unknown key"):
        build_mixer({"kind": "patchmix", "patchmix": {"ratio": 0.1}})


def test_paper_configs_mixers() -> None:
    from vibench.engine.config import load_config

    tm = build_mixer(load_config("tmpa", "paper", dataset="sysu")["tmpa"]["mixing"])
    r = tm.regions(288, 144)
    assert [int((r == k).sum()) for k in (CENTRE, SUB_CENTRE, OUTER)] == [64, 96, 128]
    assert tm.ratios == (0.65, 0.70, 0.75) and tm.patch == 12
    pm = build_mixer(load_config("pmcm", "paper", dataset="sysu")["pmcm"]["mixing"])
    assert (pm.patch, pm.p) == (16, 0.1)
    assert build_mixer(load_config("pmcm", "paper", dataset="regdb")["pmcm"]["mixing"]).p == 0.5
