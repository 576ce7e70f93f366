"""Pinned parameter counts (registered / effective) of AMINet and PMCM on SYSU (395 ids); TMPA's
are pinned in tests/methods_tmpa/test_tmpa_params.py.
A change here changes the numbers in docs/methods_aminet_tmpa_pmcm.md and the metafiles."""
from __future__ import annotations

import pytest

from vibench.engine.config import load_config
from vibench.engine.latency import count_parameters
from vibench.registry import get_method_class

TINY = {
    "aminet": (26739492, 22374170),  # + Eq. 3 fusion (training only)
    "pmcm": (12431280, 11230384),
}
PAPER = {
    ("aminet", "sysu", 395): (109611812, 54401818),  # + NL blocks, Eq. 3 fusion (training only)
    ("pmcm", "sysu", 395): (31201856, 24186432),
}


def _count(name: str, config: str, dataset: str, classes: int, overrides=()) -> tuple[int, int]:
    init = ["model.init=random"] if config == "paper" else []  # counted only: no ImageNet file needed
    cfg = load_config(name, config, dataset=dataset, overrides=init + list(overrides))
    method = get_method_class(name)(cfg, dataset)
    c = count_parameters(method.build_model(classes), method, tuple(cfg["input"]["size"]))
    return c["registered"], c["effective"]


@pytest.mark.parametrize("name", sorted(TINY))
def test_tiny_counts(name: str) -> None:
    assert _count(name, "tiny", "sysu", 395) == TINY[name]


@pytest.mark.slow
@pytest.mark.parametrize("key", sorted(PAPER))
def test_paper_counts(key: tuple[str, str, int]) -> None:
    assert _count(*key[:1], "paper", key[1], key[2]) == PAPER[key]
