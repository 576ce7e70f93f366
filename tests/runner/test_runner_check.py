"""Regression check: tolerance parsing, comparison statuses, the baseline round trip and CLI exit codes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from vibench.cli import main
from vibench.errors import VibenchError
from vibench.io import write_json_atomic
from vibench.runner.check import CheckRow, compare, flatten_results, format_rows, parse_tolerance, write_baseline


def _fake_store(root: Path, r1: float = 0.5, mAP: float = 0.4) -> Path:
    cell = root / "cells" / "agw__sysu__standard__split0__seed0"
    write_json_atomic(cell / "spec.json", {"cell": {"method": "agw", "dataset": "sysu", "variant": "standard",
                                                    "split": 0, "seed": 0, "cell_id": cell.name}})
    summary = {"rank1": r1, "rank5": 0.7, "rank10": 0.8, "rank20": 0.9, "mAP": mAP, "mINP": 0.2}
    trial = {"cmc": [r1] + [0.9] * 19, "mAP": mAP, "mINP": 0.2}
    write_json_atomic(cell / "metrics" / "sysu-all-single.json",
                      {"protocol": "sysu-all-single", "trials": {"0": trial}, "summary": summary})
    (cell / "DONE").write_text("{}")
    return root


def test_parse_tolerance_forms() -> None:
    assert parse_tolerance(None) == {"default": 0.03}
    assert parse_tolerance("0.05") == {"default": 0.05}
    assert parse_tolerance("default=0.01,mAP=0.2") == {"default": 0.01, "mAP": 0.2}
    with pytest.raises(VibenchError, match="did you mean 'mAP'"):
        parse_tolerance("map=0.1")
    with pytest.raises(VibenchError, match="not a number"):
        parse_tolerance("rank1=abc")


def test_compare_statuses() -> None:
    base = {"metrics": {"c/p/rank1": 0.50, "c/p/mAP": 0.40, "c/p/mINP": 0.2}}
    got = {"c/p/rank1": 0.52, "c/p/mAP": 0.45, "c/p/rank5": 0.7}
    rows = {r.key: r for r in compare(base, got, {"default": 0.03})}
    assert rows["c/p/rank1"].status == "ok"
    assert rows["c/p/mAP"].status == "FAIL"
    assert rows["c/p/mINP"].status == "MISSING"
    assert rows["c/p/rank5"].status == "new"
    assert rows["c/p/mAP"].diff == pytest.approx(0.05)
    text = format_rows(list(rows.values()))
    assert "FAIL" in text and "+5.00" in text


def test_boundary_is_inclusive() -> None:
    assert CheckRow("k/p/rank1", 0.5, 0.53, 0.03).status == "ok"
    assert CheckRow("k/p/rank1", 0.5, 0.5301, 0.03).status == "FAIL"


def test_check_cli_passes_on_baseline_and_fails_on_perturbed_copy(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    store = _fake_store(tmp_path / "store")
    baseline = tmp_path / "baseline.json"
    write_baseline(baseline, store, "ci", {"default": 0.01})
    assert set(flatten_results(store)) == {f"agw__sysu__standard__split0__seed0/sysu-all-single/{m}"
                                           for m in ("rank1", "rank5", "rank10", "rank20", "mAP", "mINP")}
    assert main(["check", "--baseline", str(baseline), "--results", str(store)]) == 0
    assert "6 passed, 0 failed" in capsys.readouterr().out

    data = json.loads(baseline.read_text())
    data["metrics"]["agw__sysu__standard__split0__seed0/sysu-all-single/mAP"] += 0.05
    perturbed = tmp_path / "perturbed.json"
    perturbed.write_text(json.dumps(data))
    with pytest.raises(SystemExit) as exc:
        main(["check", "--baseline", str(perturbed), "--results", str(store)])
    assert exc.value.code == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "5 passed, 1 failed" in out


def test_check_cli_missing_baseline_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["check", "--baseline", str(tmp_path / "nope.json"), "--results", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
