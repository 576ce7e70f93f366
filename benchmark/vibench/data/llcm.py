"""LLCM loader (docs/datasets.md#llcm-llcm-split-0).

Layout: ``idx/train_vis.txt`` and ``idx/train_nir.txt`` (lines ``<path> <label>``, pid = label,
camera = the ``camK`` folder of the path when it has one, else the ``c<NN>`` token of the real
LLCM file names ``<pid>_c<NN>_s<..>_f<..>_<vis|nir>.jpg``, else 0 = unknown), ``idx/test_id.txt``
(a SYSU-style id line), and test images under ``test_vis/camK/<pid:04d>/`` (K = 1..9) and
``test_nir/camK/<pid:04d>/`` (K = 1, 2, 4..9: DEEN's list has no NIR cam3, so a ``test_nir/cam3``
folder is ignored as the reference ignores it). Camera numbers are shared across modalities
(docs/metrics.md#exclusion-rules). NIR is modality "infrared". Single split 0.
"""
from __future__ import annotations

import os
from pathlib import Path

from vibench.data.layout import (
    DirListing,
    Scan,
    cam_from_filename,
    cam_from_path,
    camera_tree_records,
    empty_index,
    raise_if_problems,
    read_id_file,
    read_index_file,
    sort_records,
)
from vibench.data.records import DatasetIndex, ImageRecord

NAME = "llcm"
VIS_CAMS: tuple[int, ...] = tuple(range(1, 10))
NIR_CAMS: tuple[int, ...] = (1, 2, 4, 5, 6, 7, 8, 9)
#: test folder -> (cameras read, record modality)
TEST_DIRS: dict[str, tuple[tuple[int, ...], str]] = {
    "test_vis": (VIS_CAMS, "visible"),
    "test_nir": (NIR_CAMS, "infrared"),
}
TRAIN_FILES: dict[str, str] = {"idx/train_vis.txt": "visible", "idx/train_nir.txt": "infrared"}
TEST_ID_FILE = "idx/test_id.txt"


def scan_llcm(root: str | os.PathLike[str]) -> tuple[DatasetIndex, Scan]:
    """Read an LLCM tree, collecting every problem; the index holds what could be read."""
    scan = Scan(Path(root).expanduser())
    if not scan.check_root():
        return empty_index(NAME, scan.root, (0,)), scan
    scan.require_dir("idx")
    listing = DirListing(scan.root)
    train: list[ImageRecord] = []
    unknown_cam = 0
    for rel, modality in TRAIN_FILES.items():
        for path, label in read_index_file(scan, rel, listing) or []:
            cam = cam_from_path(path)
            cam = cam_from_filename(path) if cam is None else cam
            unknown_cam += cam is None
            train.append(ImageRecord(path, label, cam or 0, modality))
    if unknown_cam:
        scan.warn(scan.root / "idx", f"{unknown_cam} training path(s) name no camera (no camK folder, no "
                  "'_c<NN>_' file-name token); their cam is 0 (unknown)")

    test_ids = read_id_file(scan, TEST_ID_FILE)
    tests = set(test_ids or ())
    test: list[ImageRecord] = []
    for folder, (cams, modality) in TEST_DIRS.items():
        if scan.require_dir(folder) is None:
            continue
        recs, missing = camera_tree_records(scan, folder, cams, modality, tests)
        if len(missing) == len(cams):
            scan.problem(scan.root / folder, f"no camera folders (expected {folder}/cam<K>/<pid:04d>/ "
                         f"for K in {list(cams)})")
        elif missing:
            scan.warn(scan.root / folder, f"camera folder(s) {sorted(missing)} absent")
        test.extend(recs)
    if test_ids is not None:
        no_image = sorted(tests - {r.pid for r in test})
        if no_image:
            scan.problem(scan.root / TEST_ID_FILE, f"{len(no_image)} test id(s) have no test image "
                         f"(expected test_vis|test_nir/cam<K>/<pid:04d>/), e.g. {no_image[:10]}")
        for folder, (_, modality) in TEST_DIRS.items():
            absent = sorted(tests - {r.pid for r in test if r.modality == modality} - set(no_image))
            if absent:
                scan.warn(scan.root / folder, f"{len(absent)} test id(s) have no {folder} image, e.g. {absent[:10]}")
    meta: dict[str, object] = {
        "test_ids": list(test_ids or []),
        "train_ids": sorted({r.pid for r in train}),
    }
    index = DatasetIndex(NAME, scan.root, (0,), {0: sort_records(train)}, {0: sort_records(test)}, meta)
    return index, scan


def load_llcm(root: str | os.PathLike[str]) -> DatasetIndex:
    """The LLCM index of `root`; VibenchError listing every problem of a malformed tree."""
    index, scan = scan_llcm(root)
    raise_if_problems(scan, NAME)
    return index
