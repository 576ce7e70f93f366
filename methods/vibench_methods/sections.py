"""Config sections shared by several methods, declared once: backbone options (ResNet, ViT),
the non-local/GeM options of AGW-style trunks, the identity + triplet loss options and the
cross-modality mixers. Each method's schema (next to its code) combines these with its own
section; the engine's sections (input, optimizer, ...) are in :mod:`vibench.engine.sections`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal

from vibench.engine.pretrained import BackboneInit
from vibench.engine.schema import Problem, Section, option

ResNetName = Literal["resnet18", "resnet34", "resnet50", "resnet101", "resnet_micro"]
ViTName = Literal["vit_base", "vit_small", "vit_tiny", "vit_micro"]


@dataclass(frozen=True)
class ResNetModel(BackboneInit):
    """A torchvision/timm ResNet: name, last stride, and its initialisation (``init``, ``weights``:
    :class:`vibench.engine.pretrained.BackboneInit`)."""

    backbone: ResNetName = "resnet50"
    last_stride: Literal[1, 2] = 1


@dataclass(frozen=True)
class GeMResNetModel(ResNetModel):
    """A ResNet pooled by GeM with exponent `gem_p` (AGW)."""

    gem_p: float = option(3.0, gt=0)


@dataclass(frozen=True)
class NonLocalResNetModel(GeMResNetModel):
    """AGW's trunk: ``non_local[i]`` non-local blocks after the last blocks of stage i+1; inner
    width C/2 ("half", the paper), 1 ("official", the released code) or an integer."""

    non_local: tuple[int, int, int, int] = option((0, 2, 3, 0), ge=0)
    nl_inner: Literal["half", "official"] | int = option("half", ge=1)


@dataclass(frozen=True)
class ViTModel(BackboneInit):
    """A timm ViT with an overlapping patch embedding (kernel `patch_size`, stride `stride`),
    initialised per ``init`` / ``weights`` (:class:`vibench.engine.pretrained.BackboneInit`)."""

    arch_field = "size"
    moved = {"img_size": "the image size is input.size (the model reads it from there)"}

    size: ViTName = "vit_base"
    patch_size: int = option(16, gt=0)
    stride: int = option(12, gt=0)
    drop_rate: float = option(0.03, ge=0, lt=1)
    attn_drop_rate: float = option(0.0, ge=0, lt=1)
    drop_path_rate: float = option(0.1, ge=0, lt=1)

    def size_problems(self, size: tuple[int, int]) -> Iterable[Problem]:
        """input.size against the patch grid: each side at least one patch; with
        non-overlapping patches (stride = patch size) each side a multiple of the patch size,
        so no row or column of pixels is silently dropped."""
        for side, name in zip(size, ("height", "width")):
            if side < self.patch_size:
                yield "input.size", f"{name} {side} is smaller than model.patch_size {self.patch_size}"
            elif self.stride == self.patch_size and side % self.patch_size:
                yield "input.size", (f"{name} {side} is not divisible by model.patch_size {self.patch_size} "
                                     "(non-overlapping patches, stride = patch size)")
        if self.stride > self.patch_size:
            yield "model.stride", f"must be <= model.patch_size {self.patch_size} (patches would skip pixels), got {self.stride}"


@dataclass(frozen=True)
class TripletChoice(Section):
    """Which triplet loss (:func:`vibench_methods.losses.triplet.triplet_loss`): ``hard`` =
    batch-hard with `margin`, ``wrt`` = AGW's weighted regularisation triplet (no margin)."""

    triplet: Literal["wrt", "hard"] = "wrt"
    margin: float = option(0.3, gt=0)


@dataclass(frozen=True)
class TripletLoss(TripletChoice):
    """Identity (cross-entropy) + triplet loss with their weights."""

    id_weight: float = option(1.0, gt=0)
    triplet_weight: float = option(1.0, ge=0)


@dataclass(frozen=True)
class PedMixConfig(Section):
    patch: int = option(12, gt=0)
    ratios: tuple[float, float, float] = option((0.65, 0.70, 0.75), ge=0, le=1)
    box1: tuple[float, float] = option((2 / 3, 1 / 3), gt=0, le=1)
    box2: tuple[float, float] = option((5 / 6, 2 / 3), gt=0, le=1)
    ratio_counts: Literal["other", "own"] = "other"
    same_mask_for_pair: bool = False


@dataclass(frozen=True)
class PatchMixConfig(Section):
    patch: int = option(16, gt=0)
    p: float = option(0.1, ge=0, le=1)
    sampling: Literal["exact", "bernoulli"] = "exact"


@dataclass(frozen=True)
class MixingConfig(Section):
    """The cross-modality image mixer (TMPA Table IV, PMCM Table 4 swap them)."""

    kind: Literal["pedmix", "patchmix", "none"] = "none"
    pedmix: PedMixConfig = PedMixConfig()
    patchmix: PatchMixConfig = PatchMixConfig()
