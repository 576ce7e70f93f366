"""PMCM: Patch-Mixed Cross-Modality learning (Qian, Lin, Du, Pattern Recognition 2025; docs/methods.md#pmcm-notes).

    x^M = PatchMix_p(x^V, x^I)             16 x 16 patches, visible with probability p        Sec. 3.3.1
    two-stream ResNet-50: modality-specific first block (stem), shared layer1..4 (last stride 1),
    part-wise MAM after layer3 and layer4                                                     Sec. 3.1.1
    f^g = GAP(map) -> BN -> C_g;  f^{p_k} = GAP(stripe_k(map)) -> BN -> C_{p_k}, k = 1..P     Sec. 3.1.2
    L_base = L_id,g + L_tri + lambda_1 L_s2s,g + mu (L_id,p + L_s2s,p + L_part_align)        Eq. 1-5
    L_c2c  = lambda_2 L_c2c,g + mu lambda_3 L_c2c,p  (memory-bank centres, delayed start)     Eq. 6-7
    L_pmml = p L^{M,V} + (1 - p) L^{M,I}                                                      Eq. 8-9
    L      = L_base + L_c2c + mu L_pmml,  mu: 0 -> 0.5 linearly over the first 50 epochs      Eq. 10

Inference: the global BN feature only (2048-d), l2-normalised ("inference time exactly the same as
the baseline"). Memory banks are model buffers, so checkpoints and resume carry them.
[G] choices (P = 4, MAM placement, projection F, eta, threshold epoch, ...) are in ``metafile.yaml``.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from vibench.engine.api import Method, StepState, two_stream_embed
from vibench.engine.schema import Section, option, to_dict
from vibench.engine.sections import MethodConfig
from vibench.errors import VibenchError
from vibench_methods.layers.backbones import Weights, init_info, resnet
from vibench_methods.layers.bnneck import BNNeck
from vibench_methods.layers.gem import GeM
from vibench_methods.layers.part_pool import PartPool, PartWiseMAM
from vibench_methods.layers.resnet_parts import resnet_dim, resnet_stages, resnet_stem, stage_channels
from vibench_methods.losses.pmcm import CenterMemory, SampleToSample, mu_ramp, part_align_kl, pmml_loss
from vibench_methods.losses.triplet import triplet_loss
from vibench_methods.mixing.build import build_mixer
from vibench_methods.mixing.patchmix import PatchMix
from vibench_methods.sections import MixingConfig, ResNetModel, TripletChoice
from vibench.registry import register_method


@dataclass(frozen=True)
class PMCMMixing(MixingConfig):
    kind: Literal["pedmix", "patchmix", "none"] = "patchmix"


@dataclass(frozen=True)
class PMCMOptions(Section):
    parts: int = option(4, gt=0)
    mam_after: tuple[int, ...] = option((3, 4), ge=1, le=4)
    mam_reduction: int = option(16, gt=0)
    pool: Literal["avg", "gem"] = "avg"
    s2s_dim: int = option(256, gt=0)
    memory_momentum: float = option(0.9, ge=0, le=1)
    mixed_stem: Literal["ir", "vis"] = "ir"
    mixed_view: Literal["ir_based", "vis_based"] = "ir_based"
    mu_max: float = option(0.5, ge=0)
    mu_ramp_epochs: float = option(50.0, ge=0)
    c2c_start_epoch: int = option(10, ge=0)
    c2c_normalize: bool = True
    mixing: PMCMMixing = PMCMMixing()


@dataclass(frozen=True)
class PMCMLoss(TripletChoice):
    triplet: Literal["wrt", "hard"] = "hard"
    lambda1: float = option(0.2, ge=0)
    lambda2: float = option(0.2, ge=0)
    lambda3: float = option(1.0, ge=0)
    part_align_detach: bool = False
    pmml_detach_targets: bool = True


@dataclass(frozen=True)
class PMCMConfig(MethodConfig):
    model: ResNetModel = ResNetModel()
    pmcm: PMCMOptions = PMCMOptions()
    loss: PMCMLoss = PMCMLoss()


class PMCMNet(nn.Module):
    """Two-stream ResNet with part-wise MAM, global + part heads, s2s projections and memory banks."""

    def __init__(
        self,
        num_classes: int,
        backbone: str = "resnet50",
        last_stride: int = 1,
        weights: Weights = None,
        parts: int = 4,
        mam_after: list[int] | tuple[int, ...] = (3, 4),
        mam_reduction: int = 16,
        pool: str = "avg",
        s2s_dim: int = 256,
        memory_momentum: float = 0.9,
        mixed_stem: str = "ir",
    ) -> None:
        super().__init__()
        if mixed_stem not in ("ir", "vis"):
            raise VibenchError(f"pmcm.mixed_stem must be 'ir' or 'vis', got {mixed_stem!r}")
        self.mixed_stem = mixed_stem
        self.stem_vis = resnet_stem(resnet(backbone, weights=weights))
        self.stem_ir = resnet_stem(resnet(backbone, weights=weights))
        base = resnet(backbone, last_stride=last_stride, weights=weights)
        stages: "OrderedDict[str, nn.Module]" = OrderedDict()
        for i in range(1, 5):
            stages[f"layer{i}"] = resnet_stages(base, i, i)
            if i in tuple(mam_after):
                stages[f"mam{i}"] = PartWiseMAM(stage_channels(base, i), parts, mam_reduction)
        self.trunk = nn.Sequential(stages)
        dim = resnet_dim(base)
        self.feat_dim, self.parts = dim, int(parts)
        if pool == "avg":
            self.pool: nn.Module = nn.AdaptiveAvgPool2d(1)
        elif pool == "gem":
            self.pool = nn.Sequential(GeM(3.0), nn.Unflatten(1, (dim, 1, 1)))
        else:
            raise VibenchError(f"pmcm.pool must be 'avg' or 'gem', got {pool!r}")
        self.part_pool = PartPool(parts, "avg" if pool == "avg" else "gem")
        self.neck = BNNeck(dim, num_classes)  # C_g
        self.part_necks = nn.ModuleList(BNNeck(dim, num_classes) for _ in range(parts))  # C_{p_k}
        self.s2s_global = SampleToSample(dim, s2s_dim)
        self.s2s_parts = nn.ModuleList(SampleToSample(dim, s2s_dim) for _ in range(parts))
        self.memory_global = CenterMemory(num_classes, dim, 2, memory_momentum)
        self.memory_parts = CenterMemory(num_classes, parts * dim, 2, memory_momentum)
        self.init_info = {"backbone": backbone, **init_info(weights)}

    def forward(
        self, vis: torch.Tensor | None = None, ir: torch.Tensor | None = None, mixed: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Rows: visible, then infrared, then mixed (each optional)."""
        stems = []
        if vis is not None:
            stems.append(self.stem_vis(vis))
        if ir is not None:
            stems.append(self.stem_ir(ir))
        if mixed is not None:
            stems.append((self.stem_ir if self.mixed_stem == "ir" else self.stem_vis)(mixed))
        if not stems:
            raise VibenchError("PMCMNet.forward needs at least one image batch")
        fmap = self.trunk(torch.cat(stems))
        g = self.pool(fmap).flatten(1)
        out = {"g": g, "feat": self.neck.bottleneck(g)}
        if self.training:
            parts = self.part_pool(fmap)  # (N, P, D)
            out["parts"] = parts
            out["logits_g"] = self.neck.classifier(out["feat"])
            out["logits_p"] = torch.stack([neck(parts[:, k])[1] for k, neck in enumerate(self.part_necks)], 1)
        return out


def pmml_weight(mixer: object, mixed_view: str, vis_fraction: torch.Tensor) -> float:
    """Eq. 9's weight p of the M-V term: "the same as the ratio of patch-mix", i.e. the configured
    p for patch-mix (1 - p for the visible-based view), not the realised share of one draw; for
    the other generators of Table 4 (no ratio p) the batch's mean visible share of x^M [G]."""
    if isinstance(mixer, PatchMix):
        return mixer.p if mixed_view == "ir_based" else 1.0 - mixer.p
    return float(vis_fraction.float().mean())


@register_method("pmcm")
class PMCM(Method):
    paper = "Qian, Lin, Du, Visible-Infrared Person Re-Identification via Patch-Mixed Cross-Modality Learning, Pattern Recognition 157:110873, 2025"
    config_dir = Path(__file__).resolve().parent / "configs" / "pmcm"

    config_schema = PMCMConfig

    def build_model(self, num_classes: int) -> nn.Module:
        m, s = self.config.model, self.config.pmcm
        return PMCMNet(
            num_classes, backbone=m.backbone, last_stride=m.last_stride, weights=m.pretrained, parts=s.parts,
            mam_after=list(s.mam_after), mam_reduction=s.mam_reduction, pool=s.pool, s2s_dim=s.s2s_dim,
            memory_momentum=s.memory_momentum, mixed_stem=s.mixed_stem,
        )

    def mu(self, state: StepState) -> float:
        """The part/PMML weight mu at this epoch (Sec. 4.1.3, Table 5)."""
        return mu_ramp(state.epoch, self.config.pmcm.mu_max, self.config.pmcm.mu_ramp_epochs)

    def training_step(self, model: nn.Module, batch: dict[str, torch.Tensor], state: StepState) -> dict[str, torch.Tensor]:
        s, lc = self.config.pmcm, self.config.loss
        vis, ir = batch["vis"], batch["ir"]
        y = batch["vis_label"]
        if not torch.equal(batch["vis_label"], batch["ir_label"]):
            raise VibenchError("pmcm: patch-mix and the s2s/PMML losses need index-aligned rows (vis_label == ir_label)")
        b = vis.shape[0]
        mixer = build_mixer(to_dict(s.mixing))
        mixed, p = None, 0.0
        if mixer is not None:
            mix = mixer(vis, ir)
            if s.mixed_view == "ir_based":
                mixed, frac = mix.ir_based, mix.vis_fraction_ir_based
            else:
                mixed, frac = mix.vis_based, mix.vis_fraction_vis_based
            p = pmml_weight(mixer, s.mixed_view, frac)
        out = model(vis, ir, mixed)
        n = 2 * b + (b if mixed is not None else 0)
        y_all = torch.cat([y] * (n // b))
        mu = self.mu(state)
        lam1, lam2, lam3 = lc.lambda1, lc.lambda2, lc.lambda3
        g, lg, parts, lp = out["g"].float(), out["logits_g"].float(), out["parts"].float(), out["logits_p"].float()
        tri = triplet_loss(lc.triplet, g, y_all, lc.margin)
        terms: dict[str, torch.Tensor] = {
            "id_g": F.cross_entropy(lg, y_all),
            "tri": tri,
            "s2s_g": lam1 * model.s2s_global(g[:b], g[b:2 * b]),
        }
        # part branch (Eq. 3-5), weighted by mu
        id_p = sum(F.cross_entropy(lp[:, k], y_all) for k in range(lp.shape[1]))
        s2s_p = sum(proj(parts[:b, k], parts[b:2 * b, k]) for k, proj in enumerate(model.s2s_parts))
        terms["part"] = mu * (id_p + s2s_p)
        terms["part_align"] = mu * part_align_kl(lg, lp, detach_global=lc.part_align_detach)
        # center-to-center with memory banks (Eq. 6-7), delayed to the threshold epoch
        active = state.epoch >= s.c2c_start_epoch
        gv, gi, pv, pi = g[:b], g[b:2 * b], parts[:b], parts[b:2 * b]
        if s.c2c_normalize:  # [G] centres of L2-normalised (per-part) features
            gv, gi, pv, pi = F.normalize(gv, dim=-1), F.normalize(gi, dim=-1), F.normalize(pv, dim=-1), F.normalize(pi, dim=-1)
        pv, pi = pv.flatten(1), pi.flatten(1)  # sum over parts of ||m_k^V - m_k^I||^2 = one concatenated bank
        terms["c2c_g"] = lam2 * model.memory_global(gv, y, gi, y, active=active)
        terms["c2c_p"] = mu * lam3 * model.memory_parts(pv, y, pi, y, active=active)
        if mixed is not None:  # Eq. 8-10
            sl_v, sl_i, sl_m = slice(0, b), slice(b, 2 * b), slice(2 * b, 3 * b)
            terms["pmml"] = mu * pmml_loss(
                (lg[sl_v], lp[sl_v]), (lg[sl_i], lp[sl_i]), (lg[sl_m], lp[sl_m]), (lg[sl_m], lp[sl_m]), p,
                detach_targets=lc.pmml_detach_targets,
            )
        return terms

    def embed(self, model: nn.Module, images: torch.Tensor, modality: str) -> dict[str, torch.Tensor]:
        return two_stream_embed(model, images, modality, "g")
