"""Generalised-mean (GeM) pooling [Radenović et al., TPAMI'19; AGW uses a fixed p = 3].

    f_c = ( mean_{h,w} x_{c,h,w}^p + eps )^(1/p)

AGW's form: the mean of the cubes plus 1e-12, then the cube root (docs/methods.md#agw-notes). Inputs are
post-ReLU (non-negative); negatives are clamped to 0 so the root is defined.
"""
from __future__ import annotations

import torch
from torch import nn


class GeM(nn.Module):
    """(B, C, H, W) -> (B, C). `p` fixed (AGW) or learnable."""

    def __init__(self, p: float = 3.0, eps: float = 1e-12, learnable: bool = False) -> None:
        super().__init__()
        if p <= 0:
            raise ValueError(f"GeM p must be > 0, got {p}")
        if learnable:
            self.p = nn.Parameter(torch.tensor(float(p)))
        else:
            self.register_buffer("p", torch.tensor(float(p)), persistent=False)
        self.eps = eps
        self.p_init = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.p.to(x.dtype)
        return (x.clamp(min=0).pow(p).flatten(2).mean(-1) + self.eps).pow(1.0 / p)

    def extra_repr(self) -> str:
        kind = "learnable" if isinstance(self.p, nn.Parameter) else "fixed"
        return f"p={self.p_init:.2f} ({kind} init), eps={self.eps}"
