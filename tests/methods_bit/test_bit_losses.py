"""BIT losses: B^2 pair construction and labels, pair BCE (Eq. 13), L_AC (Eq. 5)."""
from __future__ import annotations

import math

import pytest
import torch

from vibench_methods.losses.contrastive import aggregation_contrastive_loss
from vibench_methods.losses.pair_bce import expand_pairs, pair_bce_loss, pair_indices, pair_labels


def test_pair_construction_repeat_interleave_visible_repeat_infrared():
    vis = torch.tensor([[10.0], [11.0]])
    ir = torch.tensor([[20.0], [21.0], [22.0]])
    v, i = expand_pairs(vis, ir)
    assert v.squeeze(1).tolist() == [10, 10, 10, 11, 11, 11]
    assert i.squeeze(1).tolist() == [20, 21, 22, 20, 21, 22]
    vi, ii = pair_indices(2, 3)
    assert vi.tolist() == [0, 0, 0, 1, 1, 1] and ii.tolist() == [0, 1, 2, 0, 1, 2]
    labels = pair_labels(torch.tensor([0, 1]), torch.tensor([1, 0, 1]))
    assert labels.tolist() == [0.0, 1.0, 0.0, 1.0, 0.0, 1.0]
    # token tensors (B, N, C)
    tv, ti = expand_pairs(torch.randn(4, 3, 2), torch.randn(4, 3, 2))
    assert tv.shape == ti.shape == (16, 3, 2)


def test_pair_labels_paper_batch_has_25_percent_positives():
    lab = torch.arange(4).repeat_interleave(4)  # 4 ids x 4 images per modality
    y = pair_labels(lab, lab)
    assert y.numel() == 256 and int(y.sum()) == 64


def test_pair_bce_matches_eq13():
    logits = torch.tensor([0.0, 2.0, -1.0])
    y = torch.tensor([1.0, 0.0, 1.0])
    psi = torch.sigmoid(logits)
    want = -(y * psi.log() + (1 - y) * (1 - psi).log()).mean()
    assert pair_bce_loss(logits, y).item() == pytest.approx(want.item(), rel=1e-6)
    assert pair_bce_loss(torch.tensor([0.0]), torch.tensor([1.0])).item() == pytest.approx(math.log(2))


def test_aggregation_contrastive_hand_example():
    f = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [-1.0, 0.0]])
    labels = torch.tensor([0, 0, 1, 1])
    mods = torch.tensor([0, 1, 1, 0])  # 0 visible, 1 infrared
    e = math.e
    # anchor 0: pos {1} s=0, neg {2: 1, 3: -1};  anchor 1: pos {0} s=0, neg {0, 0}
    # anchor 2: pos {3} s=-1, neg {1, 0};        anchor 3: pos {2} s=-1, neg {-1, 0}
    l0 = math.log(1 + e + 1 / e)
    l1 = math.log(3)
    l2 = -math.log(math.exp(-1) / (math.exp(-1) + e + 1))
    l3 = -math.log(math.exp(-1) / (2 * math.exp(-1) + 1))
    want = (l0 + l1 + l2 + l3) / 4
    got = aggregation_contrastive_loss(f, labels, mods, tau=1.0)
    assert got.item() == pytest.approx(want, rel=1e-6)


def test_aggregation_contrastive_temperature_and_positive_sets():
    f = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-1.0, 0.0]])
    labels = torch.tensor([0, 0, 1, 1])
    mods = torch.tensor([0, 0, 1, 1])  # same-identity pairs are same-modality here
    assert aggregation_contrastive_loss(f, labels, mods, tau=1 / 16).item() == 0.0  # no cross-modal positive
    # all positives: anchor 0 -> pos {1} s=0.6/tau, neg {2: 0, 3: -1/tau}
    tau = 0.5
    l0 = -math.log(math.exp(0.6 / tau) / (math.exp(0.6 / tau) + 1 + math.exp(-1 / tau)))
    l1 = -math.log(math.exp(0.6 / tau) / (math.exp(0.6 / tau) + math.exp(0.8 / tau) + math.exp(-0.6 / tau)))
    l2 = -math.log(1 / (1 + math.exp(0.8 / tau) + 1))  # pos {3}: s = 0; neg {0: 0, 1: 0.8}
    l3 = -math.log(1 / (1 + math.exp(-1 / tau) + math.exp(-0.6 / tau)))
    got = aggregation_contrastive_loss(f, labels, mods, tau=tau, cross_modal_positives=False)
    assert got.item() == pytest.approx((l0 + l1 + l2 + l3) / 4, rel=1e-5)
