"""The gallery samplers against replays written straight from docs/protocols.md#samplers-and-list-order."""
from __future__ import annotations

import os
import random

import numpy as np
import pytest

from vibench.data.records import ImageRecord
from vibench.errors import VibenchError
from vibench.protocols import build_lists, get_protocol
from vibench.protocols.gallery_sampling import agw_single_shot, seeded_multi_shot


def _write_tree(root, layout):
    for (pid, cam), n in layout.items():
        folder = root / f"cam{cam}" / f"{pid:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(1, n + 1):
            (folder / f"{k:04d}.jpg").write_bytes(b"")


def _agw_replay(root, ids, cams, trial):
    """process_gallery_sysu as described in docs/protocols.md#samplers-and-list-order (global random, os.listdir)."""
    state = random.getstate()
    try:
        random.seed(trial)
        out = []
        for pid in sorted(ids):
            for cam in cams:
                folder = os.path.join(root, f"cam{cam}", f"{pid:04d}")
                if os.path.isdir(folder):
                    files = sorted(os.listdir(folder))
                    out.append(f"cam{cam}/{pid:04d}/{random.choice(files)}")
        return out
    finally:
        random.setstate(state)


@pytest.mark.parametrize("name,cams", [("sysu-all-single", [1, 2, 4, 5]), ("sysu-indoor-single", [1, 2])])
def test_agw_sampler_replays_reference_draws(tmp_path, hand, name, cams):
    _write_tree(tmp_path, hand.SYSU_TEST)
    index = hand.make_sysu_index(tmp_path)
    ids = sorted({p for p, _ in hand.SYSU_TEST})
    spec = get_protocol(name)
    seen = set()
    for trial in spec.trials:
        lists = build_lists(spec, index, trial)
        assert [g.path for g in lists.gallery] == _agw_replay(tmp_path, ids, cams, trial)
        seen.add(tuple(g.path for g in lists.gallery))
    assert len(seen) > 1  # trials differ


def test_agw_sampler_leaves_global_random_untouched(sysu_index):
    random.seed(1234)
    before = random.random()
    random.seed(1234)
    build_lists(get_protocol("sysu-all-single"), sysu_index, 3)
    assert random.random() == before


@pytest.mark.parametrize("trial,sizes,expected", [(0, (10, 3, 7), [6, 1, 0]),
                                                   (7, (301, 5, 12, 1), [165, 1, 6, 0])])
def test_agw_single_shot_known_draw(trial, sizes, expected):
    """CPython's random.seed(trial) + choice stream, pinned: a Python that changed it would
    silently break the bit-exact replay of the reference galleries."""
    folders = [[ImageRecord(f"a/{i:04d}", 1, 1, "visible") for i in range(n)] for n in sizes]
    assert [r.path for r in agw_single_shot(folders, trial)] == [f"a/{i:04d}" for i in expected]


def test_multi_shot_replays_documented_draw(tmp_path, hand):
    _write_tree(tmp_path, hand.SYSU_TEST)
    index = hand.make_sysu_index(tmp_path)
    ids = sorted({p for p, _ in hand.SYSU_TEST})
    spec = get_protocol("sysu-all-multi")
    for trial in (0, 6):
        rng = random.Random(trial)
        expected = []
        for pid in ids:
            for cam in (1, 2, 4, 5):
                folder = tmp_path / f"cam{cam}" / f"{pid:04d}"
                if folder.is_dir():
                    files = sorted(os.listdir(folder))
                    expected += [f"cam{cam}/{pid:04d}/{f}" for f in rng.sample(files, min(10, len(files)))]
        assert [g.path for g in build_lists(spec, index, trial).gallery] == expected


def test_multi_shot_small_folders_take_everything():
    folders = [[ImageRecord(f"x/{i}", 1, 1, "visible") for i in range(3)]]
    assert sorted(r.path for r in seeded_multi_shot(folders, 0, 10)) == ["x/0", "x/1", "x/2"]


def test_llcm_agw_sampler_replay(llcm_index, hand):
    """process_gallery_llcm: same Sampler A over VIS cams 1..9 (I2V gallery)."""
    spec = get_protocol("llcm-i2v")
    for trial in (0, 4):
        rng = random.Random(trial)
        expected = []
        for pid in sorted({p for p, _, _ in hand.LLCM_TEST}):
            for cam in range(1, 10):
                n = hand.LLCM_TEST.get((pid, "visible", cam))
                if n:
                    files = sorted(f"{pid:04d}_c{cam:02d}_{k:03d}.jpg" for k in range(n))
                    expected.append(f"test_vis/cam{cam}/{pid:04d}/{rng.choice(files)}")
        assert [g.path for g in build_lists(spec, llcm_index, trial).gallery] == expected


def _perm_table(layout, trials=10, seed=0):
    rs = np.random.RandomState(seed)
    table = {}
    for (pid, cam), n in layout.items():
        table.setdefault(cam, {})[pid] = np.stack([rs.permutation(n) + 1 for _ in range(trials)]).astype(np.int64)
    return table


def test_official_sampler_uses_rand_perm_rows(tmp_path, hand):
    from scipy.io import savemat

    layout = hand.SYSU_TEST
    table = _perm_table(layout)
    cells = np.empty((6, 1), dtype=object)
    for cam in range(1, 7):
        entries = np.empty((1, 25), dtype=object)
        for pid in range(1, 26):
            entries[0, pid - 1] = table.get(cam, {}).get(pid, np.zeros((0, 0))).astype(float)
        cells[cam - 1, 0] = entries
    mat = tmp_path / "exp" / "rand_perm_cam.mat"
    mat.parent.mkdir()
    savemat(str(mat), {"rand_perm_cam": cells})
    index = hand.make_sysu_index(tmp_path, meta={"rand_perm_cam": str(mat)})
    for name, cams, shots in (("sysu-all-single-official", (1, 2, 4, 5), 1),
                              ("sysu-indoor-multi-official", (1, 2), 10)):
        spec = get_protocol(name)
        for trial in (0, 9):
            expected = [f"cam{c}/{p:04d}/{k:04d}.jpg" for p in sorted({p for p, _ in layout})
                        for c in cams if (p, c) in layout for k in table[c][p][trial, :shots]]
            assert [g.path for g in build_lists(spec, index, trial).gallery] == expected


def test_official_sampler_without_file_is_a_clear_error(tmp_path, hand):
    index = hand.make_sysu_index(tmp_path)
    with pytest.raises(VibenchError, match=r"official SYSU-MM01 sampler.*rand_perm_cam.mat.*does not exist"):
        build_lists(get_protocol("sysu-all-single-official"), index, 0)


def test_official_sampler_mismatched_file(tmp_path, hand, monkeypatch):
    from vibench.protocols import build as build_mod

    mat = tmp_path / "exp" / "rand_perm_cam.mat"
    mat.parent.mkdir()
    mat.write_bytes(b"")
    index = hand.make_sysu_index(tmp_path, meta={"rand_perm_cam": str(mat)})
    table = _perm_table({k: v for k, v in hand.SYSU_TEST.items() if k != (20, 4)})
    monkeypatch.setattr(build_mod, "_read_perm", lambda path, mtime: table)
    with pytest.raises(VibenchError, match=r"no permutation for cam4/0020"):
        build_lists(get_protocol("sysu-all-single-official"), index, 0)
    table2 = _perm_table(hand.SYSU_TEST)
    table2[1][1] = table2[1][1] + 100  # numbers that name no file
    monkeypatch.setattr(build_mod, "_read_perm", lambda path, mtime: table2)
    with pytest.raises(VibenchError, match=r"cam1/0001 permutation names image 01\d\d.jpg, which is missing"):
        build_lists(get_protocol("sysu-all-single-official"), index, 0)
