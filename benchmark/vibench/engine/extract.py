"""Test-time feature extraction with the reference conventions (docs/metrics.md#test-time-conventions).

Images are resized once to ``test.size`` (PIL LANCZOS, like AGW's ``TestData``), normalised with
the ImageNet mean/std and passed through :meth:`Method.embed` one modality at a time, in batches
of ``test.batch_size``. ``test.flip`` selects the flip test-time augmentation:

* ``none`` (AGW, DDAG, MPANet, SAAI, PMT): the embedding as returned;
* ``mean`` (CAJ ``testa.py``): (f(x) + f(flip x)) / 2, then L2-normalised again;
* ``sum`` (DEEN): l2norm(f(x)) + l2norm(f(flip x)), not re-normalised.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from vibench.data.records import ImageRecord
from vibench.engine.api import Method
from vibench.engine.augment import to_tensor_batch
from vibench.engine.images import load_images
from vibench.engine.sections import input_settings
from vibench.errors import VibenchError

FLIP_MODES = ("none", "mean", "sum")


def resolve_test_settings(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The resolved ``test`` section: batch_size, flip, and from ``input`` (the one image size
    training and testing share) size, mean, std."""
    test = dict(cfg.get("test") or {})
    inp = input_settings(cfg)
    flip = str(test.get("flip", "none"))
    if flip not in FLIP_MODES:
        raise VibenchError(f"config test.flip must be one of {FLIP_MODES}, got {flip!r}")
    bs = int(test.get("batch_size", 64))
    if bs < 1:
        raise VibenchError(f"config test.batch_size must be >= 1, got {bs}")
    return {
        "size": inp.size, "batch_size": bs, "flip": flip, "mean": inp.mean, "std": inp.std,
    }


def combine_flip(f: torch.Tensor, f_flip: torch.Tensor, mode: str) -> torch.Tensor:
    """Merge the embeddings of an image and of its mirror image under flip mode `mode`."""
    if mode == "mean":
        return F.normalize((f + f_flip) / 2, dim=1)
    if mode == "sum":
        return F.normalize(f, dim=1) + F.normalize(f_flip, dim=1)
    if mode == "none":
        return f
    raise VibenchError(f"unknown flip mode {mode!r}; use one of {FLIP_MODES}")


@torch.inference_mode()
def extract_features(
    method: Method,
    model: nn.Module,
    records: Sequence[ImageRecord],
    root: str | Path,
    cfg: Mapping[str, Any] | None = None,
    device: str | torch.device = "cpu",
    *,
    progress: bool = False,
) -> dict[str, torch.Tensor]:
    """Named embeddings (N, D) float32 on the CPU, row i for records[i].

    `cfg` defaults to ``method.cfg``. The model is put in eval mode.
    """
    cfg = method.cfg if cfg is None else cfg
    st = resolve_test_settings(cfg)
    dev = torch.device(device) if not isinstance(device, torch.device) else device
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise VibenchError("device 'cuda' requested but CUDA is not available")
    model.eval()
    channels_last = dev.type == "cuda" and bool(cfg.get("channels_last", True))
    amp = dev.type == "cuda" and bool(cfg.get("amp", True))
    images = load_images(records, root, st["size"])
    mods = np.array([r.modality for r in records])
    out: dict[str, torch.Tensor] = {}
    chunks = [(m, np.flatnonzero(mods == m)) for m in ("visible", "infrared")]
    unknown = sorted(set(mods.tolist()) - {"visible", "infrared"})
    if unknown:
        raise VibenchError(f"records with unknown modality {unknown}")
    bar = None
    if progress:
        bar = tqdm(total=len(records), desc="extract", leave=False, dynamic_ncols=True)
    for modality, idx in chunks:
        for s in range(0, len(idx), st["batch_size"]):
            sel = idx[s : s + st["batch_size"]]
            x = to_tensor_batch(images[sel], dev, st["mean"], st["std"], channels_last)
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp):
                emb = method.embed(model, x, modality)
                if st["flip"] != "none":
                    emb_f = method.embed(model, torch.flip(x, dims=[3]), modality)
            for name, f in emb.items():
                f = f.float()
                if st["flip"] != "none":
                    f = combine_flip(f, emb_f[name].float(), st["flip"])
                if name not in out:
                    out[name] = torch.empty((len(records), f.shape[1]), dtype=torch.float32)
                out[name][torch.as_tensor(sel)] = f.cpu()
            if bar is not None:
                bar.update(len(sel))
    if bar is not None:
        bar.close()
    if "feat" not in out and len(records):
        raise VibenchError(f"{method.name}.embed returned no 'feat' embedding (got {sorted(out)})")
    return out
