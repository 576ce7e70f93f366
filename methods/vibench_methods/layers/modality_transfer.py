"""Modality Feature Transfer (MFT) of TMPA (Sec. III-D, Eq. 9-11) on the conv blocks' own 1 x 1
convolutions.

Sec. III-D builds on the observation of ACmix: a k x k convolution is a sum of shifted 1 x 1
convolutions, and attention starts with 1 x 1 projections too, so one set of 1 x 1 outputs can feed
both aggregations. TMPA reuses the 1 x 1 convolutions *of the conv blocks* Conv_sh, Conv^V, Conv^I
(ResNet layer3 + layer4): their outputs are the projection matrices of the cross-attention and,
unchanged, the inputs of the rest of each conv block. No projection of its own is added.

Where the projections are taken (the "tap"): the first block of the conv block's last stage
(layer4[0]), the one block whose 1 x 1 outputs all have the output's spatial size (with last
stride 1) and whose shortcut projection already has the output width:

* Bottleneck (ResNet-50; projections before the ReLU that follows bn1): Q_sp^V = bn1(conv1(x_V)) of Conv^V, Q_sp^I = bn1(conv1(x_I)) of Conv^I,
  K_sh = bn1(conv1(x_sh)) of Conv_sh (d = 512), V_sh = downsample(x_sh) of Conv_sh (2048 channels,
  the block's shortcut);
* BasicBlock (ResNet-18 / micro; its conv1 is 3 x 3): the shortcut projection is the block's only
  1 x 1 convolution, so Q_sp^V = downsample(x_V), Q_sp^I = downsample(x_I), K_sh = V_sh =
  downsample(x_sh).

The tensors are captured from the blocks' own forward pass (forward hooks), so the attention reads
exactly what the convolution path computes and uses. Then

    F_CA^V = softmax(Q_sp^V K_sh^T / sqrt(d)) V_sh   (tokens: the h*w positions of one row)  Eq. 10
    F_sp^{V'} = F_CA^V + F_Conv^V, F_Conv^V = Conv^V(x_V) (the conv block's output map)      Eq. 11

and likewise for the infrared stream; F_Conv^sh = Conv_sh(x_sh).
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from vibench.errors import VibenchError


def tap_block(conv_block: nn.Sequential) -> nn.Module:
    """The first block of the last stage of a conv block (a Sequential of ResNet stages)."""
    last_stage = list(conv_block.children())[-1]
    first = next(iter(last_stage.children()), None)
    if first is None or getattr(first, "downsample", None) is None:
        raise VibenchError("TMPA's MFT taps the first block of the conv block's last stage, which needs a 1x1 shortcut projection (downsample)")
    return first


def query_projection(block: nn.Module) -> nn.Module:
    """The module whose output is the block's query/key projection: bn1 after a 1 x 1 conv1
    (Bottleneck), else the 1 x 1 shortcut projection (BasicBlock)."""
    conv1 = getattr(block, "conv1", None)
    if isinstance(conv1, nn.Conv2d) and conv1.kernel_size == (1, 1):
        return block.bn1
    return block.downsample


def value_projection(block: nn.Module) -> nn.Module:
    """The module whose output is the block's value projection: the 1 x 1 shortcut projection."""
    return block.downsample


def projection_convs(block: nn.Module) -> tuple[nn.Conv2d, nn.Conv2d]:
    """(query/key 1 x 1 conv, value 1 x 1 conv) of a tap block: the weights MFT reuses."""
    q = block.conv1 if query_projection(block) is getattr(block, "bn1", None) else block.downsample[0]
    return q, block.downsample[0]


@contextmanager
def capture_outputs(*modules: nn.Module) -> Iterator[list[torch.Tensor | None]]:
    """Record the output of each module during the `with` body (one slot per module, last call).
    The output is cloned: ResNet blocks apply their ReLU in place right after bn1, which would
    otherwise turn the recorded projection into its activation."""
    slots: list[torch.Tensor | None] = [None] * len(modules)
    handles = []
    for i, m in enumerate(modules):
        def hook(_m: nn.Module, _inp: object, out: torch.Tensor, i: int = i) -> None:
            slots[i] = out.clone()
        handles.append(m.register_forward_hook(hook))
    try:
        yield slots
    finally:
        for h in handles:
            h.remove()


def run_conv_block(conv_block: nn.Sequential, x: torch.Tensor, *, value: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(F_Conv, Q or K, V or None): the conv block's output map and its tap's projections."""
    tap = tap_block(conv_block)
    mods = [query_projection(tap)] + ([value_projection(tap)] if value else [])
    with capture_outputs(*mods) as got:
        out = conv_block(x)
    q = got[0]
    v = got[1] if value else None
    if q is None or (value and v is None):
        raise VibenchError("TMPA's MFT could not read the conv block's 1x1 projections (tap block not run)")
    return out, q, v


def cross_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Eq. 10 per row: softmax(Q K^T / sqrt(d)) V over the h*w positions of one sample.
    q, k: (B, d, h, w); v: (B, C, h, w) -> (B, C, h, w)."""
    b, d, h, w = q.shape
    if k.shape[0] != b or k.shape[1] != d or v.shape[0] != b or k.shape[2:] != v.shape[2:]:
        raise VibenchError(f"MFT cross-attention shapes do not fit: Q {tuple(q.shape)}, K {tuple(k.shape)}, V {tuple(v.shape)}")
    if (h, w) != tuple(v.shape[2:]):
        raise VibenchError(
            f"MFT needs the query map ({h}x{w}) and the value map {tuple(v.shape[2:])} at one size: "
            "the tap block must not stride (model.last_stride: 1)"
        )
    qt = q.flatten(2).transpose(1, 2)  # (B, hw, d)
    kt = k.flatten(2).transpose(1, 2)
    vt = v.flatten(2).transpose(1, 2)  # (B, hw, C)
    logits = qt @ kt.transpose(1, 2)
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # softmax in at least float32 under AMP
    attn = torch.softmax(logits / math.sqrt(d), dim=-1).to(vt.dtype)
    return (attn @ vt).transpose(1, 2).reshape(b, v.shape[1], h, w)


class ModalityFeatureTransfer(nn.Module):
    """MFT over three conv blocks (Eq. 9-11); it owns no parameters of its own."""

    def forward(
        self,
        conv_sh: nn.Sequential,
        x_sh: torch.Tensor,
        conv_vis: nn.Sequential | None = None,
        x_vis: torch.Tensor | None = None,
        conv_ir: nn.Sequential | None = None,
        x_ir: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """x_sh: the shared extractor's maps, rows aligned with Cat(x_vis, x_ir) (either may be None).
        Returns ``conv_sh`` (F_Conv^sh) and, per specific input, ``conv_*`` (F_Conv), ``ca_*``
        (F_CA) and ``sp_*_prime`` (Eq. 11), all maps."""
        s_sh, k, v = run_conv_block(conv_sh, x_sh, value=True)
        out = {"conv_sh": s_sh}
        row = 0
        for name, block, x in (("vis", conv_vis, x_vis), ("ir", conv_ir, x_ir)):
            if x is None:
                continue
            if block is None:
                raise VibenchError(f"MFT got {name} images but no {name} conv block")
            n = x.shape[0]
            if row + n > x_sh.shape[0]:
                raise VibenchError(f"MFT needs a shared row per specific row: {x_sh.shape[0]} shared rows, more specific rows")
            s, q, _ = run_conv_block(block, x, value=False)
            out[f"conv_{name}"] = s
            out[f"ca_{name}"] = cross_attention(q, k[row : row + n], v[row : row + n])
            out[f"sp_{name}_prime"] = out[f"ca_{name}"] + s  # Eq. 11
            row += n
        if row != x_sh.shape[0]:
            raise VibenchError(f"MFT needs row-aligned maps: {x_sh.shape[0]} shared rows, {row} specific rows")
        return out


__all__ = ["ModalityFeatureTransfer", "cross_attention", "capture_outputs", "projection_convs", "query_projection",
           "run_conv_block", "tap_block", "value_projection"]
