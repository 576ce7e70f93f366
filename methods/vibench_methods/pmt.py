"""PMT: "Learning Progressive Modality-shared Transformers for Effective Visible-Infrared Person
Re-identification" (Lu et al., AAAI'23), code hulu88/PMT (docs/methods.md#pmt-notes).

    t = ViT(x)                      one ViT-B/16 shared by both modalities, overlapping patches
                                    (stride 12) at 256x128: 210 patch tokens + CLS
    f = t_CLS                       after the final LayerNorm ("global", triplet/DCL/MSEL)
    f_bn = BN(f), logits = W f_bn   BN-neck; test embedding l2norm(f_bn)

Progressive learning (PMT §3.2): for the first ``pmt.pl_epochs`` epochs the visible stream is
grayscale (the engine's ``grayscale`` augmentation, added here with that epoch window) and
    L = CE_V + CE_I + Tri(f_V) + Tri(f_I)                   (intra-modality batch-hard triplets)
afterwards RGB and
    L = CE_V + CE_I + Tri([f_V; f_I]) + w_dcl DCL + w_msel MSEL     (w = 0.5, 0.5)

Reusable as a frozen encoder: ``PMTNet.encode(images) -> (cls, patch_tokens)`` returns the CLS
token (B, D) and the patch tokens (B, N, D) after the final LayerNorm (BIT's decoder input).

Config schema: :class:`PMTConfig` (model = the shared ViT options; the image size, also the
ViT's position grid, is ``input.size``).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from vibench.engine.api import Method, Stage, StepState
from vibench.engine.schema import Problem, Section, option
from vibench.engine.sections import MethodConfig
from vibench_methods.layers.backbones import Weights, init_info, vit
from vibench_methods.layers.bnneck import BNNeck
from vibench_methods.losses.pmt import discriminative_center_loss, modality_shared_enhancement_loss
from vibench_methods.losses.triplet import batch_hard_triplet
from vibench_methods.sections import ViTModel
from vibench.registry import register_method


@dataclass(frozen=True)
class PMTOptions(Section):
    """Progressive learning: grayscale visible stream and intra-modality triplets for the first
    `pl_epochs` epochs of the first stage (off with ``gray_stream: false``)."""

    pl_epochs: int = option(6, ge=0)
    gray_stream: bool = True


@dataclass(frozen=True)
class PMTLoss(Section):
    margin: float = option(0.1, gt=0)
    triplet_normalize: bool = False
    dcl_weight: float = option(0.5, ge=0)
    msel_weight: float = option(0.5, ge=0)


@dataclass(frozen=True)
class ViTConfig(MethodConfig):
    """A PMT-encoder config (PMT, and BIT's stage 1): the ViT must fit input.size."""

    model: ViTModel = ViTModel()
    loss: PMTLoss = PMTLoss()

    def problems(self) -> Iterable[Problem]:
        yield from super().problems()
        yield from self.model.size_problems(self.input.size)


@dataclass(frozen=True)
class PMTConfig(ViTConfig):
    pmt: PMTOptions = PMTOptions()


class PMTNet(nn.Module):
    def __init__(
        self,
        num_classes: int,
        size: str = "vit_base",
        img_size: tuple[int, int] = (256, 128),
        patch_size: int = 16,
        stride: int = 12,
        drop_rate: float = 0.03,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.1,
        weights: Weights = None,
    ) -> None:
        super().__init__()
        self.backbone = vit(size, img_size=img_size, patch_size=patch_size, stride=stride, drop_rate=drop_rate,
                            attn_drop_rate=attn_drop_rate, drop_path_rate=drop_path_rate, weights=weights)
        self.feat_dim = self.backbone.embed_dim
        self.num_patches = self.backbone.patch_embed.num_patches
        self.neck = BNNeck(self.feat_dim, num_classes)
        self.init_info = {"backbone": size, **init_info(weights)}

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(CLS (B, D), patch tokens (B, N, D)), both after the final LayerNorm."""
        tokens = self.backbone.forward_features(images)
        return tokens[:, 0], tokens[:, self.backbone.num_prefix_tokens :]

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        cls, _ = self.encode(images)
        feat = self.neck.bottleneck(cls)
        out = {"global": cls, "feat": feat}
        if self.training:
            out["logits"] = self.neck.classifier(feat)
        return out


@register_method("pmt")
class PMT(Method):
    paper = "Lu et al., Learning Progressive Modality-shared Transformers for Effective VI-ReID, AAAI 2023"
    config_dir = Path(__file__).resolve().parent / "configs" / "pmt"

    config_schema = PMTConfig

    def build_model(self, num_classes: int) -> nn.Module:
        m = self.config.model
        return PMTNet(num_classes, size=m.size, img_size=self.config.input.size, patch_size=m.patch_size,
                      stride=m.stride, drop_rate=m.drop_rate, attn_drop_rate=m.attn_drop_rate,
                      drop_path_rate=m.drop_path_rate, weights=m.pretrained)

    @property
    def pl_epochs(self) -> int:
        return self.config.pmt.pl_epochs

    def stages(self) -> list[Stage]:
        """The configured stages; the first stage's visible stream is grayscale for the first
        ``pmt.pl_epochs`` epochs (PMT's progressive learning), unless ``pmt.gray_stream`` is false."""
        stages = super().stages()
        if not self.config.pmt.gray_stream or self.pl_epochs == 0:
            return stages
        first = stages[0]
        augment = copy.deepcopy(dict(first.augment))
        augment["visible"] = [{"op": "grayscale", "epochs": [0, self.pl_epochs]}] + list(augment.get("visible") or [])
        return [replace(first, augment=augment)] + stages[1:]

    def training_step(self, model: nn.Module, batch: dict[str, torch.Tensor], state: StepState) -> dict[str, torch.Tensor]:
        lc = self.config.loss
        margin, norm = lc.margin, lc.triplet_normalize
        b = batch["vis"].shape[0]
        out = model(torch.cat([batch["vis"], batch["ir"]]))
        logits, g = out["logits"].float(), out["global"].float()
        lv, li = batch["vis_label"], batch["ir_label"]
        terms = {"id": F.cross_entropy(logits[:b], lv) + F.cross_entropy(logits[b:], li)}
        progressive = state.extra.get("stage_index", 0) == 0 and state.epoch < self.pl_epochs
        if progressive:
            terms["triplet"] = batch_hard_triplet(g[:b], lv, margin, norm) + batch_hard_triplet(g[b:], li, margin, norm)
        else:
            labels = torch.cat([lv, li])
            terms["triplet"] = batch_hard_triplet(g, labels, margin, norm)
            w_dcl, w_msel = lc.dcl_weight, lc.msel_weight
            if w_dcl:
                terms["dcl"] = w_dcl * discriminative_center_loss(g, labels)
            if w_msel:
                terms["msel"] = w_msel * modality_shared_enhancement_loss(g[:b], g[b:], lv, li)
        return terms

    def embed(self, model: nn.Module, images: torch.Tensor, modality: str) -> dict[str, torch.Tensor]:
        out = model(images)
        return {"feat": F.normalize(out["feat"].float(), dim=1), "pool": F.normalize(out["global"].float(), dim=1)}

    @staticmethod
    def encode(model: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """BIT's frozen-encoder interface: (CLS, patch tokens) of a PMTNet."""
        return model.encode(images)
