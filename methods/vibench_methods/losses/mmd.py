"""Adaptive multi-scale kernel MMD (AMK-MMD, AMINet Sec. 3.3, Eq. 6-8).

Kernel (Eq. 6): K(x, y) = sum_m alpha_m exp(-||x - y||^2 / (2 sigma_m^2)).

* Adaptive bandwidth ([G] from the official code's ``MMD_Loss``): the base 2 sigma^2 is the mean
  squared distance between distinct rows of the pooled set Z = [X; Y] (Eq. 7's matrix D), detached;
  the M kernels use 2 sigma_m^2 = base * ``multipliers[m]`` (default 1/4, 1/2, 1, 2, 4).
* Learnable weights (Eq. 6, "learnable weights alpha_m"): logits z (an ``nn.Parameter``, equal at
  the start) and alpha = (1 - floor) softmax(z) + floor / M, so every kernel keeps at least
  floor / M of the weight and no kernel more than 1 - floor + floor / M. The loss is linear in
  alpha, so without the floor any gradient rule on alpha ends on one kernel (a vertex of the
  simplex). ``weight_objective``: ``maximise`` (MK-MMD, Gretton et al. 2012 / DAN: the weights
  pick the kernels that see the largest discrepancy, through a gradient reversal on z, while the
  features minimise it) or ``minimise`` (alpha descends the loss it weights, i.e. moves onto the
  kernel that sees the smallest discrepancy). ``learn_weights: false`` freezes alpha at 1/M; the
  official code sums the kernels with weight 1 each (= M x the frozen variant).
* Estimator (Eq. 8): ``unbiased`` (paper) drops the i = j terms of K_ss and K_tt and divides by
  n(n-1); ``biased`` (official code) keeps them, i.e. mean(K_ss) + mean(K_tt) - 2 mean(K_st).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from vibench.errors import VibenchError
from vibench_methods.layers.grl import grad_reverse


def pairwise_sq_dists(z: torch.Tensor) -> torch.Tensor:
    """D_ij = ||z_i - z_j||^2 (Eq. 7), clamped at 0, exact zeros on the diagonal."""
    sq = (z * z).sum(1)
    d = sq[:, None] + sq[None, :] - 2.0 * (z @ z.T)
    d = d.clamp_min(0.0)
    return d * (1.0 - torch.eye(z.shape[0], device=z.device, dtype=z.dtype))


class AMKMMD(nn.Module):
    """AMK-MMD^2 between a source batch X (n_s, D) and a target batch Y (n_t, D)."""

    def __init__(
        self,
        multipliers: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0),
        learn_weights: bool = True,
        estimator: str = "unbiased",
        weight_objective: str = "maximise",
        weight_floor: float = 0.5,
    ) -> None:
        super().__init__()
        if estimator not in ("unbiased", "biased"):
            raise VibenchError(f"mmd.estimator must be 'unbiased' or 'biased', got {estimator!r}")
        if weight_objective not in ("maximise", "minimise"):
            raise VibenchError(f"mmd.weight_objective must be 'maximise' or 'minimise', got {weight_objective!r}")
        if not 0.0 <= float(weight_floor) <= 1.0:
            raise VibenchError(f"mmd.weight_floor must be in [0, 1], got {weight_floor}")
        self.weight_objective, self.weight_floor = weight_objective, float(weight_floor)
        if not multipliers or any(float(m) <= 0 for m in multipliers):
            raise VibenchError(f"mmd.multipliers must be positive numbers, got {list(multipliers)}")
        self.register_buffer("multipliers", torch.tensor([float(m) for m in multipliers]), persistent=False)
        self.estimator = estimator
        logits = torch.zeros(len(multipliers))
        if learn_weights:
            self.logits = nn.Parameter(logits)
        else:
            self.register_buffer("logits", logits)

    @property
    def alphas(self) -> torch.Tensor:
        """The kernel weights alpha_m (Eq. 6): (1 - floor) softmax(z) + floor / M, summing to one;
        with ``weight_objective: maximise`` the gradient reaching z is reversed (MK-MMD)."""
        z = self.logits
        if isinstance(z, nn.Parameter) and self.weight_objective == "maximise":
            z = grad_reverse(z)
        m = z.shape[0]
        return (1.0 - self.weight_floor) * torch.softmax(z, dim=0) + self.weight_floor / m

    def kernel(self, d: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        """K = sum_m alpha_m exp(-D / (base * mult_m)) for a squared-distance matrix D."""
        widths = (base * self.multipliers.to(d.dtype)).clamp_min(1e-12)
        ks = torch.exp(-d[None] / widths[:, None, None])
        return (self.alphas.to(d.dtype)[:, None, None] * ks).sum(0)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        ns, nt = x.shape[0], y.shape[0]
        if ns < 2 or nt < 2:
            raise VibenchError(f"AMK-MMD needs at least 2 samples per side, got {ns} and {nt}")
        with torch.autocast(device_type=x.device.type, enabled=False):  # distances in float32
            z = torch.cat([x, y], 0).float()
            d = pairwise_sq_dists(z)
            n = ns + nt
            base = d.detach().sum() / (n * n - n)
            k = self.kernel(d, base.clamp_min(1e-12))
        kss, ktt, kst = k[:ns, :ns], k[ns:, ns:], k[:ns, ns:]
        if self.estimator == "unbiased":
            xx = (kss.sum() - kss.diagonal().sum()) / (ns * (ns - 1))
            yy = (ktt.sum() - ktt.diagonal().sum()) / (nt * (nt - 1))
        else:
            xx, yy = kss.mean(), ktt.mean()
        return xx + yy - 2.0 * kst.mean()
