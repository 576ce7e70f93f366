"""Hand-made dataset indexes for the protocol tests (no dependence on the loaders)."""
from __future__ import annotations

import random
from pathlib import Path

import pytest

from vibench.data.records import DatasetIndex, ImageRecord

SYSU_MOD = {1: "visible", 2: "visible", 3: "infrared", 4: "visible", 5: "visible", 6: "infrared"}

#: (pid, cam) -> number of images of the hand-made SYSU test set. Some folders are absent on
#: purpose (pid 7 is missing from cams 1/2 -> invalid in indoor-search; pid 12 has no cam3;
#: pid 3 only one cam6 image), sizes straddle the 10-shot limit.
SYSU_TEST: dict[tuple[int, int], int] = {}
for _pid, _cams in {
    1: {1: 12, 2: 11, 3: 13, 4: 10, 5: 3, 6: 10},
    3: {1: 4, 2: 10, 3: 12, 4: 15, 6: 1},
    7: {3: 5, 4: 9, 5: 11, 6: 6},
    12: {1: 2, 2: 14, 4: 10, 5: 10, 6: 12},
    20: {1: 10, 2: 10, 3: 10, 4: 1, 5: 10, 6: 10},
}.items():
    for _cam, _n in _cams.items():
        SYSU_TEST[(_pid, _cam)] = _n


def sysu_records(layout: dict[tuple[int, int], int], shuffle_seed: int = 5) -> list[ImageRecord]:
    recs = [ImageRecord(f"cam{cam}/{pid:04d}/{n:04d}.jpg", pid, cam, SYSU_MOD[cam])
            for (pid, cam), count in layout.items() for n in range(1, count + 1)]
    random.Random(shuffle_seed).shuffle(recs)  # the builder must not rely on the index order
    return recs


def make_sysu_index(root: Path | str = "/data/SYSU-MM01", meta: dict | None = None) -> DatasetIndex:
    test = tuple(sysu_records(SYSU_TEST))
    train = tuple(sysu_records({(p, c): 6 + (p + c) % 5 for p in (2, 4, 5) for c in range(1, 7)}))
    return DatasetIndex("sysu", Path(root), (0,), {0: train}, {0: test}, dict(meta or {}))


#: LLCM: (pid, modality, cam) -> n. NIR cam3 exists here on purpose: the protocols must ignore it.
LLCM_TEST: dict[tuple[int, str, int], int] = {}
for _pid in (2, 5, 9, 11):
    for _cam in range(1, 10):
        if (_pid + _cam) % 3:
            LLCM_TEST[(_pid, "visible", _cam)] = 1 + (_pid * _cam) % 7
        if (_pid + 2 * _cam) % 4:
            LLCM_TEST[(_pid, "infrared", _cam)] = 1 + (_pid + _cam) % 6


def make_llcm_index(root: Path | str = "/data/LLCM") -> DatasetIndex:
    folder = {"visible": "test_vis", "infrared": "test_nir"}
    recs = [ImageRecord(f"{folder[m]}/cam{c}/{p:04d}/{p:04d}_c{c:02d}_{n:03d}.jpg", p, c, m)
            for (p, m, c), k in LLCM_TEST.items() for n in range(k)]
    random.Random(3).shuffle(recs)
    train = tuple(ImageRecord(f"nir/{p:04d}/{n}.jpg", p, 1, "infrared") for p in (1, 3) for n in range(3))
    return DatasetIndex("llcm", Path(root), (0,), {0: train}, {0: tuple(recs)}, {})


def regdb_split(k: int) -> tuple[tuple[ImageRecord, ...], tuple[ImageRecord, ...]]:
    """Split k: 4 test ids (labels 0..3) x 3 images per modality; 2 train ids."""
    ids = [(k * 7 + j) % 20 for j in range(6)]
    test_ids, train_ids = ids[:4], ids[4:]
    test: list[ImageRecord] = []
    for sub, cam, mod in (("Visible", 1, "visible"), ("Thermal", 2, "infrared")):
        for label, pid in enumerate(test_ids):
            # file order as in the index files: not sorted (checks that "index" order is kept)
            for n in (2, 0, 1):
                test.append(ImageRecord(f"{sub}/{pid}/{'male' if sub == 'Visible' else 'female'}_{n}.bmp",
                                        label, cam, mod))
    train = [ImageRecord(f"Visible/{pid}/t_{n}.bmp", j, 1, "visible") for j, pid in enumerate(train_ids) for n in range(2)]
    return tuple(train), tuple(test)


def make_regdb_index(root: Path | str = "/data/RegDB") -> DatasetIndex:
    splits = tuple(range(1, 11))
    parts = {k: regdb_split(k) for k in splits}
    return DatasetIndex("regdb", Path(root), splits, {k: parts[k][0] for k in splits},
                        {k: parts[k][1] for k in splits}, {})


@pytest.fixture
def sysu_index() -> DatasetIndex:
    return make_sysu_index()


@pytest.fixture
def llcm_index() -> DatasetIndex:
    return make_llcm_index()


@pytest.fixture
def regdb_index() -> DatasetIndex:
    return make_regdb_index()


@pytest.fixture
def indexes() -> dict[str, DatasetIndex]:
    return {"sysu": make_sysu_index(), "llcm": make_llcm_index(), "regdb": make_regdb_index()}


@pytest.fixture
def hand():
    """The builders and layouts above (test modules cannot import conftest under importlib mode)."""
    from types import SimpleNamespace

    return SimpleNamespace(SYSU_TEST=SYSU_TEST, SYSU_MOD=SYSU_MOD, LLCM_TEST=LLCM_TEST,
                           sysu_records=sysu_records, make_sysu_index=make_sysu_index,
                           make_llcm_index=make_llcm_index, make_regdb_index=make_regdb_index,
                           regdb_split=regdb_split)


def rule_excludes(rule: str, q: ImageRecord, g: ImageRecord, j: int, s: int) -> bool:
    """docs/protocols.md rule table, written out literally (the tests' oracle)."""
    own = j == s
    if rule == "sysu":
        return q.cam == 3 and g.cam == 2
    if rule in ("llcm", "market"):
        return g.pid == q.pid and g.cam == q.cam
    if rule in ("regdb", "none"):
        return False
    if rule == "mix":
        return own
    if rule == "mix-cam":
        return own or g.cam == q.cam
    if rule in ("mix-cam-id", "unimodal"):
        return own or (g.pid == q.pid and g.cam == q.cam)
    if rule == "mix-id":
        return own or (g.pid == q.pid and g.modality == q.modality)
    if rule == "mix-p":
        return own or (g.modality == q.modality and g.pid != q.pid)
    raise AssertionError(f"rule {rule} has no oracle")


@pytest.fixture
def excludes():
    return rule_excludes
