"""Training augmentations as small composable parts, built from config lists.

Every part maps an (H, W, 3) uint8 array and a ``numpy.random.Generator`` to a new (H, W, 3)
uint8 array, so the pipeline runs on the decoded image cache and stays deterministic: the engine
gives each image of each batch its own generator seeded from (seed, stage, epoch, batch, slot),
whatever the number of loader workers. Conversion to float and ImageNet normalisation happen once
per batch (:func:`to_tensor_batch`), on the training device.

Config form (one list per modality, docs/training.md)::

    augment:
      visible:
        - {op: pad_crop, pad: 10}
        - {op: hflip, p: 0.5}
        - {op: channel_exchange, gray: 2, epochs: [0, 6]}   # optional epoch window [start, stop)
      infrared: [...]
      visible_extra_view: [...]   # optional: a second view of every sampled visible image

An ``<modality>_extra_view`` list is a complete, independent pipeline (its own crop, flip, ...) run
on the same sampled images as the base list; the engine stacks the views view-major, so a batch of
B visible samples holds 2B visible rows, rows i and B + i being two views of one image, with the
labels and record indices repeated (CAJ's loader: a colour view and a channel-exchanged view of
each visible image, both trained on) [CAJ ICCV'21, ChannelExchange data loader].

Parts (paper sources in brackets):
* ``pad_crop(pad, fill)``: zero-pad `pad` pixels then crop a random H x W window [AGW train.py].
* ``hflip(p)``: horizontal flip.
* ``random_erasing(p, area, aspect, fill)``: Zhong et al. random erasing; fill "mean" = the
  ImageNet mean colour (0 after normalisation, as PMT), "random" or an RGB list.
* ``channel_exchange(gray)``: CAJ's random channel exchange: k ~ U{0..gray}; k < 3 copies channel
  k into all three channels, otherwise grayscale [CAJ ICCV'21, ChannelExchange].
* ``channel_adap_gray(p)``: CAJ's channel-adaptive gray: with probability p, one of
  {R, G, B, gray} (uniform) replaces the image [CAJ, ChannelAdapGray].
* ``grayscale(p)``: ITU-R 601 luma in all three channels (PMT's grayscale-visible stream).
* ``color_jitter(brightness, contrast, p)``: factors ~ U[1-b, 1+b], U[1-c, 1+c]; brightness then
  contrast (blend with the mean luma) [PMT IR stream].
* ``gaussian_blur(kernel, sigma, p)``: Gaussian kernel with sigma ~ U[sigma], reflect padding.
* ``random_choice(ops, p)``: apply one of `ops`, chosen uniformly [PMT IR: jitter or blur].
* ``channel_random_erasing(p, area, aspect, value)``: CAJ's ChannelRandomErasing (the "random
  channel erasing" PMCM cites): random erasing whose box is filled, channel by channel, with the
  constant `value[c]` of the *normalised* tensor (CAJ applies it after Normalize; default its
  (0.4914, 0.4822, 0.4465)), stored here as the uint8 pixel that normalises to it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from vibench.errors import VibenchError, unknown_name

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float64)

Op = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _check_image(img: np.ndarray) -> None:
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise VibenchError(f"augmentations take (H, W, 3) uint8 arrays, got {img.dtype} {img.shape}")


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _prob(p: float, name: str) -> float:
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise VibenchError(f"augmentation {name}: p must be in [0, 1], got {p}")
    return p


def _luma(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float64) @ LUMA


class PadCrop:
    """Pad by `pad` pixels (constant `fill`) and crop a random window of the original size."""

    def __init__(self, pad: int = 10, fill: int = 0) -> None:
        if int(pad) < 0:
            raise VibenchError(f"augmentation pad_crop: pad must be >= 0, got {pad}")
        self.pad, self.fill = int(pad), int(fill)

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.pad == 0:
            return img
        h, w, _ = img.shape
        padded = np.pad(img, ((self.pad, self.pad), (self.pad, self.pad), (0, 0)), constant_values=self.fill)
        top = int(rng.integers(0, 2 * self.pad + 1))
        left = int(rng.integers(0, 2 * self.pad + 1))
        return padded[top : top + h, left : left + w].copy()


class HFlip:
    def __init__(self, p: float = 0.5) -> None:
        self.p = _prob(p, "hflip")

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return img[:, ::-1].copy() if rng.random() < self.p else img


class RandomErasing:
    """Random erasing (Zhong et al., AAAI'20): a random rectangle of area fraction in `area` and
    aspect ratio in `aspect` (uniform in [r, 1/r] when one value is given) is filled."""

    def __init__(
        self,
        p: float = 0.5,
        area: Sequence[float] = (0.02, 0.4),
        aspect: float | Sequence[float] = 0.3,
        fill: str | Sequence[int] = "mean",
        attempts: int = 100,
    ) -> None:
        self.p = _prob(p, "random_erasing")
        self.area = (float(area[0]), float(area[1]))
        if isinstance(aspect, (int, float)):
            aspect = (float(aspect), 1.0 / float(aspect))
        self.aspect = (float(aspect[0]), float(aspect[1]))
        if isinstance(fill, str):
            if fill not in ("mean", "random"):
                raise VibenchError(f"augmentation random_erasing: fill must be 'mean', 'random' or [r, g, b], got {fill!r}")
            self.fill: str | np.ndarray = fill
        else:
            self.fill = np.asarray(fill, dtype=np.uint8).reshape(3)
        self.attempts = int(attempts)

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if rng.random() >= self.p:
            return img
        h, w, _ = img.shape
        for _ in range(self.attempts):
            target = rng.uniform(*self.area) * h * w
            ratio = rng.uniform(*self.aspect)
            eh = int(round(np.sqrt(target * ratio)))
            ew = int(round(np.sqrt(target / ratio)))
            if 0 < eh < h and 0 < ew < w:
                y = int(rng.integers(0, h - eh + 1))
                x = int(rng.integers(0, w - ew + 1))
                out = img.copy()
                if isinstance(self.fill, str) and self.fill == "mean":
                    out[y : y + eh, x : x + ew] = np.rint(np.array(IMAGENET_MEAN) * 255).astype(np.uint8)
                elif isinstance(self.fill, str):
                    out[y : y + eh, x : x + ew] = rng.integers(0, 256, size=(eh, ew, 3), dtype=np.uint8)
                else:
                    out[y : y + eh, x : x + ew] = self.fill
                return out
        return img


def _single_channel(img: np.ndarray, k: int) -> np.ndarray:
    """k in 0..2: channel k copied into all three; k == 3: grayscale."""
    if k < 3:
        return np.repeat(img[:, :, k : k + 1], 3, axis=2)
    return np.repeat(_to_uint8(_luma(img))[:, :, None], 3, axis=2)


class ChannelExchange:
    def __init__(self, gray: int = 2) -> None:
        if int(gray) < 0:
            raise VibenchError(f"augmentation channel_exchange: gray must be >= 0, got {gray}")
        self.gray = int(gray)

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        k = int(rng.integers(0, self.gray + 1))
        return _single_channel(img, min(k, 3))


class ChannelAdapGray:
    def __init__(self, p: float = 0.5) -> None:
        self.p = _prob(p, "channel_adap_gray")

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if rng.random() >= self.p:
            return img
        return _single_channel(img, int(rng.integers(0, 4)))


class Grayscale:
    def __init__(self, p: float = 1.0) -> None:
        self.p = _prob(p, "grayscale")

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.p < 1.0 and rng.random() >= self.p:
            return img
        return _single_channel(img, 3)


class ColorJitter:
    def __init__(self, brightness: float = 0.3, contrast: float = 0.3, p: float = 1.0) -> None:
        self.b, self.c = float(brightness), float(contrast)
        if self.b < 0 or self.c < 0:
            raise VibenchError("augmentation color_jitter: brightness and contrast must be >= 0")
        self.p = _prob(p, "color_jitter")

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.p < 1.0 and rng.random() >= self.p:
            return img
        x = img.astype(np.float64)
        if self.b > 0:
            x = np.clip(x * rng.uniform(max(0.0, 1 - self.b), 1 + self.b), 0, 255)
        if self.c > 0:
            f = rng.uniform(max(0.0, 1 - self.c), 1 + self.c)
            mean = float((x @ LUMA).mean())
            x = np.clip(f * x + (1 - f) * mean, 0, 255)
        return _to_uint8(x)


def gaussian_kernel1d(kernel: int, sigma: float) -> np.ndarray:
    half = (kernel - 1) / 2.0
    x = np.arange(kernel, dtype=np.float64) - half
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


class GaussianBlur:
    def __init__(self, kernel: int = 21, sigma: float | Sequence[float] = (0.1, 3.0), p: float = 1.0) -> None:
        if int(kernel) < 1 or int(kernel) % 2 == 0:
            raise VibenchError(f"augmentation gaussian_blur: kernel must be odd and >= 1, got {kernel}")
        self.kernel = int(kernel)
        self.sigma = (float(sigma), float(sigma)) if isinstance(sigma, (int, float)) else (float(sigma[0]), float(sigma[1]))
        if self.sigma[0] <= 0:
            raise VibenchError("augmentation gaussian_blur: sigma must be > 0")
        self.p = _prob(p, "gaussian_blur")

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.p < 1.0 and rng.random() >= self.p:
            return img
        k = gaussian_kernel1d(self.kernel, rng.uniform(*self.sigma))
        r = self.kernel // 2
        x = img.astype(np.float64)
        # separable convolution with reflect padding (torchvision's GaussianBlur convention)
        x = np.pad(x, ((r, r), (0, 0), (0, 0)), mode="reflect")
        x = np.lib.stride_tricks.sliding_window_view(x, self.kernel, axis=0) @ k
        x = np.pad(x, ((0, 0), (r, r), (0, 0)), mode="reflect")
        x = np.lib.stride_tricks.sliding_window_view(x, self.kernel, axis=1) @ k
        return _to_uint8(x)


class RandomChoice:
    def __init__(self, ops: Sequence[Op], p: float = 1.0) -> None:
        if not ops:
            raise VibenchError("augmentation random_choice needs a non-empty 'ops' list")
        self.ops = list(ops)
        self.p = _prob(p, "random_choice")

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.p < 1.0 and rng.random() >= self.p:
            return img
        return self.ops[int(rng.integers(0, len(self.ops)))](img, rng)


CAJ_ERASE_VALUE = (0.4914, 0.4822, 0.4465)


def channel_random_erasing(
    p: float = 0.5,
    area: Sequence[float] = (0.02, 0.4),
    aspect: float | Sequence[float] = 0.3,
    value: Sequence[float] = CAJ_ERASE_VALUE,
) -> Op:
    """CAJ's ChannelRandomErasing [CAJ ICCV'21, ChannelAug.py]: Zhong et al.'s box (area fraction
    U(area), aspect U(r, 1/r), up to 100 tries), each channel c filled with ``value[c]`` in the
    normalised space. The pipeline runs before normalisation, so the fill is the uint8 pixel
    round(255 (mean_c + value_c std_c)) (ImageNet mean/std of :func:`to_tensor_batch`); after
    normalisation the box holds value_c to within half a grey level (0.5 / (255 std_c))."""
    p = _prob(p, "channel_random_erasing")
    vals = [float(v) for v in (value if isinstance(value, (list, tuple)) else [value] * 3)]
    if len(vals) != 3:
        raise VibenchError(f"augmentation channel_random_erasing: value must be one number or 3 per-channel numbers, got {value!r}")
    pixel = [255.0 * (m + v * s) for v, m, s in zip(vals, IMAGENET_MEAN, IMAGENET_STD)]
    if not all(0.0 <= x <= 255.0 for x in pixel):
        raise VibenchError(f"augmentation channel_random_erasing: value {vals} normalises outside the 0-255 pixel range")
    return RandomErasing(p=p, area=area, aspect=aspect, fill=[int(round(x)) for x in pixel])


OPS: dict[str, Callable[..., Op]] = {
    "pad_crop": PadCrop,
    "hflip": HFlip,
    "random_erasing": RandomErasing,
    "channel_exchange": ChannelExchange,
    "channel_adap_gray": ChannelAdapGray,
    "grayscale": Grayscale,
    "color_jitter": ColorJitter,
    "gaussian_blur": GaussianBlur,
    "random_choice": RandomChoice,
    "channel_random_erasing": channel_random_erasing,
}


@dataclass
class _Step:
    op: Op
    epochs: tuple[int, int] | None = None  # [start, stop) window within the stage


@dataclass
class Pipeline:
    """A list of parts applied in order; parts with an epoch window apply only inside it."""

    steps: list[_Step] = field(default_factory=list)

    def __call__(self, img: np.ndarray, rng: np.random.Generator, epoch: int = 0) -> np.ndarray:
        _check_image(img)
        for step in self.steps:
            if step.epochs is not None and not (step.epochs[0] <= epoch < step.epochs[1]):
                continue
            img = step.op(img, rng)
        return img


def build_op(spec: Mapping[str, Any]) -> tuple[Op, tuple[int, int] | None]:
    """One part from ``{op: name, ...params, epochs: [start, stop]}``."""
    if not isinstance(spec, Mapping) or "op" not in spec:
        raise VibenchError(f"an augmentation must be a mapping with an 'op' key, got {spec!r}")
    params = {k: v for k, v in spec.items() if k not in ("op", "epochs")}
    name = str(spec["op"])
    if name not in OPS:
        raise unknown_name("augmentation", name, OPS)
    if name == "random_choice":
        params["ops"] = [build_op(s)[0] for s in params.get("ops") or []]
    try:
        op = OPS[name](**params)
    except TypeError as exc:
        raise VibenchError(f"augmentation {name}: bad parameters {params}: {exc}") from None
    window = spec.get("epochs")
    if window is not None:
        if not (isinstance(window, (list, tuple)) and len(window) == 2):
            raise VibenchError(f"augmentation {name}: epochs must be [start, stop], got {window!r}")
        window = (int(window[0]), int(window[1]))
    return op, window


def build_pipeline(specs: Sequence[Mapping[str, Any]] | None) -> Pipeline:
    """A :class:`Pipeline` from a config list (None or [] = identity)."""
    if specs is None:
        return Pipeline([])
    if not isinstance(specs, (list, tuple)):
        raise VibenchError(f"an augmentation pipeline must be a list, got {type(specs).__name__}")
    return Pipeline([_Step(*build_op(s)) for s in specs])


VIEW_KEYS = {"visible": ("visible", "visible_extra_view"), "infrared": ("infrared", "infrared_extra_view")}


def build_views(augment: Mapping[str, Any] | None, modality: str) -> list[Pipeline]:
    """The pipelines of one modality's views: the base view, then the extra view if configured."""
    base, extra = VIEW_KEYS[modality]
    augment = augment or {}
    views = [build_pipeline(augment.get(base))]
    if augment.get(extra):
        views.append(build_pipeline(augment[extra]))
    return views


def to_tensor_batch(
    images: np.ndarray | torch.Tensor,
    device: torch.device | str = "cpu",
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    channels_last: bool = False,
) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32, scaled to [0, 1] and normalised, on `device`."""
    t = torch.as_tensor(images)
    if t.dtype != torch.uint8 or t.ndim != 4 or t.shape[-1] != 3:
        raise VibenchError(f"expected (N, H, W, 3) uint8 images, got {t.dtype} {tuple(t.shape)}")
    t = t.to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
    m = torch.tensor(mean, device=t.device, dtype=t.dtype).view(1, 3, 1, 1)
    s = torch.tensor(std, device=t.device, dtype=t.dtype).view(1, 3, 1, 1)
    t = (t - m) / s
    if channels_last:
        return t.contiguous(memory_format=torch.channels_last)
    return t.contiguous()
