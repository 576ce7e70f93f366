"""Generation time of the tiny scale (target < 5 s per dataset on a 2-core machine)."""
from __future__ import annotations

import platform
from pathlib import Path

import pytest

from vibench.data.synth import read_marker


@pytest.mark.parametrize("dataset", ["sysu", "regdb", "llcm"])
def test_tiny_generation_is_fast(synth_trees: dict[str, tuple[Path, float]], dataset: str) -> None:
    root, seconds = synth_trees[dataset]
    images = read_marker(root)["summary"]["images"]
    print(f"\n{dataset} tiny: {images} images in {seconds:.2f} s on {platform.processor() or platform.machine()}")
    assert seconds < 30.0, f"tiny {dataset} took {seconds:.1f} s (target < 5 s)"
