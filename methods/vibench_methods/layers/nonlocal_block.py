"""The non-local block of AGW [Wang et al., CVPR'18, dot-product form; docs/methods.md#agw-notes].

    theta, phi, g = 1x1 convs C -> C'
    f = theta(x)^T phi(x) / N            (N = H*W positions; no softmax)
    y = f g(x)
    z = W(y) + x,  W = 1x1 conv C' -> C followed by BatchNorm initialised to zero,

so a fresh block is the identity. C' = C/2 as in the AGW paper (`inner="half"`); the official
code's C' = 1 (`reduc_ratio // reduc_ratio`) is `inner="official"`.
"""
from __future__ import annotations

import torch
from torch import nn


def inner_channels(channels: int, inner: str | int = "half") -> int:
    if inner == "half":
        return max(1, channels // 2)
    if inner == "official":
        return 1
    if isinstance(inner, int) and inner >= 1:
        return inner
    raise ValueError(f"non-local inner width must be 'half', 'official' or a positive int, got {inner!r}")


class NonLocalBlock(nn.Module):
    def __init__(self, channels: int, inner: str | int = "half") -> None:
        super().__init__()
        ci = inner_channels(channels, inner)
        self.theta = nn.Conv2d(channels, ci, 1)
        self.phi = nn.Conv2d(channels, ci, 1)
        self.g = nn.Conv2d(channels, ci, 1)
        self.W = nn.Sequential(nn.Conv2d(ci, channels, 1), nn.BatchNorm2d(channels))
        nn.init.zeros_(self.W[1].weight)
        nn.init.zeros_(self.W[1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        theta = self.theta(x).flatten(2).transpose(1, 2)  # (B, N, C')
        phi = self.phi(x).flatten(2)  # (B, C', N)
        g = self.g(x).flatten(2).transpose(1, 2)  # (B, N, C')
        f = theta @ phi / (h * w)  # (B, N, N)
        y = (f @ g).transpose(1, 2).reshape(b, -1, h, w)
        return self.W(y) + x
