"""The result store (vibench.store): identity and directory names, the one trial summary, the
freeze rule of spec.json, and reading a store written by schema version 1 (migrate on read).

tests/store/data/store-v1 was written by vibench before the identity change
(`vibench run --suite ci --methods agw --protocols regdb-v2t`, synthetic tiny RegDB, CPU);
its weights and features were dropped to keep it small."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from vibench.cli import main
from vibench.errors import VibenchError
from vibench.store import (SCHEMA_VERSION, Cell, CellDir, iter_completed_cells, open_cell,
                           summarize_trials)

OLD_STORE = Path(__file__).parent / "data" / "store-v1"
OLD_CELL = "agw__regdb__standard__split1__seed0"
OLD_CONFIG_HASH = "3577bb2480f9718734654d30afe90d107f2c57e0b8ae5fea8672755a979392cd"


def _cell(**kw) -> Cell:
    base = dict(method="agw", dataset="sysu", variant="standard", split=0, seed=0, config="tiny",
                config_hash="ab" * 32, data="synthetic-tiny-s0")
    base.update(kw)
    return Cell(**base)


def test_cell_id_is_readable_and_changes_with_every_identity_part() -> None:
    cell = _cell()
    prefix = "agw__sysu__standard__split0__seed0__tiny__syn-tiny-s0__"
    assert cell.cell_id.startswith(prefix) and len(cell.cell_id) == len(prefix) + 8
    assert _cell(data="real-" + "12345678" + "9" * 56).cell_id.split("__")[6] == "real-12345678"
    variants = [_cell(method="pmt"), _cell(dataset="llcm"), _cell(variant="sysu-imb-ir20"),
                _cell(split=1), _cell(seed=1), _cell(config="paper"), _cell(config_hash="cd" * 32),
                _cell(data="synthetic-small-s0"), _cell(data="synthetic-tiny-s1"),
                _cell(data="real-" + "0" * 64)]
    ids = {c.cell_id for c in variants} | {cell.cell_id}
    assert len(ids) == len(variants) + 1
    assert Cell.from_dict(cell.to_dict()) == cell
    with pytest.raises(VibenchError, match="config hash and a data source"):
        _cell(config_hash="")


def test_summarize_trials_by_hand() -> None:
    # two trials, max rank 2: CMC mean [0.25, 0.75]; rank-5/10/20 read the last value
    trials = {"0": {"cmc": [0.5, 1.0], "mAP": 0.4, "mINP": 0.2},
              "1": {"cmc": [0.0, 0.5], "mAP": 0.2, "mINP": 0.1}}
    s = summarize_trials(trials)
    assert s == pytest.approx({"rank1": 0.25, "rank5": 0.75, "rank10": 0.75, "rank20": 0.75,
                               "mAP": 0.3, "mINP": 0.15})


def _spec(cell: Cell, protocols: dict | None = None) -> dict:
    return {"schema_version": SCHEMA_VERSION, "cell": cell.to_dict(), "protocols": protocols or {}}


def test_spec_of_another_cell_is_refused_once_the_cell_produced_something(tmp_path: Path) -> None:
    cd = CellDir(tmp_path / "cell")
    first, other = _cell(), _cell(config_hash="cd" * 32)
    cd.write_spec(_spec(first, {"p": {"version": 1}}))
    # a failed attempt that produced nothing does not freeze the directory
    cd.write_spec(_spec(other, {"q": {"version": 1}}))
    assert Cell.from_dict(cd.read_spec()["cell"]) == other
    # the same cell merges protocols
    cd.write_spec(_spec(other, {"r": {"version": 1}}))
    assert set(cd.read_spec()["protocols"]) == {"q", "r"}
    (cd.root / "metrics").mkdir()
    (cd.root / "metrics" / "q.json").write_text(json.dumps({"protocol": "q", "trials": {}}))
    with pytest.raises(VibenchError, match="belongs to another cell"):
        cd.write_spec(_spec(first))


def test_old_store_is_read_with_its_identity_migrated() -> None:
    cells = list(iter_completed_cells(OLD_STORE))
    assert len(cells) == 1
    c = cells[0]
    assert c.path.name == OLD_CELL and c.spec["migrated_from"] == 1
    assert c.cell["config"] == "tiny" and c.config_hash == OLD_CONFIG_HASH
    assert c.data_source == "synthetic-tiny-s0" and c.data_label == "synthetic tiny s0"
    assert c.cell["cell_id"].startswith(OLD_CELL + "__tiny__syn-tiny-s0__")
    doc = c.metrics["regdb-v2t"]
    assert doc["schema_version"] == SCHEMA_VERSION
    stored = json.loads((OLD_STORE / "cells" / OLD_CELL / "metrics" / "regdb-v2t.json").read_text())
    assert doc["summary"] == pytest.approx(stored["summary"])
    assert doc["summary"] == pytest.approx(summarize_trials(stored["trials"]))


def test_old_metrics_without_summary_get_one(tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(OLD_STORE, store)
    path = store / "cells" / OLD_CELL / "metrics" / "regdb-v2t.json"
    doc = json.loads(path.read_text())
    expected = doc.pop("summary")
    path.write_text(json.dumps(doc))
    (cell,) = iter_completed_cells(store)
    assert cell.metrics["regdb-v2t"]["summary"] == pytest.approx(expected)


def test_old_store_is_scored_checked_and_reported(capsys: pytest.CaptureFixture) -> None:
    from vibench.report.aggregate import load_store
    from vibench.runner.regression import store_values

    assert main(["score", str(OLD_STORE)]) == 0
    assert "1 rankings re-scored, 0 mismatches" in capsys.readouterr().out
    values, hashes = store_values(OLD_STORE)
    assert values["agw/regdb/standard/split1/regdb-v2t/rank1"] == pytest.approx(0.175)
    assert hashes == {"agw/regdb/standard/split1": OLD_CONFIG_HASH}
    summary = load_store(OLD_STORE)
    (agg,) = summary.aggregates
    assert agg.config == "tiny 3577bb24" and agg.data == "synthetic tiny s0"
    assert agg.present == {0: (1,)} and not agg.complete  # RegDB needs splits 1..10


def test_old_cell_is_adopted_only_by_its_exact_identity(tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(OLD_STORE, store)
    same = Cell("agw", "regdb", "standard", 1, 0, "tiny", OLD_CONFIG_HASH, "synthetic-tiny-s0")
    other = Cell("agw", "regdb", "standard", 1, 0, "paper", OLD_CONFIG_HASH, "synthetic-tiny-s0")
    assert not open_cell(store, other).root.exists()
    assert (store / "cells" / OLD_CELL).is_dir()
    cd = open_cell(store, same)
    assert cd.root.name == same.cell_id and cd.is_done()
    assert not (store / "cells" / OLD_CELL).exists()
    assert cd.completed_trials("regdb-v2t") == {1}
    assert json.loads(cd.spec_path.read_text())["schema_version"] == SCHEMA_VERSION


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(OLD_STORE, store)
    spec = store / "cells" / OLD_CELL / "spec.json"
    spec.write_text(json.dumps({**json.loads(spec.read_text()), "schema_version": 99}))
    with pytest.raises(VibenchError, match="schema_version 99 was written by a newer vibench"):
        list(iter_completed_cells(store))
