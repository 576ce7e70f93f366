"""PedMix: pedestrian-region patch mixing of a visible and an infrared image (TMPA, Sec. III-B).

The image is cut into non-overlapping ``patch x patch`` patches. Two boxes centred on the image,
Phi_1 (``box1`` = fraction of height, fraction of width; paper: 2/3 x 1/3) and Phi_2 (paper:
5/6 x 2/3), split the patch grid into three regions (a patch belongs to a box when its centre lies
inside it)::

    centre C     = inside Phi_1
    sub-centre S = inside Phi_2, outside Phi_1
    outer O      = the rest

In each region i a fixed fraction A_i of the patches (``ratios`` = A_C, A_S, A_O; paper 0.65 / 0.70 /
0.75) is mixed (Eq. 1, M_i = A_i x r_i). Eq. 2 builds the mixed visible image

    x^V_hat = sum_i M_i (x) x^V + sum_i (1 - M_i) (x) x^I

and the mixed infrared image the same way with the roles swapped; Eq. 3 stacks both,
x_hat = Cat(x^V_hat, x^I_hat) along the batch.

Which modality the A_i fraction counts is ambiguous in the paper: the text ("A_i = 0 gives a
single-modality image; as A_i grows more *inter-modality* patches are selected", "mask-out ratio")
says A_i is the share taken from the *other* modality, Eq. 2 read literally says the share kept from
the own modality. ``ratio_counts`` chooses ([G] default ``"other"``, the text's reading).
The patches of a region are drawn uniformly without replacement, ``round(A_i * |r_i|)`` of them
([G]: the paper does not say how M_i is sampled).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from vibench.errors import VibenchError

CENTRE, SUB_CENTRE, OUTER = 0, 1, 2


def _box_mask(grid_h: int, grid_w: int, patch: int, frac_h: float, frac_w: float) -> torch.Tensor:
    """Patches whose centre lies in the image-centred box of (frac_h*H) x (frac_w*W) pixels."""
    h, w = grid_h * patch, grid_w * patch
    top, bottom = (h - frac_h * h) / 2.0, (h + frac_h * h) / 2.0
    left, right = (w - frac_w * w) / 2.0, (w + frac_w * w) / 2.0
    cy = torch.arange(grid_h, dtype=torch.float64) * patch + patch / 2.0
    cx = torch.arange(grid_w, dtype=torch.float64) * patch + patch / 2.0
    rows = (cy >= top) & (cy < bottom)
    cols = (cx >= left) & (cx < right)
    return rows[:, None] & cols[None, :]


def pedmix_regions(
    grid_h: int,
    grid_w: int,
    patch: int = 12,
    box1: Sequence[float] = (2 / 3, 1 / 3),
    box2: Sequence[float] = (5 / 6, 2 / 3),
) -> torch.Tensor:
    """Region label per patch, (grid_h, grid_w) long: 0 = centre, 1 = sub-centre, 2 = outer."""
    inner = _box_mask(grid_h, grid_w, patch, box1[0], box1[1])
    outer_box = _box_mask(grid_h, grid_w, patch, box2[0], box2[1])
    regions = torch.full((grid_h, grid_w), OUTER, dtype=torch.long)
    regions[outer_box] = SUB_CENTRE
    regions[inner] = CENTRE
    return regions


def pedmix_mask(
    regions: torch.Tensor, ratios: Sequence[float], generator: torch.Generator | None = None
) -> torch.Tensor:
    """Bool (grid_h, grid_w): True for the patches selected by M_i (Eq. 1).

    Exactly ``round(ratios[i] * |r_i|)`` patches of region i are chosen, uniformly without replacement.
    """
    flat = regions.reshape(-1)
    mask = torch.zeros(flat.numel(), dtype=torch.bool)
    for region, ratio in enumerate(ratios):
        idx = torch.nonzero(flat == region).reshape(-1)
        k = int(round(float(ratio) * idx.numel()))
        if k:
            perm = torch.randperm(idx.numel(), generator=generator)[:k]
            mask[idx[perm]] = True
    return mask.reshape(regions.shape)


def patch_mask_to_pixels(mask: torch.Tensor, patch: int, height: int, width: int) -> torch.Tensor:
    """Expand a (gh, gw) patch mask to (height, width) pixels; a partial last row/column of pixels
    (image size not a multiple of the patch) belongs to the nearest patch."""
    pix = mask.repeat_interleave(patch, dim=0).repeat_interleave(patch, dim=1)
    if pix.shape[0] < height:
        pix = torch.cat([pix, pix[-1:].expand(height - pix.shape[0], -1)], dim=0)
    if pix.shape[1] < width:
        pix = torch.cat([pix, pix[:, -1:].expand(-1, width - pix.shape[1])], dim=1)
    return pix[:height, :width]


@dataclass
class MixOutput:
    """The two mixed views of index-aligned (visible, infrared) pairs.

    ``vis_based``: mixed visible images x^V_hat (B, 3, H, W); ``ir_based``: mixed infrared images
    x^I_hat; ``vis_fraction_*``: the realised fraction of visible patches in each view (B,).
    """

    vis_based: torch.Tensor
    ir_based: torch.Tensor
    vis_fraction_vis_based: torch.Tensor
    vis_fraction_ir_based: torch.Tensor


class PedMix:
    """PedMix augmentation (TMPA Eq. 1-3) on a batch of index-aligned same-identity pairs."""

    def __init__(
        self,
        patch: int = 12,
        ratios: Sequence[float] = (0.65, 0.70, 0.75),
        box1: Sequence[float] = (2 / 3, 1 / 3),
        box2: Sequence[float] = (5 / 6, 2 / 3),
        ratio_counts: str = "other",
        same_mask_for_pair: bool = False,
    ) -> None:
        if patch < 1:
            raise VibenchError(f"pedmix.patch must be >= 1, got {patch}")
        if len(ratios) != 3 or not all(0.0 <= float(r) <= 1.0 for r in ratios):
            raise VibenchError(f"pedmix.ratios must be three values in [0, 1] (A_C, A_S, A_O), got {list(ratios)}")
        if ratio_counts not in ("other", "own"):
            raise VibenchError(f"pedmix.ratio_counts must be 'other' or 'own', got {ratio_counts!r}")
        for name, box in (("box1", box1), ("box2", box2)):
            if len(box) != 2 or not all(0.0 < float(b) <= 1.0 for b in box):
                raise VibenchError(f"pedmix.{name} must be two fractions in (0, 1], got {list(box)}")
        self.patch = int(patch)
        self.ratios = tuple(float(r) for r in ratios)
        self.box1 = tuple(float(b) for b in box1)
        self.box2 = tuple(float(b) for b in box2)
        self.ratio_counts = ratio_counts
        self.same_mask_for_pair = bool(same_mask_for_pair)

    def regions(self, height: int, width: int) -> torch.Tensor:
        """Region map of the patch grid of an image of the given size."""
        gh, gw = max(1, height // self.patch), max(1, width // self.patch)
        return pedmix_regions(gh, gw, self.patch, self.box1, self.box2)

    def own_mask(self, regions: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Bool patch mask, True = the patch comes from the image's own modality."""
        m = pedmix_mask(regions, self.ratios, generator)
        return ~m if self.ratio_counts == "other" else m

    @torch.no_grad()
    def __call__(self, vis: torch.Tensor, ir: torch.Tensor, generator: torch.Generator | None = None) -> MixOutput:
        """Mix (B, C, H, W) visible and infrared batches whose rows are same-identity pairs."""
        if vis.shape != ir.shape:
            raise VibenchError(f"PedMix needs aligned visible/infrared batches, got {tuple(vis.shape)} and {tuple(ir.shape)}")
        b, _, h, w = vis.shape
        regions = self.regions(h, w)
        vmasks, imasks = [], []
        for _ in range(b):
            mv = self.own_mask(regions, generator)
            mi = mv if self.same_mask_for_pair else self.own_mask(regions, generator)
            vmasks.append(mv)
            imasks.append(mi)
        mv = torch.stack(vmasks)  # True = visible patch in x^V_hat
        mi = torch.stack(imasks)  # True = infrared patch in x^I_hat
        pv = torch.stack([patch_mask_to_pixels(m, self.patch, h, w) for m in mv]).to(vis.device)[:, None]
        pi = torch.stack([patch_mask_to_pixels(m, self.patch, h, w) for m in mi]).to(vis.device)[:, None]
        vis_based = torch.where(pv, vis, ir)
        ir_based = torch.where(pi, ir, vis)
        n = float(mv[0].numel())
        return MixOutput(
            vis_based=vis_based,
            ir_based=ir_based,
            vis_fraction_vis_based=mv.flatten(1).sum(1).float() / n,
            vis_fraction_ir_based=1.0 - mi.flatten(1).sum(1).float() / n,
        )
