"""The real loaders, `data check` and the protocol builder read the synthetic trees unchanged."""
from __future__ import annotations

from pathlib import Path

import pytest

from vibench.data.synth import get_scale

data = pytest.importorskip("vibench.data")
if not hasattr(data, "load_dataset"):
    pytest.skip("vibench.data.load_dataset is not available yet", allow_module_level=True)


def test_sysu_loads(sysu_root: Path) -> None:
    counts = get_scale("sysu", "tiny").counts
    index = data.load_dataset("sysu", sysu_root)
    train, test = index.train(), index.test()
    assert len({r.pid for r in train}) == counts.n_train + counts.n_val
    assert len({r.pid for r in test}) == counts.n_test
    assert {r.cam for r in test if r.modality == "infrared"} == {3, 6}
    assert {r.cam for r in test if r.modality == "visible"} == {1, 2, 4, 5}
    assert {r.modality for r in train} == {"visible", "infrared"}


def test_regdb_loads(regdb_root: Path) -> None:
    counts = get_scale("regdb", "tiny").counts
    index = data.load_dataset("regdb", regdb_root)
    assert tuple(index.splits) == tuple(range(1, 11))
    for split in (1, 10):
        test = index.test(split)
        assert len(test) == counts.n_ids // 2 * (counts.n_visible + counts.n_thermal)
        assert {(r.cam, r.modality) for r in test} == {(1, "visible"), (2, "infrared")}


def test_llcm_loads(llcm_root: Path) -> None:
    counts = get_scale("llcm", "tiny").counts
    index = data.load_dataset("llcm", llcm_root)
    assert len({r.pid for r in index.test()}) == counts.n_test
    assert len({r.pid for r in index.train()}) == counts.n_train
    assert 3 not in {r.cam for r in index.test() if r.modality == "infrared"}


@pytest.mark.parametrize("dataset", ["sysu", "regdb", "llcm"])
def test_data_check_finds_no_problem(synth_trees: dict[str, tuple[Path, float]], dataset: str) -> None:
    check = pytest.importorskip("vibench.data.check")
    report = check.check_dataset(dataset, synth_trees[dataset][0], deep=True)
    assert report.ok, report.problems


def test_sysu_protocols_have_valid_queries(sysu_root: Path) -> None:
    protocols = pytest.importorskip("vibench.protocols")
    index = data.load_dataset("sysu", sysu_root)
    for name, min_ids in (("sysu-all-single", 28), ("sysu-indoor-single", 20)):
        lists = protocols.build_lists(protocols.get_protocol(name), index, 0)
        gallery_ids = {r.pid for r in lists.gallery}
        valid = [q for q in lists.query if q.pid in gallery_ids]
        assert len(gallery_ids) >= min_ids, name
        assert valid and len(valid) <= len(lists.query), name


def test_sysu_rand_perm_cam_matches_the_folders(sysu_root: Path) -> None:
    from vibench.data.sysu import read_rand_perm_cam

    perm = read_rand_perm_cam(sysu_root / "exp/rand_perm_cam.mat")
    for cam in range(1, 7):
        folders = {int(d.name): len(list(d.iterdir())) for d in (sysu_root / f"cam{cam}").iterdir()}
        assert {pid: rows.shape for pid, rows in perm[cam].items()} == {
            pid: (10, n) for pid, n in folders.items()}
    protocols = pytest.importorskip("vibench.protocols")
    index = data.load_dataset("sysu", sysu_root)
    lists = protocols.build_lists(protocols.get_protocol("sysu-all-single-official"), index, 3)
    assert len({r.pid for r in lists.gallery}) == get_scale("sysu", "tiny").counts.n_test
