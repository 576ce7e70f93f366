"""Datasets: the on-disk loaders (SYSU-MM01, RegDB, LLCM), the synthetic generator and the
training image cache. Everything downstream works on lists of :class:`ImageRecord`."""
from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Callable

from vibench.data.records import MODALITIES, DatasetIndex, ImageRecord, records_sha256
from vibench.errors import unknown_name

if TYPE_CHECKING:
    from vibench.data.layout import Scan

__all__ = ["DATASETS", "DatasetIndex", "ImageRecord", "MODALITIES", "load_dataset", "records_sha256", "scan_dataset"]

#: dataset name -> loader module (imported on use); each defines load_<name> and scan_<name>.
DATASETS: dict[str, str] = {
    "sysu": "vibench.data.sysu",
    "regdb": "vibench.data.regdb",
    "llcm": "vibench.data.llcm",
}


def _resolve(name: str, verb: str) -> Callable[..., object]:
    """`<verb>_<name>` of the dataset's module (verb: "load" or "scan")."""
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in DATASETS:
        raise unknown_name("dataset", str(name), DATASETS)
    return getattr(importlib.import_module(DATASETS[key]), f"{verb}_{key}")


def load_dataset(name: str, root: str | os.PathLike[str]) -> DatasetIndex:
    """Read the dataset tree `root` in `name`'s real layout (docs/datasets.md#layouts).

    Raises VibenchError for an unknown name (with a did-you-mean) or listing every problem of a
    malformed tree.
    """
    loader = _resolve(name, "load")
    return loader(root)  # type: ignore[return-value]


def scan_dataset(name: str, root: str | os.PathLike[str]) -> tuple[DatasetIndex, "Scan"]:
    """Like :func:`load_dataset` but never raises for a malformed tree: returns the partial index
    and the :class:`vibench.data.layout.Scan` holding every problem (used by `data check`)."""
    scanner = _resolve(name, "scan")
    return scanner(root)  # type: ignore[return-value]

