"""PMCM: center-to-center memory (Eq. 6) on hand numbers and its delayed start, the mu ramp,
part-alignment KL (Eq. 4), PMML (Eq. 8-9), sample-to-sample (Eq. 2), part stripes."""
from __future__ import annotations

import math

import torch

from vibench_methods.layers.part_pool import PartPool, PartWiseMAM, stripe_bounds
from vibench_methods.losses.pmcm import CenterMemory, SampleToSample, mu_ramp, part_align_kl, pmml_loss


def test_center_memory_update_on_hand_numbers() -> None:
    mem = CenterMemory(num_classes=3, dim=2, momentum=0.9)
    fv = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]])
    yv = torch.tensor([0, 0, 2])
    fi = torch.tensor([[0.0, 0.0], [0.0, 4.0]])
    yi = torch.tensor([0, 2])
    # first batch: centres = batch means; V: id0 (2, 0), id2 (0, 2); I: id0 (0, 0), id2 (0, 4)
    loss = mem(fv, yv, fi, yi)
    assert torch.allclose(mem.centers[0, 0], torch.tensor([2.0, 0.0]))
    assert torch.allclose(mem.centers[1, 2], torch.tensor([0.0, 4.0]))
    assert mem.filled.tolist() == [[True, False, True], [True, False, True]]
    # loss = mean(||(2,0)-(0,0)||^2, ||(0,2)-(0,4)||^2) = (4 + 4) / 2
    assert math.isclose(float(loss), 4.0)
    # second batch: m <- 0.9 m + 0.1 batch mean
    fv2 = torch.tensor([[12.0, 0.0]], requires_grad=True)
    loss2 = mem(fv2, torch.tensor([0]), torch.tensor([[10.0, 0.0]]), torch.tensor([0]))
    # V id0: 0.9*(2,0) + 0.1*(12,0) = (3, 0); I id0: 0.9*(0,0) + 0.1*(10,0) = (1, 0)
    assert torch.allclose(mem.centers[0, 0], torch.tensor([3.0, 0.0]))
    assert torch.allclose(mem.centers[1, 0], torch.tensor([1.0, 0.0]))
    assert torch.allclose(mem.centers[0, 2], torch.tensor([0.0, 2.0]))  # untouched
    assert math.isclose(float(loss2.detach()), 4.0)
    loss2.backward()
    # d/d fv2 of ||0.9 m_old + 0.1 f - c_I||^2 = 2 * 0.1 * (3 - 1) on x
    assert torch.allclose(fv2.grad, torch.tensor([[0.4, 0.0]]))
    # checkpoints carry the bank
    sd = mem.state_dict()
    assert "centers" in sd and "filled" in sd
    fresh = CenterMemory(3, 2)
    fresh.load_state_dict(sd)
    assert torch.equal(fresh.centers, mem.centers)


def test_center_memory_delayed_start_still_updates() -> None:
    mem = CenterMemory(num_classes=2, dim=1, momentum=0.5)
    loss = mem(torch.tensor([[2.0]]), torch.tensor([1]), torch.tensor([[0.0]]), torch.tensor([1]), active=False)
    assert float(loss) == 0.0 and not loss.requires_grad
    assert torch.allclose(mem.centers[:, 1, 0], torch.tensor([2.0, 0.0]))
    loss = mem(torch.tensor([[4.0]]), torch.tensor([1]), torch.tensor([[2.0]]), torch.tensor([1]), active=True)
    # V: 0.5*2 + 0.5*4 = 3; I: 0.5*0 + 0.5*2 = 1 -> (3 - 1)^2 = 4
    assert math.isclose(float(loss), 4.0)


def test_mu_ramp_values() -> None:
    assert mu_ramp(0) == 0.0
    assert math.isclose(mu_ramp(10), 0.1)
    assert math.isclose(mu_ramp(25), 0.25)
    assert mu_ramp(50) == 0.5 and mu_ramp(100) == 0.5
    assert math.isclose(mu_ramp(1, mu_max=0.5, ramp_epochs=2), 0.25)  # tiny config: half of 4 epochs


def test_part_align_kl_hand_distributions() -> None:
    # global softmax = (0.5, 0.5); part 1 softmax = (0.5, 0.5), part 2 softmax = (0.8, 0.2)
    g = torch.zeros(1, 2)
    p = torch.stack([torch.zeros(2), torch.log(torch.tensor([0.8, 0.2]))])[None]
    want = 0.0 + (0.5 * math.log(0.5 / 0.8) + 0.5 * math.log(0.5 / 0.2))
    assert math.isclose(float(part_align_kl(g, p)), want, rel_tol=1e-6)
    # batch mean over rows
    g2 = torch.cat([g, g]); p2 = torch.cat([p, torch.zeros(1, 2, 2)])
    assert math.isclose(float(part_align_kl(g2, p2)), want / 2, rel_tol=1e-6)


def test_pmml_weights_and_targets() -> None:
    c = 3
    uni = torch.zeros(1, c)
    sharp = torch.log(torch.tensor([[0.7, 0.2, 0.1]]))
    kl = float((torch.tensor([0.7, 0.2, 0.1]) * torch.log(torch.tensor([0.7, 0.2, 0.1]) * 3)).sum())
    parts_same = torch.zeros(1, 2, c)
    vis = (sharp.clone().requires_grad_(), parts_same.clone())
    ir = (uni, parts_same)
    mixed = (uni.clone().requires_grad_(), parts_same.clone())
    loss = pmml_loss(vis, ir, mixed, mixed, p=0.1)
    # M-V: KL(sharp || uniform) on the global term, parts identical -> 0; M-I: 0.
    assert math.isclose(float(loss.detach()), 0.1 * kl, rel_tol=1e-5)
    loss.backward()
    assert vis[0].grad is None or float(vis[0].grad.abs().sum()) == 0.0  # targets detached
    assert float(mixed[0].grad.abs().sum()) > 0


def test_sample_to_sample_zero_for_identical_and_positive_otherwise() -> None:
    torch.manual_seed(0)
    s2s = SampleToSample(8, hidden=4).train()
    f = torch.randn(6, 8)
    assert float(s2s(f, f)) < 1e-6
    assert float(s2s(f, torch.randn(6, 8))) > 0.1


def test_part_pool_and_stripes() -> None:
    x = torch.arange(2 * 1 * 4 * 2, dtype=torch.float).reshape(2, 1, 4, 2)
    out = PartPool(2)(x)
    assert out.shape == (2, 2, 1)
    assert torch.allclose(out[0, :, 0], torch.tensor([1.5, 5.5]))
    assert stripe_bounds(24, 4) == [(0, 6), (6, 12), (12, 18), (18, 24)]
    assert stripe_bounds(6, 4) == [(0, 2), (1, 3), (3, 5), (4, 6)]
    mam = PartWiseMAM(8, parts=4, reduction=2)
    y = mam(torch.rand(2, 8, 8, 4))
    assert y.shape == (2, 8, 8, 4)
