"""Checkpoints: atomic ``torch.save`` and ``torch.load(weights_only=True)``, plus the RNG
states (python, numpy, torch CPU and CUDA) needed for an exact resume.

Everything stored is weights-only loadable: tensors, and dicts/lists/tuples of str, int, float,
bool and None (numpy's generator state is converted to plain ints).
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vibench.errors import VibenchError
from vibench.io import atomic_path


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """torch.save `state` to `path` atomically (a crash leaves the old file or the new one)."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The dict saved by :func:`save_checkpoint` (weights_only=True), or a VibenchError."""
    path = Path(path)
    if not path.is_file():
        raise VibenchError(f"checkpoint {path} does not exist")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupted file, or not weights-only loadable
        raise VibenchError(f"cannot load checkpoint {path}: {exc}") from None
    if not isinstance(obj, dict):
        raise VibenchError(f"checkpoint {path} does not hold a dict")
    return obj


def get_rng_state() -> dict[str, Any]:
    """python, numpy (global) and torch (CPU and every CUDA device) RNG states."""
    py = random.getstate()
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`get_rng_state` returned."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    torch.set_rng_state(state["torch"].cpu() if isinstance(state["torch"], torch.Tensor) else state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
