"""`vibench run --eval-every N`: the curve is stored, its last point is the stored last-epoch
result, the trained model is the one a run without the flag trains, and the curve summary
(best-on-test vs last epoch) is computed as by hand."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from vibench.errors import VibenchError
from vibench.runner.matrix import RunOptions, run_matrix
from vibench.store import curve_summary


def _run(out: Path, **kw) -> None:
    opts = RunOptions(methods="mock", protocols="sysu-all-single,sysu-mixid-i", max_trials=2, device="cpu",
                      out=out, **kw)
    assert run_matrix(opts) == 0


def _cell(out: Path) -> Path:
    (cell,) = (out / "cells").iterdir()
    return cell


def test_curve_points_and_identical_final_model(mock_plugin: None, tmp_path: Path):
    _run(tmp_path / "plain")
    _run(tmp_path / "curve", eval_every=2)
    plain, curved = _cell(tmp_path / "plain"), _cell(tmp_path / "curve")
    assert plain.name == curved.name  # --eval-every is not part of the cell's identity
    curve = json.loads((curved / "curve.json").read_text())
    assert curve["every"] == 2
    assert [p["epoch"] for p in curve["points"]] == [2, 3]  # every 2nd epoch and the last (3 epochs)
    for protocol in ("sysu-all-single", "sysu-mixid-i"):
        final = json.loads((curved / "metrics" / f"{protocol}.json").read_text())
        same = json.loads((plain / "metrics" / f"{protocol}.json").read_text())
        # the evaluations during training changed nothing in the trained model
        assert final["trials"] == same["trials"]
        last = curve["points"][-1]["protocols"][protocol]
        assert sorted(last["trials"]) == ["0", "1"]
        for k in ("rank1", "mAP", "mINP"):
            assert last["summary"][k] == final["summary"][k]
    assert not (plain / "curve.json").exists()

    # the report shows last epoch vs best-on-test, on the pipeline-check page (synthetic data)
    import pandas as pd
    from vibench.report.build import build_report
    rep = tmp_path / "report"
    build_report(tmp_path / "curve", rep, plots_enabled=False, param_counts={})
    table = pd.read_csv(rep / "data" / "pipeline-selection.csv")
    assert len(table) == 2
    row = table.iloc[0]  # rows: per cell, protocols by id
    protocol = sorted(curve["points"][-1]["protocols"])[0]
    s = curve_summary(curve, protocol)
    assert row["Last epoch"] == 3 and row["Best epoch (mAP)"] == s["best_epoch"]
    assert row["mAP (last)"] == pytest.approx(100 * s["last"])
    assert row["Gap mAP"] == pytest.approx(100 * s["gap"])
    assert "Checkpoint selection" in (rep / "pipeline-check.md").read_text()
    assert len(pd.read_csv(rep / "data" / "selection.csv")) == 0  # nothing on real data


def test_curve_summary_by_hand():
    def point(epoch: int, m: float) -> dict:
        return {"epoch": epoch, "protocols": {"p": {"summary": {"mAP": m}}}}
    curve = {"points": [point(2, 0.30), point(4, 0.42), point(6, 0.42), point(8, 0.37)]}
    s = curve_summary(curve, "p")
    assert s == {"last": 0.37, "last_epoch": 8, "best": 0.42, "best_epoch": 4, "gap": pytest.approx(0.05)}
    assert curve_summary(curve, "q") is None


def test_eval_every_must_be_positive():
    with pytest.raises(VibenchError, match="--eval-every 0: expected a positive number"):
        RunOptions.from_cli({"eval_every": 0, "out": "x"})
