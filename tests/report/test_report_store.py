"""Reading the result store: means over trials/splits, '—' on any gap, errors name the file."""
from __future__ import annotations

import json
import re

import pytest

from vibench.errors import VibenchError
from vibench.report.aggregate import load_store, model_stats


def test_aggregation_rules(store_factory):
    s = load_store(store_factory())
    bit = s.lookup("bit", "sysu-all-single", real_only=False)
    # trials 0..9: rank1 = 0.70 + 0.001 t  -> mean 0.7045
    assert bit is not None and bit.complete
    assert bit.values["rank1"] == pytest.approx(70.45)
    assert bit.values["mAP"] == pytest.approx(65.45)
    assert bit.values["rank20"] == pytest.approx(100.0)
    assert bit.synthetic and bit.seeds == (0,)
    # RegDB: mean over split cells 1..10, rank1 = 0.80 + 0.001 s + 0.001 s
    reg = s.lookup("bit", "regdb-v2t", real_only=False)
    assert reg.complete and reg.values["rank1"] == pytest.approx(
        100 * sum(0.80 + 0.002 * k for k in range(1, 11)) / 10)
    assert len(reg.cells) == 10


def test_missing_trial_or_split_gives_no_value(store_factory):
    s = load_store(store_factory())
    indoor = s.lookup("pmt", "sysu-indoor-single", real_only=False)
    assert not indoor.complete and indoor.missing == {0: (9,)}
    assert all(v is None for v in indoor.values.values()) and indoor.cmc is None
    regdb = s.lookup("pmt", "regdb-t2v", real_only=False)
    assert regdb.missing == {0: (10,)} and regdb.values["mAP"] is None


def test_incomplete_cell_is_ignored(store_factory):
    s = load_store(store_factory())
    assert [p.name for p in s.incomplete] == ["pmt__sysu__sysu-imb-ir20__split0__seed0"]
    assert s.lookup("pmt", "sysu-all-single", "sysu-imb-ir20", real_only=False) is None
    assert s.lookup("bit", "sysu-all-single", "sysu-imb-ir10", real_only=False).values["rank1"] == pytest.approx(66.45)


def test_model_stats(store_factory):
    rows = model_stats(load_store(store_factory()))
    assert [(r["method"], r["device"], r["ms_per_query"]) for r in rows] == [
        ("bit", "Test CPU", 12.5), ("pmt", "Test CPU", 9.0)]
    assert rows[0]["params_registered_m"] == pytest.approx(133.4)


def test_no_store_and_wrong_folder(tmp_path):
    assert load_store(tmp_path / "absent").aggregates == []
    (tmp_path / "x").mkdir()
    with pytest.raises(VibenchError, match=r"x: not a result store"):
        load_store(tmp_path / "x")


def _damage_note(root, name):
    """load_store goes on without a damaged cell and names it (file and problem) in its notes."""
    summary = load_store(root)
    assert name not in {c.path.name for c in summary.cells}
    return "\n".join(summary.store_notes)


def test_bad_metrics_file_names_the_file(store_factory):
    root = store_factory()
    name = "bit__sysu__standard__split0__seed0"
    p = root / "cells" / name / "metrics" / "sysu-all-single.json"
    p.write_text("{not json")
    assert re.search(r"Damaged cell \(not used\): .*sysu-all-single\.json: not valid JSON",
                     _damage_note(root, name))
    p.write_text(json.dumps({"protocol": "sysu-all-single", "trials": {"0": {"cmc": [70.0],
                                                                           "mAP": 0.5}}}))
    assert re.search(r"sysu-all-single\.json: trial 0 has 70\.0; metric values are fractions",
                     _damage_note(root, name))


def test_bad_spec_names_the_file(store_factory):
    root = store_factory()
    name = "bit__sysu__standard__split0__seed0"
    p = root / "cells" / name / "spec.json"
    p.write_text(json.dumps({"cell": {"method": "bit"}}))
    assert re.search(r"spec\.json: expected 'cell' with method", _damage_note(root, name))


def test_other_config_or_data_source_is_never_merged(store_factory, cell_writer):
    from vibench.report.reported import load_registry, load_report_config
    from vibench.report.leaderboard import leaderboard
    from vibench.report.pipeline_check import pipeline_table

    write_cell = cell_writer
    root = store_factory()
    data_root = root / "data"
    sysu = range(10)
    write_cell(root, "bit", "sysu", "standard", 0, 0, {"sysu-all-single": {t: 0.30 for t in sysu}},
               data_root=data_root, config_name="paper", config_hash="beef00")
    write_cell(root, "bit", "sysu", "standard", 0, 0, {"sysu-all-single": {t: 0.40 for t in sysu}},
               data_root=data_root, manifest_hash="1234abcd" * 8)
    s = load_store(root)
    found = sorted((a.config, a.data, round(a.values["rank1"], 2)) for a in s.aggregates
                   if (a.method, a.protocol, a.variant) == ("bit", "sysu-all-single", None))
    assert found == [("paper beef00", "synthetic tiny s0", 30.45),
                     ("tiny c0ffee", "real 1234abcd", 40.45),
                     ("tiny c0ffee", "synthetic tiny s0", 70.45)]
    # a paper table compares with real data first, then the paper config
    assert s.lookup("bit", "sysu-all-single").data == "real 1234abcd"
    assert s.lookup("bit", "sysu-all-single", real_only=False).data == "real 1234abcd"
    cfg = load_report_config(None)
    board = leaderboard("sysu-all-single", load_registry(None), s, cfg)
    rows = [[c.text for c in r] for r in board.rows if r[1].text == "BIT (vibench)"]
    config_col, data_col = board.header.index("Config"), board.header.index("Data")
    # only the real-data result is ranked; the synthetic ones are on the pipeline-check page
    assert [(r[config_col], r[data_col]) for r in rows] == [("tiny c0ffee", "real 1234abcd")]
    pipe = pipeline_table(s, cfg)
    got = sorted((r[9].text, r[10].text) for r in pipe.rows
                 if r[0].text == "BIT" and r[1].title.endswith("sysu-all-single)"))
    assert got == [("paper beef00", "synthetic tiny s0"), ("tiny c0ffee", "synthetic tiny s0")]
