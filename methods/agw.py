"""AGW: "Deep Learning for Person Re-identification: A Survey and Outlook" (Ye et al., TPAMI'21),
the cross-modality baseline of mangye16/Cross-Modal-Re-ID-baseline (docs/methods.md#agw-notes).

    x = [stem_V(I_V); stem_I(I_I)]           modality-specific ResNet stems (conv1, bn1, relu, maxpool)
    x = layer1..4(x) with non-local blocks     shared trunk, last stride 1, NL after the last blocks
    f = GeM_p(x)                               p = 3, "pool" feature (triplet loss)
    f_bn = BN(f), logits = W f_bn              BN-neck; test embedding l2norm(f_bn) ("feat")
    L = CE(logits, y) + WRT(f, y)

Config keys (configs/agw/*.yaml, guesses listed in metafile.yaml):
  model.backbone (resnet50 | resnet18 ...), model.weights (local ImageNet file or null),
  model.last_stride (1), model.non_local ([0, 2, 3, 0] NL blocks per stage, after the last blocks),
  model.nl_inner (half = the paper's C/2 | official = the released code's C' = 1),
  model.gem_p (3), loss.triplet (wrt | hard), loss.margin (hard only), loss.id_weight,
  loss.triplet_weight.
"""
from __future__ import annotations

import copy
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vibench.engine.api import Method, StepState
from vibench.errors import VibenchError
from vibench.methods.layers.backbones import init_info, resnet, resnet_dim, resnet_stem
from vibench.methods.layers.bnneck import BNNeck
from vibench.methods.layers.gem import GeM
from vibench.methods.layers.nonlocal_block import NonLocalBlock
from vibench.methods.losses.triplet import batch_hard_triplet, weighted_regularized_triplet
from vibench.registry import register_method


def _stage_with_nonlocal(layer: nn.Sequential, n_nonlocal: int, inner: str | int) -> nn.Sequential:
    """The blocks of one ResNet stage with a non-local block after each of its last n blocks."""
    blocks = list(layer)
    if n_nonlocal > len(blocks):
        raise VibenchError(f"non_local asks for {n_nonlocal} blocks in a stage of {len(blocks)} blocks")
    out: "OrderedDict[str, nn.Module]" = OrderedDict()
    for j, block in enumerate(blocks):
        out[str(j)] = block
        if j >= len(blocks) - n_nonlocal:
            channels = block.bn3.num_features if hasattr(block, "bn3") else block.bn2.num_features
            out[f"nl{j}"] = NonLocalBlock(channels, inner)
    return nn.Sequential(out)


class AGWNet(nn.Module):
    def __init__(
        self,
        num_classes: int,
        backbone: str = "resnet50",
        last_stride: int = 1,
        non_local: tuple[int, int, int, int] | list[int] = (0, 2, 3, 0),
        nl_inner: str | int = "half",
        gem_p: float = 3.0,
        weights: str | Path | None = None,
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
            (f"layer{i + 1}", _stage_with_nonlocal(getattr(base, f"layer{i + 1}"), int(n), nl_inner))
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

    def build_model(self, num_classes: int) -> nn.Module:
        m = self.section("model")
        return AGWNet(
            num_classes,
            **self.resnet_options(),
            non_local=list(m.get("non_local", [0, 2, 3, 0])),
            nl_inner=m.get("nl_inner", "half"),
            gem_p=float(m.get("gem_p", 3.0)),
        )

    def training_step(self, model: nn.Module, batch: dict[str, torch.Tensor], state: StepState) -> dict[str, torch.Tensor]:
        loss_cfg = self.cfg.get("loss") or {}
        out = model(batch["vis"], batch["ir"])
        labels = torch.cat([batch["vis_label"], batch["ir_label"]])
        terms = {"id": float(loss_cfg.get("id_weight", 1.0)) * F.cross_entropy(out["logits"].float(), labels)}
        kind = loss_cfg.get("triplet", "wrt")
        w = float(loss_cfg.get("triplet_weight", 1.0))
        if kind == "wrt":
            terms["wrt"] = w * weighted_regularized_triplet(out["pool"].float(), labels)
        elif kind == "hard":
            terms["triplet"] = w * batch_hard_triplet(out["pool"].float(), labels, float(loss_cfg.get("margin", 0.3)))
        elif kind not in (None, "none"):
            raise VibenchError(f"agw: loss.triplet must be wrt, hard or none, got {kind!r}")
        return terms

    def embed(self, model: nn.Module, images: torch.Tensor, modality: str) -> dict[str, torch.Tensor]:
        out = model(vis=images) if modality == "visible" else model(ir=images)
        return {"feat": F.normalize(out["feat"].float(), dim=1), "pool": F.normalize(out["pool"].float(), dim=1)}
