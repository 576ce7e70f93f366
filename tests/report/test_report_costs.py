"""The paper-config costs in the report: the compute table (FLOPs, CPU latency) and the CPU rows
of the latency table, each labelled with config and device, from a costs document."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from vibench.errors import VibenchError
from vibench.report.costs import MEASURED_COSTS, compute_table, latency_table, load_measured_costs
from vibench.report.reported import load_report_config

PAPER_COSTS = Path(__file__).parent / "data" / "paper-costs.json"


def _row(table, method):
    (row,) = [r for r in table.rows if r[0].text == method]
    return dict(zip(table.header, row))


def test_compute_table_rows_from_the_costs_document():
    cfg = load_report_config(None)
    t = compute_table(cfg, load_measured_costs(PAPER_COSTS))
    bit = _row(t, "BIT")
    assert bit["Config"].text == "paper beef0000" and bit["Input (HxW)"].text == "256x128"
    assert bit["Registered (M)"].text == "133.43" and bit["Effective (M)"].text == "85.81"
    # 37.5e9 FLOPs = 18.75e9 MACs; per query 550e9 MACs (embed + decoder over K = 50)
    assert bit["GFLOPs / image"].value == pytest.approx(37.5) and bit["GMACs / image"].value == pytest.approx(18.75)
    assert bit["GMACs / query"].value == pytest.approx(550.0)
    assert "decoder over K = 50" in bit["GMACs / query"].title
    assert bit["CPU ms / query"].text == "20000" and bit["Measured on"].text.startswith("cpu (Test CPU, 1 threads), fp32")
    assert bit["Paper's latency claim"].text == "14 ms/query (NVIDIA L20)"
    assert _row(t, "TMPA")["Paper's latency claim"].text == "no claim"
    assert t.notes == ["Measurement conditions: busy machine: upper bounds"]


def test_compute_table_without_a_measurement_says_how_to_make_one():
    t = compute_table(load_report_config(None), None)
    assert t.rows == [] and "vibench methods costs" in t.notes[0]


def test_latency_table_adds_the_cpu_rows_compared_only_among_themselves():
    cfg = load_report_config(None)
    t = latency_table(cfg, [], load_measured_costs(PAPER_COSTS))
    rows = {(r[0].text, r[2].text): r for r in t.rows}
    cpu = "cpu (Test CPU, 1 threads)"
    assert rows[("BIT (vibench)", cpu)][1].text == "paper beef0000"
    assert rows[("TMPA (vibench)", cpu)][5].value == pytest.approx(1.0)
    assert rows[("BIT (vibench)", cpu)][5].value == pytest.approx(20000.0 / 1005.0)
    assert rows[("BIT", "NVIDIA L20")][5].value == pytest.approx(1.4)  # the papers' rows compared with each other only


def test_load_measured_costs_errors(tmp_path):
    bad = tmp_path / "c.json"
    bad.write_text("{not json")
    with pytest.raises(VibenchError, match="not a readable costs document"):
        load_measured_costs(bad)
    bad.write_text(json.dumps({"schema": "other"}))
    with pytest.raises(VibenchError, match="vibench methods costs --out"):
        load_measured_costs(bad)
    assert load_measured_costs(None) == (
        json.loads(MEASURED_COSTS.read_text()) if MEASURED_COSTS.is_file() else None)
