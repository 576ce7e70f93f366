"""MixER building blocks against hand computations: GRL, L_o (Eq. 7), L_cc, L_f (Eq. 15)."""
from __future__ import annotations

import math

import pytest
import torch

from vibench_methods.layers.grl import GradientReversal, dann_coefficient, grad_reverse
from vibench_methods.losses.center_cluster import CenterClusterLoss
from vibench_methods.losses.mixed_fusion_triplet import fuse, mixed_fusion_triplet_loss
from vibench_methods.losses.orthogonal import OrthogonalityLoss, orthogonality_loss


def test_grl_forward_identity_backward_reversed_and_scaled():
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = grad_reverse(x, 0.5)
    assert torch.equal(y, x)
    (y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert x.grad.tolist() == [-0.5, -1.0, -1.5]
    x2 = torch.ones(2, requires_grad=True)
    GradientReversal(1.0)(x2).sum().backward()
    assert x2.grad.tolist() == [-1.0, -1.0]


def test_grl_makes_features_maximise_the_classifier_loss():
    # one SGD step on the feature through the GRL increases the classifier's loss
    torch.manual_seed(0)
    feat = torch.randn(4, 3, requires_grad=True)
    clf = torch.nn.Linear(3, 2)
    target = torch.tensor([0, 1, 0, 1])
    loss = torch.nn.functional.cross_entropy(clf(grad_reverse(feat)), target)
    loss.backward()
    with torch.no_grad():
        after = torch.nn.functional.cross_entropy(clf(feat - 0.1 * feat.grad), target)
    assert after > loss


def test_dann_ramp():
    assert dann_coefficient(0.0) == 0.0
    assert dann_coefficient(1.0) == pytest.approx(2 / (1 + math.exp(-10)) - 1)
    assert dann_coefficient(0.5, max_coeff=0.1) == pytest.approx(0.1 * (2 / (1 + math.exp(-5)) - 1))


def test_orthogonality_loss_hand_vectors():
    z_r = torch.tensor([[1.0, 0.0], [1.0, 1.0], [2.0, 0.0]])
    z_e = torch.tensor([[0.0, 3.0], [1.0, 0.0], [-1.0, 0.0]])
    # cosines: 0, 1/sqrt(2), -1
    assert orthogonality_loss(z_r, z_e, "signed").item() == pytest.approx((0 + 1 / math.sqrt(2) - 1) / 3, rel=1e-6)
    assert orthogonality_loss(z_r, z_e, "abs").item() == pytest.approx((0 + 1 / math.sqrt(2) + 1) / 3, rel=1e-6)
    assert orthogonality_loss(z_r, z_e, "squared").item() == pytest.approx((0 + 0.5 + 1) / 3, rel=1e-6)
    with pytest.raises(ValueError):
        OrthogonalityLoss("bogus")


def test_center_cluster_hand_features():
    x = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 3.0], [0.0, 5.0]])
    y = torch.tensor([0, 0, 1, 1])
    # centres (1, 0) and (0, 4): every sample is 1 away from its centre; centres sqrt(17) apart
    assert CenterClusterLoss(inter_margin=0.7)(x, y).item() == pytest.approx(1.0, rel=1e-6)
    assert CenterClusterLoss(inter_margin=5.0)(x, y).item() == pytest.approx(1.0 + 5.0 - math.sqrt(17), rel=1e-6)
    assert CenterClusterLoss(inter_margin=0.7, intra_margin=0.5)(x, y).item() == pytest.approx(0.5, rel=1e-6)


def test_center_cluster_unequal_classes_naive_loop():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(7, 3, generator=g)
    y = torch.tensor([0, 0, 0, 1, 1, 2, 2])
    got = CenterClusterLoss(inter_margin=3.0)(x, y).item()
    cents = {c: x[y == c].mean(0) for c in (0, 1, 2)}
    intra = sum((x[i] - cents[int(y[i])]).norm().item() for i in range(7)) / 7
    inter = []
    for a in (0, 1, 2):
        vals = [max(0.0, 3.0 - (cents[a] - cents[int(y[j])]).norm().item()) for j in range(7) if int(y[j]) != a]
        inter.append(sum(vals) / len(vals))
    assert got == pytest.approx(intra + sum(inter) / 3, rel=1e-5)


def test_mixed_fusion_triplet_hand_example_euclidean_1d():
    labels = torch.tensor([0, 0, 0, 1, 1])
    mods = torch.tensor([0, 0, 1, 0, 1])  # 0 visible, 1 infrared
    z_e = torch.tensor([[0.0], [1.0], [3.0], [2.0], [5.0]])
    z_f = torch.tensor([[0.0], [5.0], [7.0], [1.0], [9.0]])
    # term 1 (fused same-modality positive vs erased cross-modality negative), anchors 0 and 1:
    #   a0: D_f(0,1)=5, D_e(0,4)=5 -> 0.5 ; a1: D_f(1,0)=5, D_e(1,4)=4 -> 1.5       mean 1.0
    # term 2 (erased cross-modality positive vs fused same-modality negative), all anchors:
    #   a0: D_e(0,2)=3, D_f(0,3)=1 -> 2.5 ; a1: 2 - 4 -> 0 ; a2: max(3,2) - D_f(2,4)=2 -> 1.5
    #   a3: D_e(3,4)=3, min(D_f(3,0)=1, D_f(3,1)=4) -> 2.5 ; a4: 3 - D_f(4,2)=2 -> 1.5  mean 1.6
    got = mixed_fusion_triplet_loss(z_e, z_f, labels, mods, margin=0.5, metric="euclidean")
    assert got.item() == pytest.approx(2.6, rel=1e-6)


def test_mixed_fusion_triplet_cosine_and_gradients():
    torch.manual_seed(0)
    z_e = torch.randn(8, 4, requires_grad=True)
    z_r = torch.randn(8, 4, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 0, 0, 1, 1])
    mods = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    loss = mixed_fusion_triplet_loss(z_e, fuse(z_e, z_r), labels, mods, margin=0.3)
    loss.backward()
    assert loss.item() > 0 and z_r.grad is not None and torch.isfinite(z_e.grad).all()
    f = fuse(torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 0.0, 2.0]]))
    assert torch.allclose(f, torch.tensor([[1.0, 0.0, 0.0, 0.0, 1.0]]) / math.sqrt(2))
