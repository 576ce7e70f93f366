"""Golden-file tests: the Markdown of the fixed fake result store (tests/report/conftest.py).

Regenerate after an intended change with ``VIBENCH_UPDATE_GOLDEN=1 pytest tests/report`` and
review the diff."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from vibench.report.markdown import md_escape

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("name", ["report.md", "paper-tables.md", "pipeline-check.md"])
def test_markdown_matches_golden(rendered, name):
    got = (rendered["out"] / name).read_text(encoding="utf-8")
    golden = GOLDEN / name
    if os.environ.get("VIBENCH_UPDATE_GOLDEN"):
        golden.write_text(got, encoding="utf-8")
    assert got == golden.read_text(encoding="utf-8"), f"{name} differs from {golden}"


def test_markdown_real_numbers_ranked_synthetic_only_in_pipeline_check(rendered):
    md = (rendered["out"] / "report.md").read_text(encoding="utf-8")
    # the real-data bit cell is ranked: rank-k = 0.55 + 0.02 (k - 1) + 0.001 t over t = 0..9
    # (R1 55.45, R5 63.45, R10 73.45, R20 93.45; mAP 50.45, mINP 35.45; float32 CMC sums put
    # the .x5 values on either side of the rounding point)
    assert "| BIT (vibench) | 55.5 | 63.5 | 73.4 | 93.4 | 50.4 | 35.4 |  | vibench | " \
           "paper beef00 | real feedface |" in md
    # no synthetic result in the leaderboards, costs or provenance
    assert "synthetic tiny" not in md and "c0ffee" not in md
    pipe = (rendered["out"] / "pipeline-check.md").read_text(encoding="utf-8")
    # pmt indoor (trial 9 missing): the mean over trials 0..8 only, marked (0.65 + 0.001 t ->
    # 65.4; untrained 0.195 + 0.001 t -> 19.9); bit: 75.45 trained vs 0.3 x 0.75 + 0.001 t -> 22.95
    assert "| PMT | Indoor | 65.4\\* | 19.9\\* | +45.5 | 60.4\\* | 14.9\\* | +45.5 | yes | tiny c0ffee | " \
           "synthetic tiny s0 |" in pipe
    # trained 0.75 + 0.001 t -> 75.45; untrained 0.3 x 0.75 + 0.001 t -> 22.95 (float32 sums)
    assert "| BIT | Indoor | 75.4 | 22.9 | +52.5 | 70.4 | 17.9 | +52.5 | yes | tiny c0ffee | " \
           "synthetic tiny s0 |" in pipe
    paper = (rendered["out"] / "paper-tables.md").read_text(encoding="utf-8")
    # BIT-T1: reported, vibench (real data), and the coloured difference
    assert "| BIT (ours) | CVPR'26 | 80.53 | 55.45 | -25.08 ✗ |" in paper
    assert "(syn)" not in paper and "synthetic" not in paper


def test_md_escape():
    assert md_escape("a|b") == "a\\|b"
    assert md_escape("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert md_escape("x\ny") == "x y"
