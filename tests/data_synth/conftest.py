"""Session fixtures: each tiny synthetic dataset is generated once (seed 0) and timed."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from vibench.data.synth import generate


@pytest.fixture(scope="session")
def synth_trees(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, float]]:
    """dataset -> (root of its tiny seed-0 tree, generation seconds)."""
    base = tmp_path_factory.mktemp("synth")
    trees = {}
    for dataset in ("sysu", "regdb", "llcm"):
        started = time.perf_counter()
        root = generate(dataset, base / dataset, "tiny", 0)
        trees[dataset] = (root, time.perf_counter() - started)
    return trees


@pytest.fixture(scope="session")
def sysu_root(synth_trees: dict[str, tuple[Path, float]]) -> Path:
    return synth_trees["sysu"][0]


@pytest.fixture(scope="session")
def regdb_root(synth_trees: dict[str, tuple[Path, float]]) -> Path:
    return synth_trees["regdb"][0]


@pytest.fixture(scope="session")
def llcm_root(synth_trees: dict[str, tuple[Path, float]]) -> Path:
    return synth_trees["llcm"][0]
