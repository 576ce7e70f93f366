"""Gradient reversal layer (Ganin & Lempitsky, ICML 2015), used by MixER's modality-confusion
loss (MixER Eq. 11: ``L_m = CE(G(W^T z^e), m)`` with G the GRL).

Forward is the identity; backward multiplies the incoming gradient by ``-coeff``, so the layers
before the GRL *maximise* the loss the classifier after it minimises.
"""
from __future__ import annotations

import math

import torch
from torch import nn


class _ReverseGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, coeff: float) -> torch.Tensor:  # type: ignore[override]
        ctx.coeff = coeff
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return -ctx.coeff * grad, None


def grad_reverse(x: torch.Tensor, coeff: float = 1.0) -> torch.Tensor:
    """Identity in the forward pass, gradient times ``-coeff`` in the backward pass."""
    return _ReverseGrad.apply(x, float(coeff))


def dann_coefficient(progress: float, gamma: float = 10.0, max_coeff: float = 1.0) -> float:
    """The DANN ramp ``max_coeff * (2 / (1 + exp(-gamma * progress)) - 1)``, progress in [0, 1]."""
    p = min(max(float(progress), 0.0), 1.0)
    return max_coeff * (2.0 / (1.0 + math.exp(-gamma * p)) - 1.0)


class GradientReversal(nn.Module):
    """Module form of :func:`grad_reverse`; ``coeff`` may be updated during training."""

    def __init__(self, coeff: float = 1.0) -> None:
        super().__init__()
        self.coeff = float(coeff)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grad_reverse(x, self.coeff)

    def extra_repr(self) -> str:
        return f"coeff={self.coeff}"
