"""All visible-infrared pairs of a batch and BIT's pairwise matching loss (BIT Sec. 3.3 "Pair
Construction within Batch" and Eq. 13).

Pairs: the visible batch is repeated B times per sample (``repeat_interleave``) and the infrared
batch is tiled B times (``repeat``), so pair ``p = a * B + b`` holds visible image ``a`` and
infrared image ``b``; its label is 1 iff both have the same identity.
Loss: ``L_pair = -(y log Psi + (1 - y) log(1 - Psi))`` averaged over the B^2 pairs, computed from
the CASM logit (``Psi = sigmoid(logit)``) for numerical stability, which is the same value.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def pair_indices(n_vis: int, n_ir: int, device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(visible index, infrared index) of every pair, visible-major (repeat_interleave / repeat)."""
    vis = torch.arange(n_vis, device=device).repeat_interleave(n_ir)
    ir = torch.arange(n_ir, device=device).repeat(n_vis)
    return vis, ir


def expand_pairs(vis: torch.Tensor, ir: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B_v, ...) and (B_i, ...) tensors -> the (B_v * B_i, ...) visible and infrared pair members."""
    return vis.repeat_interleave(ir.shape[0], dim=0), ir.repeat(vis.shape[0], *([1] * (ir.dim() - 1)))


def pair_labels(vis_labels: torch.Tensor, ir_labels: torch.Tensor) -> torch.Tensor:
    """Float targets (B_v * B_i,) of the pairs of :func:`expand_pairs`: 1 = same identity."""
    v, i = expand_pairs(vis_labels, ir_labels)
    return (v == i).float()


def pair_bce_loss(logits: torch.Tensor, targets: torch.Tensor, pos_weight: float | None = None) -> torch.Tensor:
    """Eq. 13 averaged over pairs, from the pre-sigmoid score. ``pos_weight`` (None = Eq. 13)
    optionally re-weights positive pairs."""
    pw = None if pos_weight is None else torch.tensor(float(pos_weight), device=logits.device)
    return F.binary_cross_entropy_with_logits(logits.float().reshape(-1), targets.float().reshape(-1), pos_weight=pw)
