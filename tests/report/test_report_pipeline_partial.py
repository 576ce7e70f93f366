"""The pipeline-check page shows an incomplete synthetic result from the trials/splits it has,
marked, while every leaderboard keeps showing nothing for it."""
from __future__ import annotations

import pandas as pd
import pytest


def test_incomplete_regdb_result_shows_its_splits_marked(store_factory, renderer, tmp_path):
    """PMT on RegDB has splits 1..9 of 10 (conftest): trained R1 per split t is 0.70 + 0.001 t,
    mAP 0.65 + 0.001 t, untrained the same at base 0.21; means over t = 1..9 by hand."""
    out = tmp_path / "out"
    renderer(store_factory(), out, plots_enabled=False)
    table = pd.read_csv(out / "data" / "pipeline-check.csv")
    row = table[(table["Method"] == "PMT") & (table["Protocol"] == "Visible→Thermal")].iloc[0]
    assert row["R1 trained"] == pytest.approx(70.5, abs=1e-4)
    assert row["mAP trained"] == pytest.approx(65.5, abs=1e-4)
    assert row["R1 untrained"] == pytest.approx(21.5, abs=1e-4)
    assert row["R1 gain"] == pytest.approx(49.0, abs=1e-4) and row["Learned"] == "yes"
    md = (out / "pipeline-check.md").read_text(encoding="utf-8")
    assert "70.5\\*" in md and "65.5\\*" in md  # Markdown escapes the mark
    # the complete BIT result (splits 1..10) has no mark
    (bit,) = [line for line in md.splitlines() if line.startswith("| BIT | Visible→Thermal |")]
    assert "\\*" not in bit and "81.1" in bit
