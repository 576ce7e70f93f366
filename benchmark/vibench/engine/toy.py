"""A toy cross-modal dataset for engine tests: a few identities, a few small PNGs per modality.

Identity i has a fixed random colour pattern (a 4 x 2 grid of cells); visible images show it in
colour, infrared images as its luma with a per-identity brightness shift, both with per-image
noise. Small enough that a test trains on it in seconds; it is not a benchmark dataset (use
:func:`vibench.data.synth.ensure_synthetic` for that).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from vibench.data.records import DatasetIndex, ImageRecord


def make_toy_dataset(
    root: str | Path,
    *,
    train_ids: int = 8,
    test_ids: int = 4,
    per_modality: int = 3,
    size: tuple[int, int] = (32, 16),
    seed: int = 0,
    drop_infrared: tuple[int, ...] = (),
) -> DatasetIndex:
    """Write PNGs under `root` and return their DatasetIndex (name "sysu", split 0).

    Visible images use cams 1/2, infrared cams 3/6 (SYSU numbering). `drop_infrared` lists
    training pids that get no infrared image (an identity that lost a modality).
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    h, w = size
    train: list[ImageRecord] = []
    test: list[ImageRecord] = []
    for pid in range(1, train_ids + test_ids + 1):
        cells = rng.integers(0, 256, size=(4, 2, 3))
        pattern = np.kron(cells, np.ones((h // 4, w // 2, 1))).astype(np.float64)
        shift = rng.uniform(-30, 30)
        for modality, cams in (("visible", (1, 2)), ("infrared", (3, 6))):
            if modality == "infrared" and pid in drop_infrared:
                continue
            for k in range(per_modality):
                cam = cams[k % 2]
                img = pattern if modality == "visible" else np.repeat((pattern @ [0.299, 0.587, 0.114])[:, :, None] + shift, 3, 2)
                img = np.clip(img + rng.normal(0, 12, size=img.shape), 0, 255).astype(np.uint8)
                rel = f"cam{cam}/{pid:04d}/{k:04d}.png"
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(img).save(root / rel)
                rec = ImageRecord(rel, pid, cam, modality)
                (train if pid <= train_ids else test).append(rec)
    return DatasetIndex(name="sysu", root=root, splits=(0,), train_records={0: tuple(train)},
                        test_records={0: tuple(test)}, meta={"toy": True})
