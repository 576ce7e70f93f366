"""Patch-mix: the patch-mixed intermediate modality of PMCM (Sec. 3.3.1).

A visible image x^V and the index-aligned infrared image x^I of the same identity are cut into
``patch x patch`` patches (paper: 16 x 16, a 24 x 12 grid on 384 x 192). Each patch of the mixed
image x^M is taken from x^V with probability p and from x^I with probability 1 - p (paper: p = 0.1
on SYSU-MM01, 0.5 on RegDB).

``sampling``:

* ``"bernoulli"``: an independent Bernoulli(p) draw per patch, as Sec. 3.3.1 states it (each
  patch is visible "with probability p"), so the number of visible patches of one mixed image is
  Binomial(T, p) for T patches. PMCM's paper config uses it.
* ``"exact"``: exactly ``round(p * T)`` of the T patches are visible, chosen uniformly without
  replacement (every patch still has marginal probability about p, and every mixed image the same
  composition, like the PedMix sampler). The class default, kept for TMPA's patch-mix ablation
  (TMPA Table IV), whose config states it.

The "infrared-based" view is x^M itself (fraction p visible); the "visible-based" view swaps the
roles (fraction p infrared), so patch-mix can stand in for PedMix in TMPA, which needs both
x^V_hat and x^I_hat (TMPA Table IV compares such strategies).
"""
from __future__ import annotations

import torch

from vibench.errors import VibenchError
from vibench_methods.mixing.pedmix import MixOutput, patch_mask_to_pixels


def patchmix_mask(
    grid_h: int, grid_w: int, p: float, sampling: str = "exact", generator: torch.Generator | None = None
) -> torch.Tensor:
    """Bool (grid_h, grid_w): True = the patch is taken from the visible image."""
    t = grid_h * grid_w
    if sampling == "exact":
        k = int(round(p * t))
        mask = torch.zeros(t, dtype=torch.bool)
        mask[torch.randperm(t, generator=generator)[:k]] = True
        return mask.reshape(grid_h, grid_w)
    if sampling == "bernoulli":
        return (torch.rand(t, generator=generator) < p).reshape(grid_h, grid_w)
    raise VibenchError(f"patchmix.sampling must be 'exact' or 'bernoulli', got {sampling!r}")


class PatchMix:
    """PMCM patch-mix on a batch of index-aligned same-identity (visible, infrared) pairs."""

    def __init__(self, patch: int = 16, p: float = 0.1, sampling: str = "exact") -> None:
        if patch < 1:
            raise VibenchError(f"patchmix.patch must be >= 1, got {patch}")
        if not 0.0 <= float(p) <= 1.0:
            raise VibenchError(f"patchmix.p must be in [0, 1], got {p}")
        if sampling not in ("exact", "bernoulli"):
            raise VibenchError(f"patchmix.sampling must be 'exact' or 'bernoulli', got {sampling!r}")
        self.patch = int(patch)
        self.p = float(p)
        self.sampling = sampling

    def mix(self, vis: torch.Tensor, ir: torch.Tensor, p: float, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x^M for each row (visible patch probability p) and the realised visible fraction (B,)."""
        if vis.shape != ir.shape:
            raise VibenchError(f"patch-mix needs aligned visible/infrared batches, got {tuple(vis.shape)} and {tuple(ir.shape)}")
        b, _, h, w = vis.shape
        gh, gw = max(1, h // self.patch), max(1, w // self.patch)
        masks = torch.stack([patchmix_mask(gh, gw, p, self.sampling, generator) for _ in range(b)])
        pix = torch.stack([patch_mask_to_pixels(m, self.patch, h, w) for m in masks]).to(vis.device)[:, None]
        return torch.where(pix, vis, ir), masks.flatten(1).float().mean(1)

    @torch.no_grad()
    def __call__(self, vis: torch.Tensor, ir: torch.Tensor, generator: torch.Generator | None = None) -> MixOutput:
        ir_based, frac_ir = self.mix(vis, ir, self.p, generator)
        vis_based, frac_vis = self.mix(vis, ir, 1.0 - self.p, generator)
        return MixOutput(vis_based=vis_based, ir_based=ir_based, vis_fraction_vis_based=frac_vis, vis_fraction_ir_based=frac_ir)
