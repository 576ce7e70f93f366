"""Backbones from torchvision (ResNets) and timm (ViTs), never hand-written.

* :func:`resnet` — torchvision ResNet-18/34/50/101 with an optional last stride of 1 (layer4's
  first block strides 1 instead of 2, as AGW/BoT do; the feature map stays at 1/16).
* :func:`vit` — timm ``VisionTransformer`` with an overlapping patch embedding (kernel = patch,
  stride < patch: PMT's 16/12 at 256x128 gives 21 x 10 = 210 tokens + CLS).

Initialisation follows the config's ``model.init`` / ``model.weights``
(:class:`vibench.engine.pretrained.InitSpec`): ``imagenet`` loads the known ImageNet file of the
backbone (torch hub cache, fetched once, sha256-checked), ``file`` a local state dict, ``random``
nothing. Files are read with ``torch.load(weights_only=True)``. :func:`init_info` describes the
initialisation (kind, name, file, sha256) and the engine stores that with the results.
"""
from __future__ import annotations

import functools
from collections import OrderedDict
from pathlib import Path
from typing import Any, Mapping

import torch
import torchvision
from timm.layers import PatchEmbed, resample_abs_pos_embed
from timm.models.resnet import BasicBlock, ResNet
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from vibench.engine.pretrained import InitSpec, resolve_init
from vibench.errors import VibenchError, unknown_name

RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet_micro")

#: CPU-scale ResNets built with timm's ResNet class (not published sizes): BasicBlock stages
MICRO_RESNETS: dict[str, dict[str, Any]] = {
    "resnet_micro": {"layers": (1, 1, 1, 1), "channels": (32, 64, 128, 256), "stem_width": 32},
}

#: named ViT sizes: embed_dim, depth, heads, mlp_ratio
VIT_SIZES: dict[str, dict[str, Any]] = {
    "vit_base": {"embed_dim": 768, "depth": 12, "num_heads": 12, "mlp_ratio": 4.0},
    "vit_small": {"embed_dim": 384, "depth": 12, "num_heads": 6, "mlp_ratio": 4.0},
    "vit_tiny": {"embed_dim": 192, "depth": 12, "num_heads": 3, "mlp_ratio": 4.0},
    # a few-block ViT for the CPU `tiny` configs (not a published size)
    "vit_micro": {"embed_dim": 96, "depth": 3, "num_heads": 3, "mlp_ratio": 2.0},
}


#: what the builders accept as `weights`: a config's InitSpec, a local file path, or None (random)
Weights = InitSpec | str | Path | None


def init_info(weights: Weights, arch: str = "") -> dict[str, Any]:
    """How a backbone was initialised (:func:`vibench.engine.pretrained.resolve_init`):
    {"kind": "random", ...}, {"kind": "file", "file", "sha256", ...} or {"kind": "imagenet",
    "name", "file", "sha256", ...}. A bare path counts as ``file``, None as ``random``. On the
    meta device nothing is loaded: the record says so and names no file."""
    spec = _as_spec(weights, arch)
    if torch.get_default_device().type == "meta" and spec.kind != "random":
        return {"kind": spec.kind, "arch": spec.arch, "loaded": False, "why": "built on the meta device"}
    return resolve_init(spec)


def _as_spec(weights: Weights, arch: str) -> InitSpec:
    if isinstance(weights, InitSpec):
        return weights
    return InitSpec("file", arch, str(weights)) if weights else InitSpec("random", arch)


def _weights_file(weights: Weights, arch: str) -> Path | None:
    """The verified file to load for `weights` (None for random initialisation, and on the meta
    device, where a model is built only to be counted and holds no values to load into)."""
    if torch.get_default_device().type == "meta":
        return None
    record = init_info(weights, arch)
    return Path(record["file"]) if "file" in record else None


@functools.lru_cache(maxsize=1)
def _read_cached(path: str, size: int, mtime_ns: int) -> dict[str, torch.Tensor]:
    return _read(Path(path))


def read_state_dict(weights: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a local file (weights_only); unwraps {"state_dict": ...} / {"model": ...}.
    The last file read is kept (a method building several copies of a backbone reads it once);
    callers get their own dict over the shared, read-only-by-convention tensors."""
    path = Path(weights).expanduser()
    if not path.is_file():
        raise VibenchError(f"backbone weights file {path} does not exist (model.weights must be a local file path)")
    st = path.stat()
    return dict(_read_cached(str(path.resolve()), st.st_size, st.st_mtime_ns))


def _read(path: Path) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise VibenchError(f"cannot load backbone weights {path}: {exc}") from None
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping):
        raise VibenchError(f"backbone weights {path} hold no state dict")
    return {k.removeprefix("module."): v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def _load_into(module: nn.Module, state: Mapping[str, torch.Tensor], ignore: tuple[str, ...], source: str) -> None:
    state = {k: v for k, v in state.items() if not k.startswith(ignore)}
    result = module.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith(ignore)]
    if missing or result.unexpected_keys:
        raise VibenchError(
            f"backbone weights {source} do not match the architecture: missing {missing[:5]}, "
            f"unexpected {list(result.unexpected_keys)[:5]}"
        )


def resnet(name: str = "resnet50", *, last_stride: int = 1, weights: Weights = None) -> nn.Module:
    """A torchvision ResNet (fc kept but unused) with layer4's stride set to `last_stride`,
    initialised per `weights` (an InitSpec from the config, a local file, or None = random)."""
    if name not in RESNETS:
        raise unknown_name("backbone", name, RESNETS)
    if last_stride not in (1, 2):
        raise VibenchError(f"last_stride must be 1 or 2, got {last_stride}")
    if name in MICRO_RESNETS:
        spec = MICRO_RESNETS[name]
        net = ResNet(BasicBlock, list(spec["layers"]), num_classes=0, channels=spec["channels"], stem_width=spec["stem_width"])
    else:
        net = getattr(torchvision.models, name)(weights=None)
    path = _weights_file(weights, name)
    if path is not None:
        _load_into(net, read_state_dict(path), ("fc.",), str(path))
    if last_stride == 1:
        block = net.layer4[0]
        # Bottleneck strides in conv2, BasicBlock in conv1 (torchvision and timm layouts)
        conv = block.conv2 if hasattr(block, "conv3") else block.conv1
        conv.stride = (1, 1)
        if block.downsample is not None:
            block.downsample[0].stride = (1, 1)
    return net


def resnet_stem(net: nn.Module) -> nn.Sequential:
    """conv1, bn1, relu, maxpool of a torchvision or timm ResNet, as one module."""
    act = net.relu if hasattr(net, "relu") else net.act1
    return nn.Sequential(OrderedDict(conv1=net.conv1, bn1=net.bn1, relu=act, maxpool=net.maxpool))


def resnet_dim(net: nn.Module) -> int:
    """Channels of layer4's output."""
    return int(net.fc.in_features) if isinstance(getattr(net, "fc", None), nn.Linear) else int(net.num_features)


class OverlapPatchEmbed(PatchEmbed):
    """timm's PatchEmbed with a stride smaller than the patch (overlapping patches, PMT/TransReID):
    grid = ((H - p) // s + 1, (W - p) // s + 1)."""

    def __init__(self, img_size: Any = 224, patch_size: int = 16, stride: int = 12, in_chans: int = 3,
                 embed_dim: int = 768, **kwargs: Any) -> None:
        kwargs.pop("dynamic_img_pad", None)
        super().__init__(img_size=img_size, patch_size=patch_size, in_chans=in_chans, embed_dim=embed_dim, **kwargs)
        p = self.patch_size
        self.stride = (int(stride), int(stride))
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=p, stride=self.stride, bias=kwargs.get("bias", True))
        h, w = self.img_size
        self.grid_size = ((h - p[0]) // self.stride[0] + 1, (w - p[1]) // self.stride[1] + 1)
        self.num_patches = self.grid_size[0] * self.grid_size[1]

    def feat_ratio(self, as_scalar: bool = True) -> Any:
        return self.stride[0] if as_scalar else self.stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != tuple(self.img_size):
            raise VibenchError(f"ViT input must be {tuple(self.img_size)} (H, W), got {tuple(x.shape[-2:])}")
        x = self.proj(x).flatten(2).transpose(1, 2)  # (B, N, D)
        return self.norm(x)


def vit(
    size: str = "vit_base",
    *,
    img_size: tuple[int, int] = (256, 128),
    patch_size: int = 16,
    stride: int = 12,
    drop_rate: float = 0.0,
    attn_drop_rate: float = 0.0,
    drop_path_rate: float = 0.1,
    weights: Weights = None,
    **overrides: Any,
) -> VisionTransformer:
    """A timm VisionTransformer without head (num_classes=0) and with overlapping patches.

    `drop_rate` is the dropout after the position embedding and inside attention/MLP outputs
    (TransReID/PMT's ``drop_rate``); `drop_path_rate` the stochastic depth of the last block.

    With weights (`weights`: an InitSpec from the config or a local timm/jx ViT checkpoint at any
    resolution), the classifier head is dropped and the position embedding is resampled to the new
    grid bilinearly, without antialiasing, as PMT/TransReID's ``resize_pos_embed`` does
    (``F.interpolate(mode="bilinear")``, 14x14 -> 21x10 at 256x128 with stride 12).
    """
    if size not in VIT_SIZES:
        raise unknown_name("ViT size", size, VIT_SIZES)
    arch = {**VIT_SIZES[size], **overrides}
    net = VisionTransformer(
        img_size=tuple(img_size), patch_size=patch_size, num_classes=0, global_pool="token",
        pos_drop_rate=drop_rate, proj_drop_rate=drop_rate, attn_drop_rate=attn_drop_rate,
        drop_path_rate=drop_path_rate,
        embed_layer=functools.partial(OverlapPatchEmbed, stride=stride), **arch,
    )
    path = _weights_file(weights, size)
    if path is not None:
        state = read_state_dict(path)
        pe = state.get("pos_embed")
        if pe is not None and pe.shape != net.pos_embed.shape:
            old = int(round((pe.shape[1] - 1) ** 0.5))
            state["pos_embed"] = resample_abs_pos_embed(
                pe, new_size=list(net.patch_embed.grid_size), old_size=[old, old], num_prefix_tokens=1,
                interpolation="bilinear", antialias=False,
            )
        _load_into(net, state, ("head.", "fc_norm.", "pre_logits."), str(path))
    return net
