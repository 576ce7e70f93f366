"""AMK-MMD (AMINet Eq. 6-8) against a naive double loop; phase congruency on a step edge; PESAM."""
from __future__ import annotations

import math

import torch

from vibench_methods.layers.pesam import PESAM, PhaseCongruency, log_gabor_bank, phase_congruency
from vibench_methods.losses.mmd import AMKMMD


def naive_amk_mmd(x: torch.Tensor, y: torch.Tensor, alphas: list[float], mults: list[float], unbiased: bool) -> float:
    z = torch.cat([x, y]).double()
    n = z.shape[0]
    total = 0.0
    for i in range(n):
        for j in range(n):
            if i != j:
                total += float(((z[i] - z[j]) ** 2).sum())
    base = total / (n * n - n)

    def k(a: torch.Tensor, b: torch.Tensor) -> float:
        d = float(((a.double() - b.double()) ** 2).sum())
        return sum(al * math.exp(-d / (base * m)) for al, m in zip(alphas, mults))

    ns, nt = x.shape[0], y.shape[0]
    if unbiased:
        xx = sum(k(x[i], x[j]) for i in range(ns) for j in range(ns) if i != j) / (ns * (ns - 1))
        yy = sum(k(y[i], y[j]) for i in range(nt) for j in range(nt) if i != j) / (nt * (nt - 1))
    else:
        xx = sum(k(x[i], x[j]) for i in range(ns) for j in range(ns)) / ns**2
        yy = sum(k(y[i], y[j]) for i in range(nt) for j in range(nt)) / nt**2
    xy = sum(k(x[i], y[j]) for i in range(ns) for j in range(nt)) / (ns * nt)
    return xx + yy - 2 * xy


def test_amk_mmd_matches_double_loop_unbiased_and_biased() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 4, generator=g)
    y = torch.randn(6, 4, generator=g) + 0.7
    mults = [0.25, 0.5, 1.0, 2.0, 4.0]
    mmd = AMKMMD(mults, learn_weights=True, estimator="unbiased")
    with torch.no_grad():
        mmd.logits.copy_(torch.tensor([0.3, -0.2, 0.0, 1.0, -1.0]))
    alphas = (0.5 * torch.softmax(mmd.logits.detach(), 0) + 0.1).tolist()  # floor 0.5 over M = 5 kernels
    assert abs(float(mmd(x, y).detach()) - naive_amk_mmd(x, y, alphas, mults, True)) < 1e-5
    biased = AMKMMD(mults, learn_weights=False, estimator="biased")
    assert abs(float(biased(x, y)) - naive_amk_mmd(x, y, [0.2] * 5, mults, False)) < 1e-5


def test_amk_mmd_unbiased_is_near_zero_for_same_distribution_and_learns_weights() -> None:
    g = torch.Generator().manual_seed(1)
    mmd = AMKMMD()
    same = torch.stack([mmd(torch.randn(16, 8, generator=g), torch.randn(16, 8, generator=g)) for _ in range(30)])
    shifted = mmd(torch.randn(16, 8, generator=g), torch.randn(16, 8, generator=g) + 2.0)
    assert abs(float(same.detach().mean())) < 0.02  # unbiased: mean ~ 0 (single draws may be negative)
    assert float(shifted.detach()) > 0.2
    shifted.backward()
    assert mmd.logits.grad is not None and float(mmd.logits.grad.abs().sum()) > 0
    assert torch.allclose(mmd.alphas.sum(), torch.tensor(1.0))


def _step_image(noise: float = 0.01) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    img = torch.zeros(1, 3, 32, 128)
    img[..., 64:] = 1.0  # step at column 64 (and, periodically, at column 0)
    return img * 0.5 + 0.3 + noise * torch.randn(img.shape, generator=g)


def test_phase_congruency_high_at_step_low_on_flat() -> None:
    pc = PhaseCongruency()(_step_image())[0, 0]
    edge = pc[:, 63:65].mean()
    flat = torch.cat([pc[:, 20:44], pc[:, 84:108]], 1).mean()
    assert float(edge) > 0.6
    assert float(flat) < 0.05
    assert float(pc.min()) >= 0.0 and float(pc.max()) <= 1.0
    # invariance to contrast/brightness (PC is dimensionless)
    pc2 = PhaseCongruency()(_step_image() * 3.0 - 1.0)[0, 0]
    assert float((pc2[:, 63:65].mean() - edge).abs()) < 0.05


def test_phase_congruency_eq9_literal_without_spread_weight() -> None:
    gray = _step_image()[:, 0]
    bank = log_gabor_bank(32, 128)
    pc = phase_congruency(gray, bank, spread_weighting=False)[0]
    assert float(pc[:, 63:65].mean()) > 0.6
    assert float(torch.cat([pc[:, 28:36], pc[:, 92:100]], 1).mean()) < 0.35


def test_log_gabor_bank_zero_dc_and_orientation() -> None:
    bank = log_gabor_bank(32, 32, n_scales=3, n_orient=4)
    assert bank.shape == (4, 3, 32, 32)
    assert torch.all(bank[:, :, 0, 0] == 0)
    # orientation 0 passes horizontal frequencies (vertical edges), not vertical ones
    assert float(bank[0, 0, 0, 5]) > 0.1 and float(bank[0, 0, 5, 0]) == 0.0


def test_pesam_shapes_and_fusion_weights() -> None:
    m = PESAM()
    feat = torch.rand(4, 8, 6, 3, requires_grad=True)
    images = torch.randn(4, 3, 48, 24)
    vis = torch.tensor([True, True, False, False])
    out = m(feat, images, vis)
    assert out.shape == feat.shape
    # at init alpha = 1/3 each: out = F (1 + A)/3 + F A / 3
    a = m.attention(m.pc(images), (6, 3))
    assert torch.allclose(out, feat * (1 + a) / 3 + feat * a / 3, atol=1e-6)
    out.sum().backward()
    assert m.fusion_logits.grad is not None and m.attention.conv.weight.grad is not None
