"""TMPA: Transferring Modality-Aware Pedestrian Attentive learning (Guo et al.; docs/methods.md#tmpa-notes).

    x_hat = Cat(x^V_hat, x^I_hat) = PedMix(x^V, x^I)                                   Eq. 1-3
    MFE: three independent extractors (ResNet stem + layer1 + layer2, "first three blocks")
         E_sh(x_hat), E_sp^V(x^V), E_sp^I(x^I)
    conv blocks (layer3 + layer4, "last two blocks"): S_sh = Conv_sh(E_sh), S_V = Conv^V(E_sp^V),
         S_I = Conv^I(E_sp^I); F_sh, F_sp^V, F_sp^I = GeM(S_.)
    L_MFE = L_MSI + lambda_1 L_MSS                                                      Eq. 4-8
    MFT on the maps: F_CA (cross-attention, Eq. 10) and F_Conv (Eq. 9) on shared 1x1 projections,
         F_sp^{V'} = F_CA^V + F_Conv^V, F_sp^{I'} = F_CA^I + F_Conv^I                   Eq. 11
    F_C = lambda_2 Cat(F_sp^{V'}, F_sp^I) + lambda_3 Cat(F_sp^V, F_sp^{I'}) + F_Conv^sh   Eq. 12
         (Cat along the batch: a visible row gets lambda_2 F_sp^{V'} + lambda_3 F_sp^V + F_Conv^sh,
          an infrared row lambda_2 F_sp^I + lambda_3 F_sp^{I'} + F_Conv^sh)
    L_MFT = CE(C^I(F_sp^{V'})) + CE(C^V(F_sp^{I'}))   (``mft_classifier: cross``, default [G])
          or CE(C^V(F_sp^{V'})) + CE(C^I(F_sp^{I'}))   (``literal``, Eq. 13 as printed)       Eq. 13
         Eq. 12 pairs F_sp^{V'} with the real F_sp^I and F_sp^{I'} with the real F_sp^V, and the text
         says MFT "generates the missing modality-specific features"; the cross reading makes every
         row of F_C hold one visible-type and one infrared-type specific feature.
    L = alpha (CE(C(F_C)) + WRT(F_C)) + beta (L_MFE + L_MFT)                             Eq. 14-16

The three streams are independent networks; with ``same_init`` (default) they start from one
set of weights, as they do when loaded from one ImageNet file (without a weights file, independent
random streams start in unrelated feature spaces and the specific features do not match across
modalities). At test time E_sh sees the un-mixed image and only the image's own modality branch runs;
the embedding is l2norm(BN(F_C)) (2048-d). [G] choices are listed in ``metafile.yaml``.

Parameter counts (docs/methods.md#tmpa-notes): the literal design has three conv blocks (71.8M registered on
RegDB); ``share_specific_conv: true`` (Conv^V = Conv^I) gives about 49.7M + MFT, close to the 48.3M of
Table V (which matches "2 full ResNet-50 objects + 3 heads" under the registered-parameter convention).
"""
from __future__ import annotations

import copy
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Literal

import torch
import torch.nn.functional as F
from torch import nn

from vibench.engine.api import Method, StepState, two_stream_embed
from vibench.engine.schema import Problem, Section, option, to_dict
from vibench.engine.sections import MethodConfig
from vibench.errors import VibenchError
from vibench_methods.layers.backbones import Weights, init_info, resnet
from vibench_methods.layers.bnneck import BNNeck
from vibench_methods.layers.gem import GeM
from vibench_methods.layers.modality_transfer import ModalityFeatureTransfer
from vibench_methods.layers.resnet_parts import resnet_dim, resnet_stages, resnet_stem
from vibench_methods.losses.tmpa import msi_loss, mss_loss
from vibench_methods.losses.triplet import triplet_loss
from vibench_methods.mixing.build import build_mixer
from vibench_methods.sections import GeMResNetModel, MixingConfig, TripletChoice
from vibench.registry import register_method


@dataclass(frozen=True)
class MFTConfig(Section):
    """Modality feature transfer (Eq. 9-11): projection width, heads, conv kernel."""

    dim: int = option(256, gt=0)
    heads: int = option(1, gt=0)
    kernel_size: int = option(3, gt=0)

    def problems(self) -> Iterable[Problem]:
        if self.dim % self.heads:
            yield "dim", f"{self.dim} must be divisible by tmpa.mft.heads {self.heads}"


@dataclass(frozen=True)
class TMPAMixing(MixingConfig):
    kind: Literal["pedmix", "patchmix", "none"] = "pedmix"


@dataclass(frozen=True)
class TMPAOptions(Section):
    split_stage: Literal[1, 2, 3] = 2
    same_init: bool = True
    mft_classifier: Literal["cross", "literal"] = "cross"
    share_specific_conv: bool = False
    lambda2: float = option(0.25, ge=0)
    lambda3: float = option(0.25, ge=0)
    mft: MFTConfig = MFTConfig()
    mixing: TMPAMixing = TMPAMixing()


@dataclass(frozen=True)
class TMPALoss(TripletChoice):
    """Eq. 14-16 weights (alpha, beta, lambda1) and the MSS loss options (Eq. 4)."""

    alpha: float = option(0.8, ge=0)
    beta: float = option(0.4, ge=0)
    lambda1: float = option(0.2, ge=0)
    mss_margin: float = option(0.65, gt=0)
    mss_normalize: bool = True
    mss_reduction: Literal["sum", "mean"] = "sum"


@dataclass(frozen=True)
class TMPAConfig(MethodConfig):
    model: GeMResNetModel = GeMResNetModel()
    tmpa: TMPAOptions = TMPAOptions()
    loss: TMPALoss = TMPALoss()


def extractor(net: nn.Module, last_stage: int) -> nn.Sequential:
    """Stem + layer1..layer`last_stage` of a ResNet (an MFE extractor)."""
    return nn.Sequential(OrderedDict(stem=resnet_stem(net), stages=resnet_stages(net, 1, last_stage)))


class TMPANet(nn.Module):
    """The TMPA network: MFE extractors, conv blocks, MFT and the three classifiers."""

    def __init__(
        self,
        num_classes: int,
        backbone: str = "resnet50",
        last_stride: int = 1,
        weights: Weights = None,
        gem_p: float = 3.0,
        split_stage: int = 2,
        share_specific_conv: bool = False,
        mft: dict[str, Any] | None = None,
        lambda2: float = 0.25,
        lambda3: float = 0.25,
        same_init: bool = True,
    ) -> None:
        super().__init__()
        if split_stage not in (1, 2, 3):
            raise VibenchError(f"tmpa.split_stage must be 1, 2 or 3 (extractor = stem..layer<k>), got {split_stage}")
        if same_init:  # the three streams start from one set of weights, as from one ImageNet file
            first = resnet(backbone, last_stride=last_stride, weights=weights)
            nets = {"sh": first, "vis": copy.deepcopy(first), "ir": copy.deepcopy(first)}
        else:
            nets = {k: resnet(backbone, last_stride=last_stride, weights=weights) for k in ("sh", "vis", "ir")}
        self.extract_sh = extractor(nets["sh"], split_stage)
        self.extract_vis = extractor(nets["vis"], split_stage)
        self.extract_ir = extractor(nets["ir"], split_stage)
        self.conv_sh = resnet_stages(nets["sh"], split_stage + 1, 4)
        self.conv_vis = resnet_stages(nets["vis"], split_stage + 1, 4)
        self.share_specific_conv = bool(share_specific_conv)
        self.conv_ir = self.conv_vis if self.share_specific_conv else resnet_stages(nets["ir"], split_stage + 1, 4)
        dim = resnet_dim(nets["sh"])
        self.feat_dim = dim
        self.mft = ModalityFeatureTransfer(dim, **(mft or {}))
        self.pool = GeM(gem_p)
        self.lambda2, self.lambda3 = float(lambda2), float(lambda3)
        self.neck = BNNeck(dim, num_classes)  # C, on F_C
        self.head_vis = BNNeck(dim, num_classes)  # C^V (BN + FC), Eq. 7 and 13
        self.head_ir = BNNeck(dim, num_classes)  # C^I
        self.init_info = {"backbone": backbone, **init_info(weights)}

    @staticmethod
    def mpool(x: torch.Tensor) -> torch.Tensor:
        """Average pooling of the MFT outputs (signed maps; [G])."""
        return x.mean((2, 3))

    def forward(
        self, vis: torch.Tensor | None = None, ir: torch.Tensor | None = None, mixed: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Training: vis, ir (B each, index-aligned) and mixed = Cat(x^V_hat, x^I_hat) (2B).
        Test: one of vis / ir; E_sh then sees the same images."""
        if vis is None and ir is None:
            raise VibenchError("TMPANet.forward needs visible and/or infrared images")
        n_vis = 0 if vis is None else vis.shape[0]
        if mixed is None:
            mixed = torch.cat([t for t in (vis, ir) if t is not None])
        s_sh = self.conv_sh(self.extract_sh(mixed))
        s_vis = self.conv_vis(self.extract_vis(vis)) if vis is not None else None
        s_ir = self.conv_ir(self.extract_ir(ir)) if ir is not None else None
        f_sh = self.pool(s_sh)
        fc_rows, out = [], {"f_sh": f_sh}
        if s_vis is not None:
            t = self.mft(s_sh[:n_vis], s_vis=s_vis)
            f_sp_vis, f_vis_prime = self.pool(s_vis), self.mpool(t["sp_vis_prime"])
            fc_rows.append(self.lambda2 * f_vis_prime + self.lambda3 * f_sp_vis + self.mpool(t["conv_sh"]))
            out.update(f_sp_vis=f_sp_vis, f_vis_prime=f_vis_prime)
        if s_ir is not None:
            t = self.mft(s_sh[n_vis:], s_ir=s_ir)
            f_sp_ir, f_ir_prime = self.pool(s_ir), self.mpool(t["sp_ir_prime"])
            fc_rows.append(self.lambda2 * f_sp_ir + self.lambda3 * f_ir_prime + self.mpool(t["conv_sh"]))
            out.update(f_sp_ir=f_sp_ir, f_ir_prime=f_ir_prime)
        f_c = torch.cat(fc_rows)  # Eq. 12
        out["f_c"] = f_c
        out["feat"] = self.neck.bottleneck(f_c)
        if self.training:
            out["logits"] = self.neck.classifier(out["feat"])
            if s_vis is not None:
                out["logits_sp_vis"] = self.head_vis(out["f_sp_vis"])[1]
                out["logits_vis_prime"] = self.head_vis(out["f_vis_prime"])[1]
                out["logits_vis_prime_by_ir"] = self.head_ir(out["f_vis_prime"])[1]
            if s_ir is not None:
                out["logits_sp_ir"] = self.head_ir(out["f_sp_ir"])[1]
                out["logits_ir_prime"] = self.head_ir(out["f_ir_prime"])[1]
                out["logits_ir_prime_by_vis"] = self.head_vis(out["f_ir_prime"])[1]
        return out


@register_method("tmpa")
class TMPA(Method):
    paper = "Guo et al., Transferring Modality-Aware Pedestrian Attentive Learning for Visible-Infrared Person Re-identification"
    config_dir = Path(__file__).resolve().parent / "configs" / "tmpa"

    config_schema = TMPAConfig

    def build_model(self, num_classes: int) -> nn.Module:
        m, t = self.config.model, self.config.tmpa
        return TMPANet(
            num_classes, backbone=m.backbone, last_stride=m.last_stride, weights=m.pretrained, gem_p=m.gem_p,
            split_stage=t.split_stage, share_specific_conv=t.share_specific_conv, mft=to_dict(t.mft),
            lambda2=t.lambda2, lambda3=t.lambda3, same_init=t.same_init,
        )

    def training_step(self, model: nn.Module, batch: dict[str, torch.Tensor], state: StepState) -> dict[str, torch.Tensor]:
        t, lc = self.config.tmpa, self.config.loss
        vis, ir = batch["vis"], batch["ir"]
        y = batch["vis_label"]
        if not torch.equal(batch["vis_label"], batch["ir_label"]):
            raise VibenchError("tmpa: PedMix and the MSS loss need index-aligned visible/infrared rows (vis_label == ir_label)")
        mixer = build_mixer(to_dict(t.mixing))
        if mixer is None:  # ablation without mixing: E_sh sees the original images
            mixed = torch.cat([vis, ir])
        else:
            mix = mixer(vis, ir)
            mixed = torch.cat([mix.vis_based, mix.ir_based])  # Eq. 3
        out = model(vis, ir, mixed)
        y2 = torch.cat([y, y])
        alpha, beta, lam1 = lc.alpha, lc.beta, lc.lambda1
        tri = triplet_loss(lc.triplet, out["f_c"], y2, lc.margin)
        if t.mft_classifier == "cross":  # F_sp^V' is the generated infrared-specific feature of a visible row (Eq. 12)
            mft = msi_loss(out["logits_vis_prime_by_ir"].float(), out["logits_ir_prime_by_vis"].float(), y)
        else:  # "literal", Eq. 13 as printed: C^V(F_sp^V'), C^I(F_sp^I')
            mft = msi_loss(out["logits_vis_prime"].float(), out["logits_ir_prime"].float(), y)
        mss = mss_loss(
            out["f_sp_vis"].float(), out["f_sp_ir"].float(), out["f_sh"].float(), y,
            margin=lc.mss_margin, normalize=lc.mss_normalize, reduction=lc.mss_reduction,
        )
        return {
            "id": alpha * F.cross_entropy(out["logits"].float(), y2),
            "wrt": alpha * tri,
            "msi": beta * msi_loss(out["logits_sp_vis"].float(), out["logits_sp_ir"].float(), y),
            "mss": beta * lam1 * mss,
            "mft": beta * mft,
        }

    def embed(self, model: nn.Module, images: torch.Tensor, modality: str) -> dict[str, torch.Tensor]:
        return two_stream_embed(model, images, modality, "f_c")
