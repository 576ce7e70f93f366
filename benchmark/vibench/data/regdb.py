"""RegDB loader (docs/datasets.md#regdb-regdb-splits-110).

Layout: ``Visible/`` and ``Thermal/`` trees plus ``idx/{train,test}_{visible,thermal}_{1..10}.txt``
with lines ``<path relative to the root> <label>``. Split k uses the ``_k`` files for training and
testing (one model per split). pid = the label column (what evaluation uses); cam 1 =
visible, cam 2 = thermal (modality "infrared"). test(k) = test_visible_k + test_thermal_k.
"""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from vibench.data.layout import (
    DirListing,
    Scan,
    empty_index,
    raise_if_problems,
    read_index_file,
    sort_records,
)
from vibench.data.records import DatasetIndex, ImageRecord

NAME = "regdb"
SPLITS: tuple[int, ...] = tuple(range(1, 11))
#: index-file modality word -> (camera, record modality)
MODALITIES: dict[str, tuple[int, str]] = {"visible": (1, "visible"), "thermal": (2, "infrared")}


def index_file(part: str, modality: str, split: int) -> str:
    """Relative path of one RegDB index file, e.g. ``idx/train_visible_3.txt``."""
    return f"idx/{part}_{modality}_{split}.txt"


def _compare_labels(scan: Scan, part: str, split: int,
                    vis: list[tuple[str, int]], thr: list[tuple[str, int]]) -> None:
    """The visible and thermal files of one trial must list the same identities (docs/datasets.md#regdb-regdb-splits-110)."""
    v, t = Counter(lbl for _, lbl in vis), Counter(lbl for _, lbl in thr)
    only_v, only_t = sorted(set(v) - set(t)), sorted(set(t) - set(v))
    if only_v or only_t:
        scan.problem(
            scan.root / index_file(part, "thermal", split),
            f"labels disagree with {index_file(part, 'visible', split)}: "
            f"{len(only_v)} label(s) only in visible {only_v[:10]}, "
            f"{len(only_t)} only in thermal {only_t[:10]} (expected the same label set)",
        )
    elif v != t:
        uneven = sorted(lbl for lbl in v if v[lbl] != t[lbl])
        scan.warn(scan.root / index_file(part, "thermal", split),
                  f"{len(uneven)} label(s) have different image counts than in "
                  f"{index_file(part, 'visible', split)}, e.g. {uneven[:10]}")


def scan_regdb(root: str | os.PathLike[str]) -> tuple[DatasetIndex, Scan]:
    """Read a RegDB tree, collecting every problem; the index holds what could be read."""
    scan = Scan(Path(root).expanduser())
    if not scan.check_root():
        return empty_index(NAME, scan.root, SPLITS), scan
    for folder in ("Visible", "Thermal", "idx"):
        scan.require_dir(folder)
    listing = DirListing(scan.root)
    train: dict[int, tuple[ImageRecord, ...]] = {}
    test: dict[int, tuple[ImageRecord, ...]] = {}
    for split in SPLITS:
        parts: dict[str, list[ImageRecord]] = {}
        for part in ("train", "test"):
            lines = {m: read_index_file(scan, index_file(part, m, split), listing) for m in MODALITIES}
            if lines["visible"] is not None and lines["thermal"] is not None:
                _compare_labels(scan, part, split, lines["visible"], lines["thermal"])
            parts[part] = [
                ImageRecord(path, label, MODALITIES[m][0], MODALITIES[m][1])
                for m, entries in lines.items() for path, label in (entries or [])
            ]
        shared = sorted({r.path for r in parts["train"]} & {r.path for r in parts["test"]})
        if shared:
            scan.problem(scan.root / index_file("test", "visible", split),
                         f"{len(shared)} image(s) of split {split} are in both the train and the test "
                         f"files, e.g. {shared[:3]} (expected disjoint train/test images)")
        train[split] = sort_records(parts["train"])
        test[split] = sort_records(parts["test"])
    meta = {"index_files": [index_file(p, m, s) for s in SPLITS for p in ("train", "test") for m in MODALITIES]}
    return DatasetIndex(NAME, scan.root, SPLITS, train, test, meta), scan


def load_regdb(root: str | os.PathLike[str]) -> DatasetIndex:
    """The RegDB index of `root` (splits 1..10); VibenchError listing every problem."""
    index, scan = scan_regdb(root)
    raise_if_problems(scan, NAME)
    return index
