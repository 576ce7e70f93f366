"""Exact sizes of every scale, checked on the plans (no rendering: paper scale is never drawn here)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vibench.data.synth import SCALES, get_scale
from vibench.data.synth.layouts import build_plan, folder_sizes
from vibench.errors import VibenchError


def _plan(dataset: str, scale: str):
    return build_plan(get_scale(dataset, scale), np.random.default_rng([0, 9]))


def test_paper_sysu_matches_real_counts() -> None:
    plan = _plan("sysu", "paper")
    assert plan.n_ids == 491
    assert (int((~plan.infrared).sum()), int(plan.infrared.sum())) == (30071, 15792)
    train = plan.texts["exp/train_id.txt"].split(",")
    val = plan.texts["exp/val_id.txt"].split(",")
    test = plan.texts["exp/test_id.txt"].split(",")
    assert (len(train), len(val), len(test)) == (296, 99, 96)
    test_ids = {int(t) for t in test}
    cam1 = {int(p.split("/")[1]) for p in plan.paths if p.startswith("cam1/")}
    assert len(cam1 & test_ids) == 56
    sizes = np.unique([p.rsplit("/", 1)[0] for p in plan.paths], return_counts=True)[1]
    assert sizes.min() >= 10     # every folder can feed a 10-shot gallery


def test_paper_regdb_and_llcm_match_real_counts() -> None:
    regdb = _plan("regdb", "paper")
    assert regdb.n_ids == 412 and len(regdb.paths) == 412 * 20
    assert len(regdb.texts["idx/test_visible_3.txt"].splitlines()) == 2060
    llcm = _plan("llcm", "paper")
    assert llcm.n_ids == 1064 and len(llcm.paths) == 46767
    assert len(llcm.texts["idx/test_id.txt"].split(",")) == 351
    per_group = {g: sum(p.startswith(g + "/") for p in llcm.paths)
                 for g in ("train_vis", "train_nir", "test_vis", "test_nir")}
    assert per_group == {"train_vis": 16946, "train_nir": 13975, "test_vis": 8680, "test_nir": 7166}
    labels = {int(line.split(" ")[1]) for line in llcm.texts["idx/train_vis.txt"].splitlines()}
    assert labels == set(range(713))


@pytest.mark.parametrize("dataset", ["sysu", "regdb", "llcm"])
def test_scales_grow(dataset: str) -> None:
    growing = ("tiny", "small", "paper")
    assert set(SCALES) == {*growing, "paper-shape"}
    sizes = [len(_plan(dataset, s).paths) for s in growing]
    assert sizes[0] < sizes[1] < sizes[2]
    assert [get_scale(dataset, s).height for s in SCALES] == [64, 128, 288, 288]


def test_unknown_names_suggest() -> None:
    with pytest.raises(VibenchError, match="did you mean 'sysu'"):
        get_scale("sysy", "tiny")
    with pytest.raises(VibenchError, match="did you mean 'small'"):
        get_scale("sysu", "smal")


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 200), lo=st.integers(1, 10), spread=st.integers(0, 5),
       extra=st.integers(0, 2000), seed=st.integers(0, 2**32 - 1))
def test_folder_sizes_bounds_and_exact_totals(n: int, lo: int, spread: int, extra: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    free = folder_sizes(rng, n, (lo, lo + spread))
    assert free.shape == (n,) and free.min() >= lo and free.max() <= lo + spread
    exact = folder_sizes(rng, n, (lo, lo + spread), total=lo * n + extra)
    assert exact.sum() == lo * n + extra and exact.min() >= lo


def test_paper_shape_has_the_real_identity_splits_and_capped_images() -> None:
    """paper-shape: the real ids and cameras at the paper image size, one image per folder."""
    spec = get_scale("sysu", "paper-shape")
    assert (spec.height, spec.width) == (288, 144)
    sysu = _plan("sysu", "paper-shape")
    train, val, test = (plan_ids(sysu, f"exp/{n}_id.txt") for n in ("train", "val", "test"))
    assert (len(train) + len(val), len(test)) == (395, 96)
    folders = np.unique([p.rsplit("/", 1)[0] for p in sysu.paths], return_counts=True)[1]
    assert set(folders.tolist()) == {1}
    assert {p.split("/")[0] for p in sysu.paths} == {f"cam{k}" for k in range(1, 7)}
    regdb = _plan("regdb", "paper-shape")
    assert regdb.n_ids == 412 and len(regdb.paths) == 412 * 4
    assert len(regdb.texts["idx/train_visible_1.txt"].splitlines()) == 206 * 2
    llcm = _plan("llcm", "paper-shape")
    assert len(llcm.texts["idx/test_id.txt"].split(",")) == 351
    labels = {int(line.split(" ")[1]) for line in llcm.texts["idx/train_vis.txt"].splitlines()}
    assert labels == set(range(713))
    per_id_group = np.unique([p.split("/")[0] + p.split("/")[2] for p in llcm.paths], return_counts=True)[1]
    assert per_id_group.min() >= 1 and per_id_group.max() <= 2   # 1-2 cameras x 1 image


def plan_ids(plan, name: str) -> list[int]:
    return [int(t) for t in plan.texts[name].split(",")]
