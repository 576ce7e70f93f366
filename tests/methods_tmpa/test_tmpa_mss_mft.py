"""TMPA: MSS loss (Eq. 4-6) on hand numbers, MSI, and the MFT module (Eq. 9-11)."""
from __future__ import annotations

import math

import pytest
import torch

from vibench.errors import VibenchError
from vibench_methods.layers.modality_transfer import ModalityFeatureTransfer
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


def test_mft_shapes_and_shared_projections() -> None:
    torch.manual_seed(0)
    m = ModalityFeatureTransfer(channels=16, dim=8, heads=2).eval()
    s_sh, s_v, s_i = (torch.rand(3, 16, 6, 3) for _ in range(3))
    out = m(s_sh, s_v, s_i)
    for key in ("conv_sh", "ca_vis", "conv_vis", "sp_vis_prime", "ca_ir", "conv_ir", "sp_ir_prime"):
        assert out[key].shape == (3, 16, 6, 3), key
    assert torch.allclose(out["sp_vis_prime"], out["ca_vis"] + out["conv_vis"])  # Eq. 11
    # exactly four 1x1 projections (Q^V, Q^I, K_sh, V_sh), used by BOTH paths:
    proj = [n for n, mod in m.named_modules() if isinstance(mod, torch.nn.Conv2d) and mod.in_channels == 16 and mod.out_channels == 8]
    assert sorted(proj) == ["k_sh", "q_ir", "q_vis", "v_sh"]
    for bn in (m.conv_vis.bn, m.conv_ir.bn, m.conv_sh.bn):
        bn.weight.data.fill_(1.0)  # make the conv paths non-trivial
    base = m(s_sh, s_v, s_i)
    with torch.no_grad():
        m.q_vis.weight.add_(0.5)
    after = m(s_sh, s_v, s_i)
    assert not torch.allclose(base["ca_vis"], after["ca_vis"])  # attention path uses Q^V
    assert not torch.allclose(base["conv_vis"], after["conv_vis"])  # conv path reuses Q^V
    assert torch.allclose(base["ca_ir"], after["ca_ir"]) and torch.allclose(base["conv_sh"], after["conv_sh"])
    with torch.no_grad():
        m.k_sh.weight.add_(0.5)
    after2 = m(s_sh, s_v, s_i)
    assert not torch.allclose(after["ca_ir"], after2["ca_ir"])  # K_sh shared by both queries
    assert not torch.allclose(after["ca_vis"], after2["ca_vis"])
    assert not torch.allclose(after["conv_sh"], after2["conv_sh"])  # and reused by Conv_sh


def test_mft_attention_is_eq10_per_row() -> None:
    torch.manual_seed(1)
    m = ModalityFeatureTransfer(channels=4, dim=4, heads=1).eval()
    s_sh, s_v = torch.rand(2, 4, 2, 2), torch.rand(2, 4, 2, 2)
    q = m.q_vis(s_v).flatten(2).transpose(1, 2)  # (B, N, d)
    k = m.k_sh(s_sh).flatten(2).transpose(1, 2)
    v = m.v_sh(s_sh).flatten(2).transpose(1, 2)
    att = torch.softmax(q @ k.transpose(1, 2) / 2.0, -1) @ v  # sqrt(d) = 2
    want = m.attn_out(att.transpose(1, 2).reshape(2, 4, 2, 2))
    assert torch.allclose(m(s_sh, s_v)["ca_vis"], want, atol=1e-5)
    # row 0's output does not depend on row 1's shared map
    s_sh2 = s_sh.clone()
    s_sh2[1] += 1.0
    assert torch.allclose(m(s_sh2, s_v)["ca_vis"][0], m(s_sh, s_v)["ca_vis"][0], atol=1e-6)
    # at initialisation the conv path returns its input (zero-initialised output BN)
    assert torch.allclose(m(s_sh, s_v)["conv_vis"], s_v)
