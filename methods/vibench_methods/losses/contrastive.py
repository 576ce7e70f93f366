"""BIT's aggregation contrastive loss (BIT Eq. 5), a supervised contrastive loss in which every
positive competes only against the negatives::

    L_AC(i) = -1/|P_i| sum_{p in P_i} log( e^{f_i.f_p/tau} / (e^{f_i.f_p/tau} + sum_{j in N_i} e^{f_i.f_j/tau}) )

``P_i`` = samples of the same identity as ``i`` (by default only those of the *other* modality:
"positive pairs (from different modalities)", BIT Sec. 3.3), ``N_i`` = samples of other
identities (any modality). ``tau`` = 1/16. The loss is averaged over the anchors that have at
least one positive. Features are L2-normalised first (a guess the temperature needs).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def aggregation_contrastive_loss(
    features: torch.Tensor,
    labels: torch.Tensor,
    modalities: torch.Tensor | None = None,
    tau: float = 1.0 / 16.0,
    cross_modal_positives: bool = True,
    normalize: bool = True,
) -> torch.Tensor:
    """Eq. 5 averaged over anchors. features (M, D); labels (M,); modalities (M,) ints or None."""
    f = F.normalize(features.float(), dim=1) if normalize else features.float()
    sim = (f @ f.T) / tau
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos = same & ~eye
    if cross_modal_positives:
        if modalities is None:
            raise ValueError("cross_modal_positives needs the modality of each feature")
        pos = pos & (modalities.unsqueeze(0) != modalities.unsqueeze(1))
    neg = ~same
    neg_lse = torch.logsumexp(sim.masked_fill(~neg, float("-inf")), dim=1, keepdim=True)  # log sum_{N_i} e^s
    # -log(e^s / (e^s + sum_N e^s_j)) = logaddexp(s, LSE_N) - s ; rows without negatives give 0
    per_pair = torch.logaddexp(sim, neg_lse) - sim
    per_pair = torch.where(pos, per_pair, torch.zeros_like(per_pair))
    n_pos = pos.sum(1)
    has = n_pos > 0
    if not bool(has.any()):
        return sim.sum() * 0.0
    per_anchor = per_pair.sum(1)[has] / n_pos[has]
    return per_anchor.mean()


class AggregationContrastiveLoss(nn.Module):
    """Module form of :func:`aggregation_contrastive_loss`."""

    def __init__(self, tau: float = 1.0 / 16.0, cross_modal_positives: bool = True) -> None:
        super().__init__()
        self.tau = tau
        self.cross_modal_positives = cross_modal_positives

    def forward(self, features: torch.Tensor, labels: torch.Tensor, modalities: torch.Tensor | None = None) -> torch.Tensor:
        return aggregation_contrastive_loss(features, labels, modalities, self.tau, self.cross_modal_positives)
