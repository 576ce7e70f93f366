"""Horizontal part stripes (PCB-style) and PMCM's part-wise modality alleviation module.

* :class:`PartPool`: split a feature map (B, C, H, W) into P horizontal stripes and pool each,
  giving (B, P, C) part features (PMCM Sec. 3.1.2; stripes of nearly equal height when H is not a
  multiple of P, as adaptive pooling does).
* :class:`PartWiseMAM`: MPANet's modality alleviation module (MAM) with the channel-wise gate
  computed per horizontal part instead of once per image (PMCM Sec. 3.1.1, "we alter channel-wise
  attention to part-wise attention"). For stripe k with pooled descriptor s_k,
  m_k = sigmoid(W2 relu(W1 s_k)) (W1: C -> C/r, W2: C/r -> C, shared over stripes) and the output
  stripe is m_k (x) x_k + (1 - m_k) (x) IN(x)_k, IN = instance normalisation of the whole map
  (MPANet's form; [G]: the part-wise reading, the reduction r = 16 and the placement are guesses).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vibench.errors import VibenchError


def stripe_bounds(height: int, parts: int) -> list[tuple[int, int]]:
    """[start, end) rows of each of `parts` stripes, the adaptive-pooling split of `height` rows."""
    if parts < 1 or parts > height:
        raise VibenchError(f"cannot split a feature map of height {height} into {parts} stripes")
    return [((k * height) // parts, -((-(k + 1) * height) // parts)) for k in range(parts)]


class PartPool(nn.Module):
    """(B, C, H, W) -> (B, P, C): P horizontal stripes, each pooled by ``pool`` (avg, max or gem)."""

    def __init__(self, parts: int, pool: str = "avg", gem_p: float = 3.0, eps: float = 1e-6) -> None:
        super().__init__()
        if parts < 1:
            raise VibenchError(f"part pooling needs parts >= 1, got {parts}")
        if pool not in ("avg", "max", "gem"):
            raise VibenchError(f"part pool must be 'avg', 'max' or 'gem', got {pool!r}")
        self.parts, self.pool, self.gem_p, self.eps = int(parts), pool, float(gem_p), float(eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = (self.parts, 1)
        if self.pool == "avg":
            y = F.adaptive_avg_pool2d(x, size)
        elif self.pool == "max":
            y = F.adaptive_max_pool2d(x, size)
        else:
            y = F.adaptive_avg_pool2d(x.clamp_min(self.eps).pow(self.gem_p), size).pow(1.0 / self.gem_p)
        return y.squeeze(-1).transpose(1, 2)


class PartWiseMAM(nn.Module):
    """Part-wise modality alleviation module (PMCM Sec. 3.1.1 after MPANet's MAM)."""

    def __init__(self, channels: int, parts: int = 4, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.parts = int(parts)
        self.gate = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels), nn.Sigmoid())
        self.norm = nn.InstanceNorm2d(channels, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        parts = min(self.parts, h)
        desc = F.adaptive_avg_pool2d(x, (parts, 1)).squeeze(-1).transpose(1, 2)  # (B, P, C)
        m = self.gate(desc)  # (B, P, C)
        rows = torch.empty(h, dtype=torch.long, device=x.device)
        for k, (a, e) in enumerate(stripe_bounds(h, parts)):
            rows[a:e] = k
        gate_map = m[:, rows].permute(0, 2, 1)[..., None]  # (B, C, H, 1)
        return gate_map * x + (1.0 - gate_map) * self.norm(x)
