"""SYSU-MM01 loader (docs/datasets.md#sysu-mm01-sysu-split-0) and the reader of the official ``rand_perm_cam.mat``.

Layout: ``cam1/``..``cam6/<pid:04d>/<n:04d>.jpg`` plus ``exp/{train,val,test}_id.txt`` (ids on
the first line, comma-separated). Training ids = train + val (395 on the real data); test records
= every image of the test ids in cams 1..6. Cams 1, 2, 4, 5 are visible (RGB), 3 and 6 infrared;
cam2 and cam3 share a room (indoor: cams 1, 2, 3).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vibench.data.layout import (
    Scan,
    camera_tree_records,
    empty_index,
    raise_if_problems,
    read_id_file,
    sort_records,
)
from vibench.data.records import DatasetIndex
from vibench.errors import VibenchError

NAME = "sysu"
CAMERAS: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
VISIBLE_CAMS: tuple[int, ...] = (1, 2, 4, 5)
INFRARED_CAMS: tuple[int, ...] = (3, 6)
INDOOR_CAMS: tuple[int, ...] = (1, 2, 3)
ID_FILES: tuple[str, ...] = ("exp/train_id.txt", "exp/val_id.txt", "exp/test_id.txt")
RAND_PERM = "exp/rand_perm_cam.mat"


def modality_of(cam: int) -> str:
    """SYSU camera -> modality: 3 and 6 are infrared, the others visible (official README)."""
    return "infrared" if cam in INFRARED_CAMS else "visible"


def scan_sysu(root: str | os.PathLike[str]) -> tuple[DatasetIndex, Scan]:
    """Read a SYSU-MM01 tree, collecting every problem; the index holds what could be read."""
    scan = Scan(Path(root).expanduser())
    if not scan.check_root():
        return empty_index(NAME, scan.root, (0,)), scan
    train_ids, val_ids, test_ids = (read_id_file(scan, rel) for rel in ID_FILES)
    for cam in CAMERAS:
        scan.require_dir(f"cam{cam}")
    training = set(train_ids or ()) | set(val_ids or ())
    tests = set(test_ids or ())
    overlap = sorted(training & tests)
    if overlap:
        scan.problem(scan.root / "exp/test_id.txt",
                     f"test id(s) {overlap[:10]} also listed as train/val ids (expected disjoint splits)")

    records = []
    for cam in CAMERAS:
        recs, _ = camera_tree_records(scan, "", (cam,), modality_of(cam), training | tests)
        records.extend(recs)
    seen = {r.pid for r in records}
    for label, ids, rel in (("train", train_ids, ID_FILES[0]), ("val", val_ids, ID_FILES[1]),
                            ("test", test_ids, ID_FILES[2])):
        absent = sorted(set(ids or ()) - seen)
        if absent:
            scan.problem(scan.root / rel, f"{len(absent)} {label} id(s) have no image in any camera "
                         f"(expected cam1..cam6/<pid:04d>/*.jpg), e.g. {absent[:10]}")

    train_records = sort_records(r for r in records if r.pid in training)
    test_records = sort_records(r for r in records if r.pid in tests)
    meta: dict[str, object] = {
        "train_ids": list(train_ids or []),
        "val_ids": list(val_ids or []),
        "test_ids": list(test_ids or []),
        "training_ids": sorted(training),
    }
    perm = scan.root / RAND_PERM
    if perm.is_file():
        meta["rand_perm_cam"] = str(perm)
        scan.index_files.append(perm)
    index = DatasetIndex(NAME, scan.root, (0,), {0: train_records}, {0: test_records}, meta)
    return index, scan


def load_sysu(root: str | os.PathLike[str]) -> DatasetIndex:
    """The SYSU-MM01 index of `root`; VibenchError listing every problem of a malformed tree."""
    index, scan = scan_sysu(root)
    raise_if_problems(scan, NAME)
    return index


def read_rand_perm_cam(path: str | os.PathLike[str]) -> dict[int, dict[int, np.ndarray]]:
    """Read the official ``rand_perm_cam.mat`` (docs/protocols.md#samplers-and-list-order, Sampler B).

    Returns ``{cam (1..6): {pid: rows}}`` where ``rows`` is an int64 array of shape
    (n_trials, n_images) (10 x n on the real file): row t is trial t's permutation of the 1-based
    image numbers of ``cam{cam}/{pid:04d}/``; number k means file ``{k:04d}.jpg``. Ids absent from
    a camera (empty cell entries) are left out. The MATLAB variable is a 6x1 cell whose cell c
    holds one entry per id, indexed by id - 1.
    """
    from scipy.io import loadmat  # lazy: scipy is only needed for this file

    path = Path(path)
    try:
        mat = loadmat(str(path))
    except FileNotFoundError:
        raise VibenchError(f"{path} does not exist (expected SYSU-MM01's exp/rand_perm_cam.mat)") from None
    except (ValueError, NotImplementedError, OSError, TypeError) as exc:
        raise VibenchError(f"{path} is not a readable MATLAB (v5) file ({exc}); "
                           "expected the official rand_perm_cam.mat") from None
    if "rand_perm_cam" not in mat:
        keys = sorted(k for k in mat if not k.startswith("__"))
        raise VibenchError(f"{path} has no variable 'rand_perm_cam' (found {keys})")
    cells = np.asarray(mat["rand_perm_cam"], dtype=object).reshape(-1)
    if cells.size != len(CAMERAS):
        raise VibenchError(f"{path}: rand_perm_cam has {cells.size} cells, expected 6 (one per camera)")
    out: dict[int, dict[int, np.ndarray]] = {}
    for cam_idx, cell in enumerate(cells, start=1):
        entries = np.asarray(cell, dtype=object).reshape(-1)
        per_id: dict[int, np.ndarray] = {}
        for id_idx, entry in enumerate(entries):
            rows = np.asarray(entry)
            if rows.size == 0:
                continue
            if rows.ndim == 1:
                rows = rows.reshape(1, -1)
            rows = rows.astype(np.int64)
            expected = np.arange(1, rows.shape[1] + 1)
            if not (np.sort(rows, axis=1) == expected).all():
                raise VibenchError(f"{path}: camera {cam_idx}, id {id_idx + 1}: rows are not "
                                   f"permutations of 1..{rows.shape[1]}")
            per_id[id_idx + 1] = rows
        out[cam_idx] = per_id
    return out
