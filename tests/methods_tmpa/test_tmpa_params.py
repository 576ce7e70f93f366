"""Pinned TMPA parameter counts (registered / effective, vibench.engine.latency.count_parameters)
against Table V's 48.3M (RegDB, 206 classes), built on the meta device. A change here changes the
numbers in configs/tmpa/metafile.yaml (fidelity card, measured) and docs/methods_aminet_tmpa_pmcm.md."""
from __future__ import annotations

import pytest
import torch
import torchvision

from vibench.engine.config import load_config
from vibench.engine.latency import count_parameters, paper_parameter_counts
from vibench.registry import get_method_class

R50 = 23508032  # ResNet-50 without fc
HEAD = {206: 2048 * 206 + 2 * 2048, 395: 2048 * 395 + 2 * 2048}  # BN-neck (weight, bias) + classifier without bias
LAYER3_4 = 22063104  # one conv block (layer3 + layer4 of ResNet-50)


def _count(config: str, dataset: str, classes: int, overrides: tuple[str, ...] = ()) -> tuple[int, int]:
    cfg = load_config("tmpa", config, dataset=dataset, overrides=list(overrides))
    method = get_method_class("tmpa")(cfg, dataset)
    with torch.device("meta"):
        model = method.build_model(classes)
    c = count_parameters(model, method, tuple(cfg["input"]["size"]))
    return c["registered"], c["effective"]


def test_paper_config_counts() -> None:
    counts = paper_parameter_counts("tmpa", ("sysu", "regdb"))
    # three full ResNet-50 trunks (3 extractors + 3 conv blocks), the MFT adds nothing, three heads
    assert counts["params"] == {"regdb": 3 * R50 + 3 * HEAD[206], "sysu": 3 * R50 + 3 * HEAD[395]}
    assert counts["params"]["regdb"] == 71802048
    # effective (both modalities' test paths): all three trunks + the BN of C (classifiers unused)
    assert counts["effective"] == {"regdb": 3 * R50 + 4096, "sysu": 3 * R50 + 4096}


@pytest.mark.parametrize(
    "overrides,registered,effective",
    [
        ((), 71802048, 70528192),  # text: 3 extractors stem..layer2 + 3 conv blocks layer3..4
        (("tmpa.share_specific_conv=true",), 49738944, 48465088),  # Conv^V = Conv^I
        (("tmpa.split_stage=3",), 71802048, 70528192),  # extractors stem..layer3, conv blocks layer4
        (("tmpa.split_stage=3", "tmpa.share_specific_conv=true"), 56837312, 55563456),
        (("tmpa.split_stage=1", "tmpa.share_specific_conv=true"), 48519360, 47245504),
    ],
)
def test_layouts_against_table_v(overrides: tuple[str, ...], registered: int, effective: int) -> None:
    assert _count("paper", "regdb", 206, overrides) == (registered, effective)
    assert round(registered / 1e6, 1) != 48.3  # no layout tried reproduces Table V's 48.3M


def test_shared_specific_conv_saves_one_conv_block() -> None:
    full, _ = _count("paper", "regdb", 206)
    shared, _ = _count("paper", "regdb", 206, ("tmpa.share_specific_conv=true",))
    assert full - shared == LAYER3_4


def test_agw_style_two_trunk_count_is_the_one_matching_table_v() -> None:
    """Two full ResNet-50 objects + three 206-way BN+FC heads round to 48.3M: the registered-
    parameter convention of AGW-style code (docs/methods.md#parameter-count-convention), not a layout
    of the text (three extractors and three conv blocks)."""
    with torch.device("meta"):
        trunk = torchvision.models.resnet50()
    assert sum(p.numel() for n, p in trunk.named_parameters() if not n.startswith("fc.")) == R50
    assert 2 * R50 + 3 * HEAD[206] == 48294016


def test_tiny_counts() -> None:
    assert _count("tiny", "sysu", 395) == (34139328, 33530560)
