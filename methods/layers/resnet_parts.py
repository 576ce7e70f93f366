"""Pieces of a torchvision ResNet for multi-stream VI-ReID networks (AMINet, TMPA, PMCM):
the modality-specific stem (conv1, bn1, relu, maxpool) and a run of stages layer<first>..layer<last>,
optionally with AGW-style non-local blocks after the last blocks of a stage.
The ResNets themselves come from :func:`vibench.methods.layers.backbones.resnet`."""
from __future__ import annotations

from collections import OrderedDict

from torch import nn

from vibench.errors import VibenchError
from vibench.methods.layers.nonlocal_block import NonLocalBlock


def resnet_stem(net: nn.Module) -> nn.Sequential:
    """conv1, bn1, relu, maxpool of a torchvision ResNet (a modality-specific first block)."""
    return nn.Sequential(OrderedDict(conv1=net.conv1, bn1=net.bn1, relu=net.relu, maxpool=net.maxpool))


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
