"""MixER's mixed-modal feature-fusion triplet loss (MixER Eq. 15) and the fused embedding.

At test time MixER ranks one mixed gallery with *fused* distances for same-modality items and
*erased* distances for cross-modality items (MixER Sec. 3.2(f)). Eq. 15 makes the two scales
compatible. For anchor j of modality m (batch-hard mining, a documented reading of "m~ != m")::

    L_f(j) = max(D_f(j, p_same) - D_e(j, n_cross) + alpha, 0)      fused same-modality positive
                                                                     vs erased cross-modality negative
           + max(D_e(j, p_cross) - D_f(j, n_same) + alpha, 0)      erased cross-modality positive
                                                                     vs fused same-modality negative

``p_same`` = hardest (farthest) same-identity, same-modality sample (not j itself),
``n_cross`` = hardest (closest) other-identity, other-modality sample, ``p_cross`` = hardest
same-identity other-modality sample, ``n_same`` = hardest other-identity same-modality sample.
D = cosine distance ``1 - cos`` (default) or Euclidean. A term whose positive or negative set is
empty is skipped; each term is averaged over the anchors that have it and the two means are
summed (= the mean over anchors of Eq. 15 when every anchor has both).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def fuse(z_e: torch.Tensor, z_r: torch.Tensor) -> torch.Tensor:
    """``z^f = [z^e || z^r]`` with each part L2-normalised first (equal weight), then renormalised."""
    return F.normalize(torch.cat([F.normalize(z_e.float(), dim=1), F.normalize(z_r.float(), dim=1)], dim=1), dim=1)


def pairwise_distance(x: torch.Tensor, metric: str = "cosine") -> torch.Tensor:
    """(N, N) distances: ``1 - cos`` or Euclidean (gradient-safe at 0)."""
    if metric == "cosine":
        x = F.normalize(x.float(), dim=1)
        return 1.0 - x @ x.T
    if metric == "euclidean":
        x = x.float()
        sq = (x * x).sum(1)
        d2 = sq.unsqueeze(1) + sq.unsqueeze(0) - 2.0 * (x @ x.T)
        return d2.clamp_min(1e-12).sqrt()
    raise ValueError(f"distance metric must be 'cosine' or 'euclidean', got {metric!r}")


def _hardest(dist: torch.Tensor, mask: torch.Tensor, largest: bool) -> tuple[torch.Tensor, torch.Tensor]:
    fill = float("-inf") if largest else float("inf")
    d = dist.masked_fill(~mask, fill)
    val = d.max(1).values if largest else d.min(1).values
    return val, mask.any(1)


def mixed_fusion_triplet_loss(
    z_e: torch.Tensor,
    z_f: torch.Tensor,
    labels: torch.Tensor,
    modalities: torch.Tensor,
    margin: float = 0.3,
    metric: str = "cosine",
) -> torch.Tensor:
    """Eq. 15 (see the module docstring). z_e (N, d), z_f (N, d_f), labels and modalities (N,)."""
    d_e = pairwise_distance(z_e, metric)
    d_f = pairwise_distance(z_f, metric)
    n = len(labels)
    eye = torch.eye(n, dtype=torch.bool, device=labels.device)
    same_id = labels.unsqueeze(0) == labels.unsqueeze(1)
    same_mod = modalities.unsqueeze(0) == modalities.unsqueeze(1)
    p_same, has_ps = _hardest(d_f, same_id & same_mod & ~eye, largest=True)
    n_cross, has_nc = _hardest(d_e, ~same_id & ~same_mod, largest=False)
    p_cross, has_pc = _hardest(d_e, same_id & ~same_mod, largest=True)
    n_same, has_ns = _hardest(d_f, ~same_id & same_mod, largest=False)
    t1 = (p_same - n_cross + margin).clamp_min(0)
    t2 = (p_cross - n_same + margin).clamp_min(0)
    v1, v2 = has_ps & has_nc, has_pc & has_ns
    loss = (z_e.sum() + z_f.sum()) * 0.0
    if bool(v1.any()):
        loss = loss + t1[v1].mean()
    if bool(v2.any()):
        loss = loss + t2[v2].mean()
    return loss


class MixedFusionTripletLoss(nn.Module):
    """Module form of :func:`mixed_fusion_triplet_loss`."""

    def __init__(self, margin: float = 0.3, metric: str = "cosine") -> None:
        super().__init__()
        self.margin = margin
        self.metric = metric

    def forward(self, z_e: torch.Tensor, z_f: torch.Tensor, labels: torch.Tensor, modalities: torch.Tensor) -> torch.Tensor:
        return mixed_fusion_triplet_loss(z_e, z_f, labels, modalities, self.margin, self.metric)
