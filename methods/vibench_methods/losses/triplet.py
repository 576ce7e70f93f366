"""Triplet losses on a batch of features with identity labels.

* :func:`pairwise_distance` — Euclidean distances, sqrt(clamp(|a|^2 + |b|^2 - 2ab, 1e-12)) as in
  AGW/PMT code (so equal vectors give 1e-6, not 0).
* :func:`batch_hard_triplet` — Hermans et al. (2017): for each anchor the farthest positive and the
  closest negative; mean(max(0, d_ap - d_an + margin)).
* :func:`weighted_regularized_triplet` — AGW's WRT (Ye et al., TPAMI'21, Eq. 5): positives weighted
  by softmax(d_ap), negatives by softmax(-d_an) over each anchor's row; loss =
  mean(log(1 + exp(-(sum_n w_n d_an - sum_p w_p d_ap)))) (soft margin, no margin parameter).
  The anchor itself counts as a positive (distance ~0), as in the reference.
* :func:`triplet_loss` — the config switch (``loss.triplet``: hard | wrt) every method uses.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from vibench.errors import VibenchError


def pairwise_distance(a: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    b = a if b is None else b
    a, b = a.float(), b.float()
    d2 = a.pow(2).sum(1, keepdim=True) + b.pow(2).sum(1).unsqueeze(0) - 2.0 * a @ b.T
    return d2.clamp(min=1e-12).sqrt()


def _softmax_weights(dist: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Row-wise softmax of `dist` restricted to `mask` (masked entries get weight 0)."""
    m = mask.to(dist.dtype)
    max_v = (dist * m).max(dim=1, keepdim=True).values
    e = torch.exp(dist - max_v) * m
    return e / (e.sum(dim=1, keepdim=True) + 1e-6)


def weighted_regularized_triplet(feats: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    dist = pairwise_distance(feats)
    pos = labels.unsqueeze(0) == labels.unsqueeze(1)
    neg = ~pos
    d_ap = dist * pos
    d_an = dist * neg
    w_ap = _softmax_weights(d_ap, pos)
    w_an = _softmax_weights(-d_an, neg)
    furthest_pos = (d_ap * w_ap).sum(1)
    closest_neg = (d_an * w_an).sum(1)
    # soft_margin_loss(x, 1) = mean(log(1 + exp(-x))) overflows to inf once furthest_pos - closest_neg
    # > 88 (random-init paper shapes); then the same value in softplus form, which does not. Kept
    # as the reference's soft_margin_loss otherwise: its rounding is what the regression bands saw.
    loss = F.soft_margin_loss(closest_neg - furthest_pos, torch.ones_like(closest_neg))
    return loss if torch.isfinite(loss) else F.softplus(furthest_pos - closest_neg).mean()


def batch_hard_triplet(feats: torch.Tensor, labels: torch.Tensor, margin: float = 0.3, normalize: bool = False) -> torch.Tensor:
    if normalize:
        feats = F.normalize(feats, dim=1)
    dist = pairwise_distance(feats)
    pos = labels.unsqueeze(0) == labels.unsqueeze(1)
    d_ap = dist.masked_fill(~pos, float("-inf")).max(1).values
    d_an = dist.masked_fill(pos, float("inf")).min(1).values
    return F.relu(d_ap - d_an + margin).mean()


def triplet_loss(kind: str, feats: torch.Tensor, labels: torch.Tensor, margin: float = 0.3) -> torch.Tensor:
    """The triplet term named by ``loss.triplet``: "hard" (batch-hard, `margin`) or "wrt" (AGW's
    weighted regularisation triplet; no margin). Features are promoted to float32."""
    if kind == "hard":
        return batch_hard_triplet(feats.float(), labels, margin)
    if kind == "wrt":
        return weighted_regularized_triplet(feats.float(), labels)
    raise VibenchError(f"loss.triplet must be 'hard' or 'wrt', got {kind!r}")
