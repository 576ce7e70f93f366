"""AMINet: Adaptive Modality Interaction Network (Jia & Armour; docs/methods.md#aminet-notes).

Multi-granularity dual-branch network (HMG-DBNet, Sec. 3.1) with the interactive feature fusion
strategy (IFFS, Sec. 3.2), PESAM (Sec. 3.4) and AMK-MMD (Sec. 3.3)::

    full body  X^g (H x W),  upper body X^p = top `upper_ratio` of the un-augmented image, augmented
               with its own draw (``part_augment: independent``, the released code) or cut from the
               augmented X^g (``shared``)
    F^g_m = phi_global(stem^g_m(X^g_m)),  F^p_m = phi_part(stem^p_m(X^p_m))        Eq. 1-2
            four modality/granularity stems, two shared ResNet trunks (last stride 1) with
            AGW non-local blocks (Sec. 4.1; one set shared by both trunks, as the released code)
    F <- PESAM(F, X) on each layer-4 map (phase congruency + edge attention + fusion)  Eq. 9-11
    g = GeM(F^g), p = GeM(F^p)
    H = phi_shared([g_V || g_I || p_V || p_I]) over index-aligned same-id pairs          Eq. 3
        phi_shared = the released code's ContrastiveModalAligner form (Linear-ReLU-Linear)
    intra_m = [g_m || p_m]                                                               Eq. 4
    inter:  paper Eq. 5 -> [g_V || p_I], [g_I || p_V] over index-aligned same-id pairs
            code        -> [g_V || g_I], [p_I || p_V]  (``inter_pairing: code``)
    L = sum_{b in g, p, intra, inter, fused} [CE(BNNeck_b(b)) + Tri(b)]
        + w_intra AMK-MMD(intra_V, intra_I) + w_inter AMK-MMD(inter_1, inter_2)          Eq. 6-8
        (+ w_con cross-modal contrastive(intra), off by default: the paper lists ID, triplet, MMD)

Test embedding: l2norm(BN_mix([g || p])) (4096-d) of the single query/gallery image.
Config schema: :class:`AMINetConfig`; the fidelity card (paper / code / guess per item) is ``metafile.yaml``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Mapping

import numpy as np
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
from vibench_methods.layers.pesam import PESAM
from vibench_methods.layers.resnet_parts import resnet_dim, resnet_stages, resnet_stem
from vibench_methods.losses.contrastive import aggregation_contrastive_loss
from vibench_methods.losses.mmd import AMKMMD
from vibench_methods.losses.triplet import triplet_loss
from vibench_methods.sections import NonLocalResNetModel, TripletLoss
from vibench.registry import register_method


@dataclass(frozen=True)
class AMINetModel(NonLocalResNetModel):
    non_local: tuple[int, int, int, int] = option((0, 0, 0, 0), ge=0)  # the released code: off


@dataclass(frozen=True)
class PESAMConfig(Section):
    """Phase-enhanced structure attention (Sec. 3.4, Eq. 9-11); log-Gabor bank parameters."""

    enabled: bool = False
    n_scales: int = option(4, gt=0)
    n_orient: int = option(6, gt=0)
    min_wavelength: float = option(3.0, gt=0)
    mult: float = option(2.1, gt=0)
    sigma_onf: float = option(0.55, gt=0)
    noise_k: float = option(2.0, ge=0)
    eps: float = option(1e-4, gt=0)
    spread_weighting: bool = True
    attn_kernel: int = option(3, gt=0)


@dataclass(frozen=True)
class MMDConfig(Section):
    """AMK-MMD (Eq. 6-8): Gaussian kernel bandwidth multipliers, learnable weights (objective and
    floor, losses/mmd.py), estimator."""

    multipliers: tuple[float, ...] = option((0.25, 0.5, 1.0, 2.0, 4.0), gt=0)
    learn_weights: bool = True
    weight_objective: Literal["maximise", "minimise"] = "maximise"
    weight_floor: float = option(0.5, ge=0, le=1)
    estimator: Literal["unbiased", "biased"] = "unbiased"


@dataclass(frozen=True)
class FusionConfig(Section):
    """Eq. 3's shared fusion phi_shared: Linear(4D, hidden) - ReLU - Linear(hidden, out) on
    [g_V || g_I || p_V || p_I]; hidden null = 2D (half the input, as the released aligner halves),
    out null = 2D (the width of the intra/inter mixes)."""

    enabled: bool = True
    hidden: int | None = option(None, gt=0)
    out: int | None = option(None, gt=0)


@dataclass(frozen=True)
class AMINetOptions(Section):
    upper_ratio: float = option(0.5, gt=0, le=1)
    part_size: tuple[int, int] | None = option(None, gt=0)
    inter_pairing: Literal["paper", "code"] = "paper"
    part_augment: Literal["independent", "shared"] = "independent"
    share_non_local: bool = True
    fusion: FusionConfig = FusionConfig()
    pesam: PESAMConfig = PESAMConfig()
    mmd: MMDConfig = MMDConfig()


@dataclass(frozen=True)
class AMINetLoss(TripletLoss):
    triplet: Literal["wrt", "hard"] = "hard"
    margin: float = option(0.35, gt=0)
    mmd_intra_weight: float = option(0.4, ge=0)
    mmd_inter_weight: float = option(0.6, ge=0)
    contrastive_weight: float = option(0.0, ge=0)
    contrastive_tau: float = option(1.0 / 16.0, gt=0)


@dataclass(frozen=True)
class AMINetConfig(MethodConfig):
    model: AMINetModel = AMINetModel()
    aminet: AMINetOptions = AMINetOptions()
    loss: AMINetLoss = AMINetLoss()


def upper_rows(height: int, ratio: float) -> int:
    """Rows of AMINet's upper-body crop: round(height x ratio), at least one (Sec. 4.4)."""
    return max(1, int(round(height * ratio)))


def fit_part(part: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    """The upper-body images resized (bilinear) to `size` when one is given and differs."""
    if size is not None and tuple(part.shape[-2:]) != tuple(size):
        part = F.interpolate(part, size=tuple(size), mode="bilinear", align_corners=False)
    return part


def upper_body(images: torch.Tensor, ratio: float, size: tuple[int, int] | None = None) -> torch.Tensor:
    """The top `ratio` of each image (AMINet's upper-body input), optionally resized to `size`."""
    return fit_part(images[..., : upper_rows(images.shape[-2], ratio), :], size)


class SharedFusion(nn.Module):
    """phi_shared of Eq. 3 in the form of the released code's ContrastiveModalAligner (a bottleneck
    of two linear layers with a ReLU between, biases on), applied to pooled features."""

    def __init__(self, in_dim: int, hidden: int, out: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden)
        self.fc2 = nn.Linear(hidden, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(x)))


def share_nonlocal_blocks(src: nn.Module, dst: nn.Module) -> int:
    """Make the non-local blocks of trunk `dst` the very modules of trunk `src` (same stage, same
    position), as the released code applies one NL set in both trunks; returns how many."""
    n = 0
    for stage_name, stage in src.named_children():
        other = getattr(dst, stage_name)
        for name, module in stage.named_children():
            if name.startswith("nl"):
                setattr(other, name, module)
                n += 1
    return n


class AMINetNet(nn.Module):
    """The AMINet network (HMG-DBNet + IFFS + PESAM + AMK-MMD modules)."""

    def __init__(
        self,
        num_classes: int,
        backbone: str = "resnet50",
        last_stride: int = 1,
        weights: Weights = None,
        gem_p: float = 3.0,
        upper_ratio: float = 0.5,
        part_size: tuple[int, int] | None = None,
        non_local: list[int] | None = None,
        nl_inner: str | int = "half",
        pesam: Mapping[str, Any] | None = None,
        mmd: Mapping[str, Any] | None = None,
        inter_pairing: str = "paper",
        share_non_local: bool = True,
        fusion: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 < upper_ratio <= 1.0:
            raise VibenchError(f"aminet.upper_ratio must be in (0, 1], got {upper_ratio}")
        if inter_pairing not in ("paper", "code"):
            raise VibenchError(f"aminet.inter_pairing must be 'paper' or 'code', got {inter_pairing!r}")
        self.upper_ratio, self.part_size, self.inter_pairing = float(upper_ratio), part_size, inter_pairing
        # four stems (modality x granularity) and two shared trunks, each from its own ResNet
        self.stem_vis_global = resnet_stem(resnet(backbone, weights=weights))
        self.stem_ir_global = resnet_stem(resnet(backbone, weights=weights))
        self.stem_vis_part = resnet_stem(resnet(backbone, weights=weights))
        self.stem_ir_part = resnet_stem(resnet(backbone, weights=weights))
        g = resnet(backbone, last_stride=last_stride, weights=weights)
        p = resnet(backbone, last_stride=last_stride, weights=weights)
        self.trunk_global = resnet_stages(g, 1, 4, non_local, nl_inner)
        self.trunk_part = resnet_stages(p, 1, 4, non_local, nl_inner)
        if share_non_local:
            share_nonlocal_blocks(self.trunk_global, self.trunk_part)
        dim = resnet_dim(g)
        self.feat_dim = dim
        self.pool = GeM(gem_p)
        pesam = dict(pesam or {})
        self.use_pesam = bool(pesam.pop("enabled", False))
        self.pesam_global = PESAM(**pesam) if self.use_pesam else None
        self.pesam_part = PESAM(**pesam) if self.use_pesam else None
        self.neck_global = BNNeck(dim, num_classes)
        self.neck_part = BNNeck(dim, num_classes)
        self.neck_mix = BNNeck(2 * dim, num_classes)  # shared by the intra and inter fusions
        fusion = dict(fusion or {})
        self.fusion: SharedFusion | None = None
        if fusion.get("enabled", False):
            hidden = int(fusion.get("hidden") or 2 * dim)
            width = int(fusion.get("out") or 2 * dim)
            self.fusion = SharedFusion(4 * dim, hidden, width)
            self.neck_fused = BNNeck(width, num_classes)
        mmd = dict(mmd or {})
        self.mmd_intra = AMKMMD(**mmd)
        self.mmd_inter = AMKMMD(**mmd)
        self.init_info = {"backbone": backbone, **init_info(weights)}

    def branch(self, images: torch.Tensor, is_vis: torch.Tensor, n_vis: int, part: bool) -> torch.Tensor:
        """GeM feature of one granularity; rows [0, n_vis) visible, the rest infrared."""
        stem_v, stem_i = (self.stem_vis_part, self.stem_ir_part) if part else (self.stem_vis_global, self.stem_ir_global)
        stems = []
        if n_vis:
            stems.append(stem_v(images[:n_vis]))
        if n_vis < images.shape[0]:
            stems.append(stem_i(images[n_vis:]))
        fmap = (self.trunk_part if part else self.trunk_global)(torch.cat(stems))
        pes = self.pesam_part if part else self.pesam_global
        if pes is not None:
            fmap = pes(fmap, images, is_vis)
        return self.pool(fmap)

    def forward(
        self,
        vis: torch.Tensor | None = None,
        ir: torch.Tensor | None = None,
        vis_part: torch.Tensor | None = None,
        ir_part: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """`vis_part`/`ir_part`: upper-body images augmented on their own (training); when absent
        the upper body is cut from `vis`/`ir` (test images are not augmented, so both agree)."""
        parts = [t for t in (vis, ir) if t is not None]
        if not parts:
            raise VibenchError("AMINetNet.forward needs visible and/or infrared images")
        x = torch.cat(parts)
        n_vis = 0 if vis is None else vis.shape[0]
        is_vis = torch.arange(x.shape[0], device=x.device) < n_vis
        given = [t for t in (vis_part, ir_part) if t is not None]
        if given:
            if (vis_part is None) != (vis is None) or (ir_part is None) != (ir is None) or \
                    sum(t.shape[0] for t in given) != x.shape[0]:
                raise VibenchError("AMINetNet.forward: vis_part/ir_part must come with vis/ir, one part image per image")
            xp = fit_part(torch.cat(given), self.part_size)
        else:
            xp = upper_body(x, self.upper_ratio, self.part_size)
        g = self.branch(x, is_vis, n_vis, part=False)
        p = self.branch(xp, is_vis, n_vis, part=True)
        intra = torch.cat([g, p], 1)  # Eq. 4 (and the test-time [g || p])
        out = {"g": g, "p": p, "intra": intra, "feat": self.neck_mix.bottleneck(intra)}
        if self.training:
            if vis is None or ir is None or vis.shape[0] != ir.shape[0]:
                raise VibenchError("AMINet training needs index-aligned visible and infrared batches of equal size")
            b = n_vis
            if self.inter_pairing == "paper":  # Eq. 5
                inter = torch.cat([torch.cat([g[:b], p[b:]], 1), torch.cat([g[b:], p[:b]], 1)])
            else:  # released code
                inter = torch.cat([torch.cat([g[:b], g[b:]], 1), torch.cat([p[b:], p[:b]], 1)])
            out["inter"] = inter
            if self.fusion is not None:  # Eq. 3: [F^m_global, F^i_global, F^m_part, F^i_part]
                out["fused"] = self.fusion(torch.cat([g[:b], g[b:], p[:b], p[b:]], 1))
                out["logits_fused"] = self.neck_fused(out["fused"])[1]
            out["logits_g"] = self.neck_global(g)[1]
            out["logits_p"] = self.neck_part(p)[1]
            out["logits_intra"] = self.neck_mix.classifier(out["feat"])
            out["logits_inter"] = self.neck_mix(inter)[1]
        return out


@register_method("aminet")
class AMINet(Method):
    paper = "Jia & Armour, AMINet: Adaptive Modality Interaction Network for Visible-Infrared Person Re-Identification"
    config_dir = Path(__file__).resolve().parent / "configs" / "aminet"

    config_schema = AMINetConfig

    def build_model(self, num_classes: int) -> nn.Module:
        m, a = self.config.model, self.config.aminet
        return AMINetNet(
            num_classes, backbone=m.backbone, last_stride=m.last_stride, weights=m.pretrained, gem_p=m.gem_p,
            upper_ratio=a.upper_ratio, part_size=a.part_size, non_local=list(m.non_local), nl_inner=m.nl_inner,
            pesam=to_dict(a.pesam), mmd=to_dict(a.mmd), inter_pairing=a.inter_pairing,
            share_non_local=a.share_non_local, fusion=to_dict(a.fusion),
        )

    def extra_views(self, image: np.ndarray, modality: str, augment: Callable[..., np.ndarray],
                    rng: np.random.Generator) -> dict[str, np.ndarray]:
        """The upper-body view: the top `upper_ratio` rows of the un-augmented image, through the
        modality's augmentation with a draw of its own (the released code pre-crops the upper
        body and transforms it independently of the full image)."""
        a = self.config.aminet
        if a.part_augment != "independent":
            return {}
        return {"upper": augment(image[: upper_rows(image.shape[0], a.upper_ratio)], rng)}

    def training_step(self, model: nn.Module, batch: dict[str, torch.Tensor], state: StepState) -> dict[str, torch.Tensor]:
        lc = self.config.loss
        out = model(batch["vis"], batch["ir"], batch.get("vis_upper"), batch.get("ir_upper"))
        y = torch.cat([batch["vis_label"], batch["ir_label"]])
        b = batch["vis"].shape[0]

        def tri(f: torch.Tensor) -> torch.Tensor:
            return triplet_loss(lc.triplet, f, y, lc.margin)

        wid, wtri = lc.id_weight, lc.triplet_weight
        terms: dict[str, torch.Tensor] = {}
        for name in ("g", "p", "intra", "inter"):
            terms[f"id_{name}"] = wid * F.cross_entropy(out[f"logits_{name}"].float(), y)
            terms[f"tri_{name}"] = wtri * tri(out[name])
        if "fused" in out:  # one row per same-id (V, I) pair, labelled by the pair's identity
            yv = batch["vis_label"]
            terms["id_fused"] = wid * F.cross_entropy(out["logits_fused"].float(), yv)
            terms["tri_fused"] = wtri * triplet_loss(lc.triplet, out["fused"], yv, lc.margin)
        if lc.contrastive_weight:
            mods = torch.cat([torch.zeros(b, dtype=torch.long), torch.ones(len(y) - b, dtype=torch.long)]).to(y.device)
            terms["con_intra"] = lc.contrastive_weight * aggregation_contrastive_loss(
                out["intra"], y, mods, tau=lc.contrastive_tau, cross_modal_positives=True)
        w_intra, w_inter = lc.mmd_intra_weight, lc.mmd_inter_weight
        if w_intra:
            terms["mmd_intra"] = w_intra * model.mmd_intra(out["intra"][:b].float(), out["intra"][b:].float())
        if w_inter:
            terms["mmd_inter"] = w_inter * model.mmd_inter(out["inter"][:b].float(), out["inter"][b:].float())
        return terms

    def embed(self, model: nn.Module, images: torch.Tensor, modality: str) -> dict[str, torch.Tensor]:
        return two_stream_embed(model, images, modality, "intra")
