"""Center-cluster loss of MPANet (Wu et al., CVPR 2021), as used by SAAI and by MixER
(MixER Eq. 10 and 14, ``L_cc``).

For the batch centres ``c_y = mean{x_j : y_j = y}``::

    L_cc = mean_i relu(||x_i - c_{y_i}|| - m_intra)
         + mean_{classes a} mean_{j : y_j != a} relu(m_inter - ||c_a - c_{y_j}||)

The first term pulls samples to their identity centre, the second pushes centres of different
identities at least ``m_inter`` apart (MPANet: 0.7, ``m_intra`` = 0). The inter term averages over
the other *samples* of the batch (as MPANet does with one anchor per identity group), so a class
with more images weighs more.
"""
from __future__ import annotations

import torch
from torch import nn


def class_centers(features: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(unique labels (K,), centres (K, D), index of each sample's centre (N,))."""
    uniq, inverse = torch.unique(labels, return_inverse=True)
    sums = torch.zeros(len(uniq), features.shape[1], dtype=features.dtype, device=features.device)
    sums.index_add_(0, inverse, features)
    counts = torch.bincount(inverse, minlength=len(uniq)).to(features.dtype).unsqueeze(1)
    return uniq, sums / counts, inverse


class CenterClusterLoss(nn.Module):
    """MPANet/SAAI center-cluster loss (see the module docstring).

    Args:
        inter_margin: minimum distance between centres of different identities (0.7).
        intra_margin: slack on the sample-to-centre distance (0 in MPANet).
    """

    def __init__(self, inter_margin: float = 0.7, intra_margin: float = 0.0) -> None:
        super().__init__()
        self.inter_margin = inter_margin
        self.intra_margin = intra_margin

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        features = features.float()
        uniq, centers, inverse = class_centers(features, labels)
        intra = (features - centers[inverse]).pow(2).sum(1).clamp_min(1e-12).sqrt()
        intra = (intra - self.intra_margin).clamp_min(0).mean()
        if len(uniq) < 2:
            return intra
        diff = centers.unsqueeze(1) - centers.unsqueeze(0)
        cdist = diff.pow(2).sum(-1).clamp_min(1e-12).sqrt()  # (K, K), safe gradient at 0
        # for class a and sample j of another class: relu(m - ||c_a - c_{y_j}||)
        per = (self.inter_margin - cdist[:, inverse]).clamp_min(0)  # (K, N)
        other = inverse.unsqueeze(0) != torch.arange(len(uniq), device=labels.device).unsqueeze(1)
        inter = (per * other).sum(1) / other.sum(1).clamp_min(1)
        return intra + inter.mean()
