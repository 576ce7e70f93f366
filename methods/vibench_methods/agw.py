"""AGW: "Deep Learning for Person Re-identification: A Survey and Outlook" (Ye et al., TPAMI'21),
the cross-modality baseline of mangye16/Cross-Modal-Re-ID-baseline (docs/methods.md#agw-notes).

    x = [stem_V(I_V); stem_I(I_I)]           modality-specific ResNet stems (conv1, bn1, relu, maxpool)
    x = layer1..4(x) with non-local blocks     shared trunk, last stride 1, NL after the last blocks
    f = GeM_p(x)                               p = 3, "pool" feature (triplet loss)
    f_bn = BN(f), logits = W f_bn              BN-neck; test embedding l2norm(f_bn) ("feat")
    L = CE(logits, y) + WRT(f, y)

Config schema: :class:`AGWConfig` (model = the shared non-local ResNet options, loss = identity +
triplet with ``loss.triplet`` wrt | hard | none); the fidelity card is in metafile.yaml.
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
from vibench.engine.sections import MethodConfig
from vibench.errors import VibenchError
from vibench_methods.layers.backbones import Weights, init_info, resnet, resnet_dim, resnet_stem
from vibench_methods.layers.bnneck import BNNeck
from vibench_methods.layers.gem import GeM
from vibench_methods.layers.resnet_parts import with_nonlocal
from vibench_methods.losses.triplet import triplet_loss
from vibench_methods.sections import NonLocalResNetModel, TripletLoss
from vibench.registry import register_method


@dataclass(frozen=True)
class AGWLoss(TripletLoss):
    """CE + triplet; ``none`` drops the triplet term."""

    triplet: Literal["wrt", "hard", "none"] = "wrt"


@dataclass(frozen=True)
class AGWConfig(MethodConfig):
    model: NonLocalResNetModel = NonLocalResNetModel()
    loss: AGWLoss = AGWLoss()


class AGWNet(nn.Module):
    def __init__(
        self,
        num_classes: int,
        backbone: str = "resnet50",
        last_stride: int = 1,
        non_local: tuple[int, int, int, int] | list[int] = (0, 2, 3, 0),
        nl_inner: str | int = "half",
        gem_p: float = 3.0,
        weights: Weights = None,
    ) -> None:
        super().__init__()
        if len(non_local) != 4:
            raise VibenchError(f"model.non_local must list 4 integers (one per ResNet stage), got {non_local!r}")
        # Both stems start as copies of the backbone's stem: the reference loads the same ImageNet
        # weights into each; with random init this keeps the two modalities' first layers equal
        # at the start too (they diverge in training).
        base = resnet(backbone, last_stride=last_stride, weights=weights)
        self.visible_stem = copy.deepcopy(resnet_stem(base))
        self.infrared_stem = copy.deepcopy(resnet_stem(base))
        self.trunk = nn.Sequential(OrderedDict(
            (f"layer{i + 1}", with_nonlocal(getattr(base, f"layer{i + 1}"), int(n), nl_inner, f"layer{i + 1}"))
            for i, n in enumerate(non_local)
        ))
        dim = resnet_dim(base)
        self.pool = GeM(gem_p)
        self.neck = BNNeck(dim, num_classes)
        self.feat_dim = dim
        self.init_info = {"backbone": backbone, **init_info(weights)}

    def forward(self, vis: torch.Tensor | None = None, ir: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        stems = []
        if vis is not None:
            stems.append(self.visible_stem(vis))
        if ir is not None:
            stems.append(self.infrared_stem(ir))
        if not stems:
            raise ValueError("AGWNet.forward needs visible and/or infrared images")
        x = self.trunk(torch.cat(stems))
        pool = self.pool(x)
        feat = self.neck.bottleneck(pool)
        out = {"pool": pool, "feat": feat}
        if self.training:
            out["logits"] = self.neck.classifier(feat)
        return out


@register_method("agw")
class AGW(Method):
    paper = "Ye et al., Deep Learning for Person Re-identification: A Survey and Outlook, TPAMI 2021"
    config_dir = Path(__file__).resolve().parent / "configs" / "agw"

    config_schema = AGWConfig

    def build_model(self, num_classes: int) -> nn.Module:
        m = self.config.model
        return AGWNet(num_classes, backbone=m.backbone, last_stride=m.last_stride, weights=m.pretrained,
                      non_local=m.non_local, nl_inner=m.nl_inner, gem_p=m.gem_p)

    def training_step(self, model: nn.Module, batch: dict[str, torch.Tensor], state: StepState) -> dict[str, torch.Tensor]:
        lc = self.config.loss
        out = model(batch["vis"], batch["ir"])
        labels = torch.cat([batch["vis_label"], batch["ir_label"]])
        terms = {"id": lc.id_weight * F.cross_entropy(out["logits"].float(), labels)}
        if lc.triplet != "none":
            name = "wrt" if lc.triplet == "wrt" else "triplet"
            terms[name] = lc.triplet_weight * triplet_loss(lc.triplet, out["pool"], labels, lc.margin)
        return terms

    def embed(self, model: nn.Module, images: torch.Tensor, modality: str) -> dict[str, torch.Tensor]:
        return two_stream_embed(model, images, modality, "pool")
