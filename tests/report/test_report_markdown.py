"""Golden-file tests: the Markdown of the fixed fake result store (tests/report/conftest.py).

Regenerate after an intended change with ``VIBENCH_UPDATE_GOLDEN=1 pytest tests/report`` and
review the diff."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from vibench.report.markdown import md_escape

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("name", ["report.md", "paper-tables.md"])
def test_markdown_matches_golden(rendered, name):
    got = (rendered["out"] / name).read_text(encoding="utf-8")
    golden = GOLDEN / name
    if os.environ.get("VIBENCH_UPDATE_GOLDEN"):
        golden.write_text(got, encoding="utf-8")
    assert got == golden.read_text(encoding="utf-8"), f"{name} differs from {golden}"


def test_markdown_shows_dash_for_missing_and_labels_synthetic(rendered):
    md = (rendered["out"] / "report.md").read_text(encoding="utf-8")
    # indoor (trial 9 missing): 6 dashes; RegDB (split 10 missing): 12 dashes, never a mean
    row = "| pmt | vibench |  | tiny c0ffee | synthetic tiny s0 | "
    assert row + " | ".join(["—"] * 6) + " |\n" in md
    assert row + " | ".join(["—"] * 12) + " |\n" in md
    assert "| bit | vibench |  | tiny c0ffee | synthetic tiny s0 | 70.45 (syn) |" in md
    paper = (rendered["out"] / "paper-tables.md").read_text(encoding="utf-8")
    # BIT-T1: BIT row shows reported, vibench, and the coloured difference
    assert "| BIT (ours) | CVPR'26 | 80.53 | 70.45 (syn) | -10.08 ✗ |" in paper


def test_md_escape():
    assert md_escape("a|b") == "a\\|b"
    assert md_escape("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert md_escape("x\ny") == "x y"
