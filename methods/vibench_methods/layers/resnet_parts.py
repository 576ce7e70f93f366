"""Pieces of a ResNet for multi-stream VI-ReID networks (AMINet, TMPA, PMCM): a run of stages layer<first>..layer<last>,
optionally with AGW-style non-local blocks after the last blocks of a stage. The ResNets, their
stems (:func:`resnet_stem`) and widths (:func:`resnet_dim`) come from
:mod:`vibench_methods.layers.backbones` (re-exported here)."""
from __future__ import annotations

from collections import OrderedDict

from torch import nn

from vibench.errors import VibenchError
from vibench_methods.layers.backbones import resnet_dim, resnet_stem
from vibench_methods.layers.nonlocal_block import NonLocalBlock

__all__ = ["resnet_dim", "resnet_stem", "resnet_stages", "stage_channels", "block_channels", "with_nonlocal"]


def block_channels(module: nn.Module) -> int:
    """Output channels of a ResNet block or stage: its last BatchNorm2d (bn3 of a Bottleneck, bn2
    of a BasicBlock, or a trailing non-local block's, all of the same width), else its last conv."""
    bns = [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]
    if bns:
        return int(bns[-1].num_features)
    return int([m for m in module.modules() if isinstance(m, nn.Conv2d)][-1].out_channels)


def stage_channels(net: nn.Module, stage: int) -> int:
    """Output channels of layer<stage> of a torchvision/timm ResNet."""
    return block_channels(getattr(net, f"layer{stage}"))


def with_nonlocal(layer: nn.Module, n_nonlocal: int, inner: str | int = "half", where: str = "stage") -> nn.Module:
    """The blocks of one ResNet stage with a non-local block after each of its last `n_nonlocal`
    blocks (AGW placement); the stage itself when `n_nonlocal` is 0."""
    if not n_nonlocal:
        return layer
    blocks = list(layer)
    if n_nonlocal > len(blocks):
        raise VibenchError(f"non_local asks for {n_nonlocal} blocks in {where} of {len(blocks)} blocks")
    seq: "OrderedDict[str, nn.Module]" = OrderedDict()
    for j, block in enumerate(blocks):
        seq[str(j)] = block
        if j >= len(blocks) - n_nonlocal:
            seq[f"nl{j}"] = NonLocalBlock(block_channels(block), inner)
    return nn.Sequential(seq)


def resnet_stages(
    net: nn.Module, first: int, last: int, non_local: list[int] | tuple[int, ...] | None = None, nl_inner: str | int = "half"
) -> nn.Sequential:
    """layer`first`..layer`last` of a ResNet; ``non_local[i]`` non-local blocks after the last
    blocks of stage i+1 (AGW placement; none by default)."""
    stages: "OrderedDict[str, nn.Module]" = OrderedDict()
    for i in range(first, last + 1):
        n_nl = int(non_local[i - 1]) if non_local else 0
        stages[f"layer{i}"] = with_nonlocal(getattr(net, f"layer{i}"), n_nl, nl_inner, f"layer{i}")
    return nn.Sequential(stages)
