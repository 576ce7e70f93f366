"""The features file read by `vibench eval --features` (and written as each cell's cache).

An ``.npz`` (numpy.savez / savez_compressed, no pickled objects) holding:

* ``paths``: (N,) unicode strings, image paths relative to the dataset root, '/'-separated,
  unique (e.g. ``cam3/0001/0001.jpg``, ``Thermal/12/T_female_back_t_00099_12.bmp``);
* ``features``: (N, D) float, one row per path: the default embedding ('feat');
* optionally ``features_<name>``: (N, D') further embeddings (e.g. ``features_pool``), exposed
  under ``<name>`` to methods' distance functions.

Images of a protocol's lists that are missing from ``paths`` are an error (listing them).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vibench.errors import VibenchError
from vibench.io import read_npz


@dataclass
class FeatureFile:
    """Embeddings by image path: `embeddings` name -> (N, D) array ('feat' = ``features``)."""

    path: Path
    paths: list[str]
    embeddings: dict[str, np.ndarray]

    def __post_init__(self) -> None:
        self._row = {p: i for i, p in enumerate(self.paths)}

    def select(self, paths: list[str], what: str = "images") -> dict[str, torch.Tensor]:
        """The rows of `paths`, in that order, as tensors; missing paths raise VibenchError."""
        missing = [p for p in paths if p not in self._row]
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise VibenchError(f"{self.path}: no features for {len(missing)} of the {len(paths)} listed {what}: {shown}")
        rows = np.fromiter((self._row[p] for p in paths), dtype=np.int64, count=len(paths))
        return {k: torch.from_numpy(np.ascontiguousarray(v[rows])) for k, v in self.embeddings.items()}


def load_features(path: str | Path) -> FeatureFile:
    """Read and validate a features file (see the module docstring)."""
    path = Path(path)
    data = read_npz(path, "features")
    for key in ("paths", "features"):
        if key not in data:
            raise VibenchError(f"{path}: missing array {key!r}; expected 'paths' (N str) and 'features' (N x D float)")
    paths = data["paths"]
    if paths.ndim != 1 or paths.dtype.kind not in "US":
        raise VibenchError(f"{path}: 'paths' must be a 1-D array of strings, got dtype {paths.dtype} shape {paths.shape}")
    plist = [str(p) for p in paths.tolist()]
    seen: set[str] = set()
    for p in plist:
        if p in seen:
            raise VibenchError(f"{path}: path {p!r} is listed twice in 'paths'")
        if p.startswith("/") or "\\" in p:
            raise VibenchError(f"{path}: path {p!r} must be relative to the dataset root and '/'-separated")
        seen.add(p)
    emb: dict[str, np.ndarray] = {}
    for key, arr in data.items():
        if key != "features" and not key.startswith("features_"):
            continue
        name = "feat" if key == "features" else key[len("features_"):]
        if arr.ndim != 2 or arr.shape[0] != len(plist):
            raise VibenchError(f"{path}: {key!r} has shape {arr.shape}, expected ({len(plist)}, D) (one row per path)")
        if arr.dtype.kind not in "fiu":
            raise VibenchError(f"{path}: {key!r} must be numeric, got dtype {arr.dtype}")
        arr = arr.astype(np.float32) if arr.dtype.kind != "f" or arr.dtype == np.float16 else arr
        if not np.isfinite(arr).all():
            bad = np.argwhere(~np.isfinite(arr))[0]
            raise VibenchError(f"{path}: {key!r} contains NaN or inf (row {bad[0]}, path {plist[bad[0]]!r})")
        emb[name] = arr
    return FeatureFile(path=path, paths=plist, embeddings=emb)
