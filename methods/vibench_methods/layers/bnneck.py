"""BN-neck [Luo et al., "Bag of Tricks", CVPRW'19; AGW and PMT heads, docs/methods.md#agw-notes, #pmt-notes].

feature -> BatchNorm1d (bias frozen at 0, weight ~ N(1, 0.01)) -> Linear classifier without bias
(weight ~ N(0, 0.001)). The triplet-style loss reads the pre-BN feature, the identity loss the
logits, and the test embedding is the post-BN feature.
"""
from __future__ import annotations

import torch
from torch import nn


class BNNeck(nn.Module):
    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.bottleneck = nn.BatchNorm1d(dim)
        self.bottleneck.bias.requires_grad_(False)
        nn.init.normal_(self.bottleneck.weight, 1.0, 0.01)
        nn.init.zeros_(self.bottleneck.bias)
        self.classifier = nn.Linear(dim, num_classes, bias=False)
        nn.init.normal_(self.classifier.weight, 0.0, 0.001)

    def forward(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, D) pre-BN feature -> (post-BN feature, logits)."""
        bn = self.bottleneck(feat)
        return bn, self.classifier(bn)
