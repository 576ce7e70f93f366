"""MixER's orthogonal feature-decomposition loss (MixER Eq. 7)::

    L_o = E[ z^r . z^e / (||z^r|| ||z^e||) ]

``mode="signed"`` is Eq. 7 literally (its minimum, -1, is anti-parallel, not orthogonal);
``mode="abs"`` (default, a documented guess) penalises |cos| so the minimum is orthogonality,
which is what the paper argues for. On non-negative features (GAP of ReLU maps) both coincide.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def orthogonality_loss(z_r: torch.Tensor, z_e: torch.Tensor, mode: str = "abs", eps: float = 1e-8) -> torch.Tensor:
    """Mean (|)cosine(|) between matching rows of z_r and z_e, both (N, D)."""
    cos = F.cosine_similarity(z_r.float(), z_e.float(), dim=1, eps=eps)
    if mode == "abs":
        return cos.abs().mean()
    if mode == "signed":
        return cos.mean()
    if mode == "squared":
        return cos.pow(2).mean()
    raise ValueError(f"orthogonality mode must be 'abs', 'signed' or 'squared', got {mode!r}")


class OrthogonalityLoss(nn.Module):
    """Module form of :func:`orthogonality_loss`."""

    def __init__(self, mode: str = "abs") -> None:
        super().__init__()
        orthogonality_loss(torch.ones(1, 1), torch.ones(1, 1), mode)  # validate the mode early
        self.mode = mode

    def forward(self, z_r: torch.Tensor, z_e: torch.Tensor) -> torch.Tensor:
        return orthogonality_loss(z_r, z_e, self.mode)
