"""Pieces of a ResNet for multi-stream VI-ReID networks (AMINet, TMPA, PMCM): a run of stages layer<first>..layer<last>,
optionally with AGW-style non-local blocks after the last blocks of a stage. The ResNets, their
stems (:func:`resnet_stem`) and widths (:func:`resnet_dim`) come from
:mod:`vibench.methods.layers.backbones` (re-exported here)."""
from __future__ import annotations

from collections import OrderedDict

from torch import nn

from vibench.errors import VibenchError
from vibench.methods.layers.backbones import resnet_dim, resnet_stem
from vibench.methods.layers.nonlocal_block import NonLocalBlock

__all__ = ["resnet_dim", "resnet_stem", "resnet_stages", "stage_channels"]


def resnet_stages(
    net: nn.Module, first: int, last: int, non_local: list[int] | None = None, nl_inner: str | int = "half"
) -> nn.Sequential:
    """layer`first`..layer`last` of a ResNet; ``non_local[i]`` non-local blocks after the last
    blocks of stage i+1 (AGW placement; none by default)."""
    stages: "OrderedDict[str, nn.Module]" = OrderedDict()
    for i in range(first, last + 1):
        layer = getattr(net, f"layer{i}")
        n_nl = int(non_local[i - 1]) if non_local else 0
        if n_nl:
            blocks = list(layer)
            if n_nl > len(blocks):
                raise VibenchError(f"non_local asks for {n_nl} blocks in layer{i} of {len(blocks)} blocks")
            seq: "OrderedDict[str, nn.Module]" = OrderedDict()
            for j, block in enumerate(blocks):
                seq[str(j)] = block
                if j >= len(blocks) - n_nl:
                    ch = block.bn3.num_features if hasattr(block, "bn3") else block.bn2.num_features
                    seq[f"nl{j}"] = NonLocalBlock(ch, nl_inner)
            layer = nn.Sequential(seq)
        stages[f"layer{i}"] = layer
    return nn.Sequential(stages)


def stage_channels(net: nn.Module, stage: int) -> int:
    """Output channels of layer<stage> of a torchvision ResNet."""
    block = list(getattr(net, f"layer{stage}"))[-1]
    return block.bn3.num_features if hasattr(block, "bn3") else block.bn2.num_features
