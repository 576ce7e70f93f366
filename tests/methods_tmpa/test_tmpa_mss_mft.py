"""TMPA: MSS loss (Eq. 4-6) on hand numbers, MSI, and the MFT module (Eq. 9-11)."""
from __future__ import annotations

import math

import pytest
import torch

from vibench.errors import VibenchError
from vibench_methods.losses.tmpa import msi_loss, mss_loss


def test_mss_hand_example_and_margin() -> None:
    # one identity, one pair: F_sp^V = (1, 0), F_sp^I = (0, 1) -> d_sp = sqrt(2)
    v, i = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    sh = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # equal to F_sp row by row -> d_ss = 0
    y = torch.tensor([0])
    assert float(mss_loss(v, i, sh, y, margin=0.65)) == 0.0  # sqrt(2) > 0.65: no penalty
    assert math.isclose(float(mss_loss(v, i, sh, y, margin=2.0)), 2.0 - math.sqrt(2), rel_tol=1e-6)
    # identical specific features and shared = specific: both distances 0 -> loss = margin
    same = torch.tensor([[0.6, 0.8]])
    assert math.isclose(float(mss_loss(same, same, torch.cat([same, same]), y)), 0.65, rel_tol=1e-6)


def test_mss_per_identity_means_and_sum() -> None:
    # two identities; id 0: pairs with d_sp 0 and 0.6 (mean 0.3), shared rows at distance 0.2 / 0 / 0.2 / 0
    # (mean 0.1) -> max(0.65 - 0.4, 0) = 0.25; id 1: everything identical -> 0.65. Sum 0.9, mean 0.45.
    v = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    # chord 0.6 from (1, 0, 0): cos = 1 - 0.6^2 / 2 = 0.82
    i = torch.tensor([[1.0, 0.0, 0.0], [0.82, math.sqrt(1 - 0.82**2), 0.0], [0.0, 0.0, 1.0]])
    # unit vectors at chord distance 0.2 from (1,0,0): (1 - 0.02, sqrt(1 - 0.98^2), 0)
    c = torch.tensor([[0.98, math.sqrt(1 - 0.98**2), 0.0]])
    sh = torch.cat([c, v[1:2], v[2:3], c * 0 + i[0:1], i[1:2], i[2:3]])
    sh[3] = torch.tensor([0.98, -math.sqrt(1 - 0.98**2), 0.0])
    y = torch.tensor([0, 0, 1])
    got = mss_loss(v, i, sh, y, margin=0.65)
    assert math.isclose(float(got), 0.25 + 0.65, rel_tol=1e-5)
    assert math.isclose(float(mss_loss(v, i, sh, y, reduction="mean")), 0.45, rel_tol=1e-5)
    with pytest.raises(VibenchError):
        mss_loss(v, i, sh[:3], y)


def test_mss_gradient_pushes_apart() -> None:
    v = torch.tensor([[1.0, 0.0]], requires_grad=True)
    i = torch.tensor([[0.9, 0.1]])
    sh = torch.tensor([[1.0, 0.0], [0.9, 0.1]])
    mss_loss(v, i, sh, torch.tensor([0]), normalize=False).backward()
    # d loss / d v points towards i (loss falls as v moves away from i)
    assert float(v.grad[0, 0]) < 0 and float(v.grad[0, 1]) > 0


def test_msi_is_two_cross_entropies() -> None:
    lv = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    li = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    y = torch.tensor([0, 1])
    ce = lambda l: -torch.log_softmax(l, 1)[torch.arange(2), y].mean()  # noqa: E731
    assert torch.allclose(msi_loss(lv, li, y), ce(lv) + ce(li))


def test_mss_with_two_visible_views_pairs_row_j_with_infrared_row_j_mod_b() -> None:
    # B = 1 sample, two visible views (colour, channel-augmented) and one infrared row.
    # d_sp = mean(|v0 - i|, |v1 - i|) = (sqrt(2) + 0) / 2; d_ss = mean over 3 shared rows of
    # |sh - Cat(v0, v1, i)| = (0 + 0 + 0) / 3 -> loss = max(1.5 - sqrt(2)/2, 0).
    v = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    i = torch.tensor([[0.0, 1.0]])
    sh = torch.cat([v, i])
    y = torch.tensor([4])
    assert math.isclose(float(mss_loss(v, i, sh, y, margin=1.5)), 1.5 - math.sqrt(2) / 2, rel_tol=1e-6)
    with pytest.raises(VibenchError, match="k\\*B visible rows"):
        mss_loss(v, i, sh[:2], y)


def test_msi_with_repeated_visible_labels() -> None:
    lv = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.5, 0.0]])
    li = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    y = torch.tensor([0, 1])
    yv = y.repeat(2)
    want = torch.nn.functional.cross_entropy(lv, yv) + torch.nn.functional.cross_entropy(li, y)
    assert torch.allclose(msi_loss(lv, li, yv, y), want)
