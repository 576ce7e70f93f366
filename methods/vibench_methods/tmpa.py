"""TMPA: Transferring Modality-Aware Pedestrian Attentive learning (Guo et al.; docs/methods.md#tmpa-notes).

    x_hat = Cat(x^V_hat, x^I_hat) = PedMix(x^V, x^I)                                   Eq. 1-3
    MFE: three independent extractors (ResNet stem + layer1 + layer2, "first three blocks")
         E_sh(x_hat), E_sp^V(x^V), E_sp^I(x^I)
    conv blocks (layer3 + layer4, "last two blocks"): F_Conv^sh = Conv_sh(E_sh), F_Conv^V = Conv^V(E_sp^V),
         F_Conv^I = Conv^I(E_sp^I)
    MFT (layers/modality_transfer.py): Q/K/V are the conv blocks' own 1x1 projections at layer4[0]
         (Q from Conv^V / Conv^I, K and V from Conv_sh); F_CA = softmax(QK^T/sqrt(d)) V        Eq. 9-10
         F_sp^{V'} = F_CA^V + F_Conv^V, F_sp^{I'} = F_CA^I + F_Conv^I                           Eq. 11
    F_C = lambda_2 Cat(F_sp^{V'}, F_sp^I) + lambda_3 Cat(F_sp^V, F_sp^{I'}) + F_Conv^sh       Eq. 12
         (Cat along the batch: a visible row gets lambda_2 F_sp^{V'} + lambda_3 F_sp^V + F_Conv^sh,
          an infrared row lambda_2 F_sp^I + lambda_3 F_sp^{I'} + F_Conv^sh)
    L_MFT = CE(C^V(F_sp^{V'})) + CE(C^I(F_sp^{I'}))   (``mft_classifier: paper``, Eq. 13 as printed)
          or CE(C^I(F_sp^{V'})) + CE(C^V(F_sp^{I'}))   (``cross`` variant: Eq. 12 pairs F_sp^{V'} with the
          real F_sp^I, so V' can be read as the generated infrared-type feature)              Eq. 13
    L = alpha (CE(C(F_C)) + WRT(F_C)) + beta (L_MSI + lambda_1 L_MSS + L_MFT)                 Eq. 14-16

Channel augmentation (CAJ, Table II "CA") comes from the engine as an extra visible view
(``augment.visible_extra_view``): the visible stream then holds 2B rows (colour, channel-exchanged)
for B infrared rows. Every visible view is PedMix-ed with its sample's infrared partner (x^V_hat per
visible row), x^I_hat takes its visible patches from the colour view, and every loss sees every row
with the labels repeated; MSS pairs visible row j with infrared row j mod B.

The three streams are independent networks; with ``same_init`` (default) they start from one
set of weights, as they do when loaded from one ImageNet file. At test time E_sh sees the un-mixed
image and only the image's own modality branch runs; the embedding is l2norm(BN(F_C)) (2048-d).
Parameter counts and every choice the paper leaves open: ``configs/tmpa/metafile.yaml`` (fidelity card).
"""
from __future__ import annotations

import copy
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
from vibench_methods.layers.modality_transfer import ModalityFeatureTransfer
from vibench_methods.layers.resnet_parts import resnet_dim, resnet_stages, resnet_stem
from vibench_methods.losses.tmpa import msi_loss, mss_loss
from vibench_methods.losses.triplet import triplet_loss
from vibench_methods.mixing.build import build_mixer
from vibench_methods.sections import GeMResNetModel, MixingConfig, TripletChoice
from vibench.registry import register_method


@dataclass(frozen=True)
class TMPAMixing(MixingConfig):
    kind: Literal["pedmix", "patchmix", "none"] = "pedmix"


@dataclass(frozen=True)
class TMPAOptions(Section):
    split_stage: Literal[1, 2, 3] = 2
    same_init: bool = True
    mft_classifier: Literal["paper", "cross"] = "paper"
    share_specific_conv: bool = False
    lambda2: float = option(0.25, ge=0)
    lambda3: float = option(0.25, ge=0)
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
    """The TMPA network: MFE extractors, conv blocks (whose 1x1 projections the MFT reuses) and
    the three classifiers C, C^V, C^I."""

    def __init__(
        self,
        num_classes: int,
        backbone: str = "resnet50",
        last_stride: int = 1,
        weights: Weights = None,
        gem_p: float = 3.0,
        split_stage: int = 2,
        share_specific_conv: bool = False,
        lambda2: float = 0.25,
        lambda3: float = 0.25,
        same_init: bool = True,
    ) -> None:
        super().__init__()
        if split_stage not in (1, 2, 3):
            raise VibenchError(f"tmpa.split_stage must be 1, 2 or 3 (extractor = stem..layer<k>), got {split_stage}")
        if last_stride != 1:
            raise VibenchError(f"tmpa needs model.last_stride: 1 (the MFT attends between layer4[0]'s 1x1 projections, "
                               f"which a strided layer4 puts at two map sizes), got {last_stride}")
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
        self.mft = ModalityFeatureTransfer()  # no parameters: it reuses the conv blocks' 1x1 convolutions
        self.pool = GeM(gem_p)
        self.lambda2, self.lambda3 = float(lambda2), float(lambda3)
        self.neck = BNNeck(dim, num_classes)  # C, on F_C
        self.head_vis = BNNeck(dim, num_classes)  # C^V (BN + FC), Eq. 7 and 13
        self.head_ir = BNNeck(dim, num_classes)  # C^I
        self.init_info = {"backbone": backbone, **init_info(weights)}

    @staticmethod
    def mpool(x: torch.Tensor) -> torch.Tensor:
        """Average pooling of the signed MFT outputs F_sp' (GeM needs non-negative maps; [G])."""
        return x.mean((2, 3))

    def forward(
        self, vis: torch.Tensor | None = None, ir: torch.Tensor | None = None, mixed: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Training: vis (Nv rows), ir (Ni rows) and mixed (Nv + Ni rows, row r the PedMix image of
        row r of Cat(vis, ir)). Test: one of vis / ir; E_sh then sees the same images."""
        if vis is None and ir is None:
            raise VibenchError("TMPANet.forward needs visible and/or infrared images")
        n_vis = 0 if vis is None else vis.shape[0]
        if mixed is None:
            mixed = torch.cat([t for t in (vis, ir) if t is not None])
        t = self.mft(
            self.conv_sh, self.extract_sh(mixed),
            self.conv_vis, None if vis is None else self.extract_vis(vis),
            self.conv_ir, None if ir is None else self.extract_ir(ir),
        )
        f_sh = self.pool(t["conv_sh"])  # F_sh of the MSS loss and F_Conv^sh of Eq. 12 (one map)
        fc_rows, out = [], {"f_sh": f_sh}
        if vis is not None:
            f_sp_vis, f_vis_prime = self.pool(t["conv_vis"]), self.mpool(t["sp_vis_prime"])
            fc_rows.append(self.lambda2 * f_vis_prime + self.lambda3 * f_sp_vis + f_sh[:n_vis])
            out.update(f_sp_vis=f_sp_vis, f_vis_prime=f_vis_prime)
        if ir is not None:
            f_sp_ir, f_ir_prime = self.pool(t["conv_ir"]), self.mpool(t["sp_ir_prime"])
            fc_rows.append(self.lambda2 * f_sp_ir + self.lambda3 * f_ir_prime + f_sh[n_vis:])
            out.update(f_sp_ir=f_sp_ir, f_ir_prime=f_ir_prime)
        f_c = torch.cat(fc_rows)  # Eq. 12
        out["f_c"] = f_c
        out["feat"] = self.neck.bottleneck(f_c)
        if self.training:
            out["logits"] = self.neck.classifier(out["feat"])
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
            split_stage=t.split_stage, share_specific_conv=t.share_specific_conv,
            lambda2=t.lambda2, lambda3=t.lambda3, same_init=t.same_init,
        )

    def training_step(self, model: nn.Module, batch: dict[str, torch.Tensor], state: StepState) -> dict[str, torch.Tensor]:
        t, lc = self.config.tmpa, self.config.loss
        vis, ir, y = batch["vis"], batch["ir"], batch["ir_label"]
        b = ir.shape[0]
        views = vis.shape[0] // b if b else 0
        if b == 0 or views * b != vis.shape[0] or not torch.equal(batch["vis_label"], y.repeat(views)):
            raise VibenchError(
                "tmpa: PedMix and the MSS loss need index-aligned visible/infrared rows: B infrared rows and "
                f"k*B visible rows (k views, view-major) with vis_label == ir_label repeated; got {vis.shape[0]} and {b}"
            )
        y_vis = batch["vis_label"]
        mixer = build_mixer(to_dict(t.mixing))
        if mixer is None:  # ablation without mixing: E_sh sees the original images
            mixed = torch.cat([vis, ir])
        else:  # Eq. 3 per visible view; x^I_hat takes its visible patches from the first (colour) view
            parts, ir_based = [], None
            for k in range(views):
                mix = mixer(vis[k * b : (k + 1) * b], ir)
                parts.append(mix.vis_based)
                ir_based = mix.ir_based if ir_based is None else ir_based
            mixed = torch.cat(parts + [ir_based])
        out = model(vis, ir, mixed)
        y_all = torch.cat([y_vis, y])
        tri = triplet_loss(lc.triplet, out["f_c"], y_all, lc.margin)
        vis_head, ir_head = (model.head_vis, model.head_ir) if t.mft_classifier == "paper" else (model.head_ir, model.head_vis)
        mft = msi_loss(vis_head(out["f_vis_prime"])[1].float(), ir_head(out["f_ir_prime"])[1].float(), y_vis, y)  # Eq. 13
        msi = msi_loss(model.head_vis(out["f_sp_vis"])[1].float(), model.head_ir(out["f_sp_ir"])[1].float(), y_vis, y)  # Eq. 7
        mss = mss_loss(
            out["f_sp_vis"].float(), out["f_sp_ir"].float(), out["f_sh"].float(), y,
            margin=lc.mss_margin, normalize=lc.mss_normalize, reduction=lc.mss_reduction,
        )
        return {
            "id": lc.alpha * F.cross_entropy(out["logits"].float(), y_all),
            "wrt": lc.alpha * tri,
            "msi": lc.beta * msi,
            "mss": lc.beta * lc.lambda1 * mss,
            "mft": lc.beta * mft,
        }

    def embed(self, model: nn.Module, images: torch.Tensor, modality: str) -> dict[str, torch.Tensor]:
        return two_stream_embed(model, images, modality, "f_c")
