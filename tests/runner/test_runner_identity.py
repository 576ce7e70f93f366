"""Honest identity: a request that differs in config, data source or a --set override computes a
new cell on the same store instead of being answered from a cell made under other settings; the
same request again is skipped; the report keeps the cells apart."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from vibench.cli import main

BASE = ["run", "--methods", "mock", "--protocols", "regdb-v2t", "--regdb-splits", "1", "--device", "cpu"]
PREFIX = "mock__regdb__standard__split1__seed0__"


def _run(capsys: pytest.CaptureFixture, out: Path, *extra: str) -> str:
    """Run and return the 'N cells in ...: ...' line."""
    code = main([*BASE, "--out", str(out), *extra])
    text = capsys.readouterr().out
    assert code == 0, text
    return re.search(r"\d+ cells in [\d.]+ s: .*", text).group(0)


def _specs(out: Path) -> dict[str, dict]:
    return {p.name: json.loads((p / "spec.json").read_text()) for p in sorted((out / "cells").iterdir())}


def test_tiny_then_paper_config_computes_a_new_cell(mock_plugin: None, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    from vibench.report.aggregate import load_store

    out = tmp_path / "store"
    assert "1 done" in _run(capsys, out, "--config", "tiny")
    assert "1 done" in _run(capsys, out, "--config", "paper")
    assert "1 skipped" in _run(capsys, out, "--config", "tiny")
    specs = _specs(out)
    assert sorted(s["cell"]["config"] for s in specs.values()) == ["paper", "tiny"]
    assert sorted(n[len(PREFIX):].split("__")[0] for n in specs) == ["paper", "tiny"]
    # the mock's paper.yaml holds the same values as tiny.yaml: the name alone separates them
    assert len({s["config_hash"] for s in specs.values()}) == 1
    aggs = load_store(out).aggregates
    assert sorted(a.config.split()[0] for a in aggs) == ["paper", "tiny"]


def test_synthetic_then_another_data_root_computes_a_new_cell(mock_plugin: None, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "store"
    tree = tmp_path / "regdb-seed1"
    assert main(["data", "synth", "--dataset", "regdb", "--root", str(tree), "--seed", "1"]) == 0
    capsys.readouterr()
    assert "1 done" in _run(capsys, out)
    assert "1 done" in _run(capsys, out, "--data-root", f"regdb={tree}")
    assert "1 skipped" in _run(capsys, out, "--data-root", f"regdb={tree}")
    assert "1 skipped" in _run(capsys, out)
    specs = _specs(out)
    data = sorted(s["cell"]["data"] for s in specs.values())
    assert data[0].startswith("real-") and data[1] == "synthetic-tiny-s0"
    real = next(s for s in specs.values() if s["data"]["kind"] == "real")
    assert real["cell"]["data"] == "real-" + real["data"]["manifest_hash"]
    assert real["data"]["root"] == str(tree.resolve())


def test_a_set_override_computes_a_new_cell(mock_plugin: None, tmp_path: Path,
                                            capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "store"
    assert "1 done" in _run(capsys, out)
    assert "1 done" in _run(capsys, out, "--set", "optimizer.lr=0.01")
    assert "1 skipped" in _run(capsys, out, "--set", "optimizer.lr=0.01")
    specs = _specs(out)
    assert sorted(s["config"]["optimizer"]["lr"] for s in specs.values()) == [0.01, 0.05]
    assert len({s["cell"]["config_hash"] for s in specs.values()}) == 2
    assert all(n.startswith(PREFIX + "tiny__syn-tiny-s0__") for n in specs)


def test_planning_separates_synthetic_scales_without_training(mock_plugin: None) -> None:
    from vibench.runner.matrix import RunOptions, plan

    ids = {scale: plan(RunOptions(methods="mock", protocols="regdb-v2t", regdb_splits=(1,),
                                  synthetic_scale=scale))[0].cell for scale in ("tiny", "small")}
    assert ids["tiny"].data == "synthetic-tiny-s0" and ids["small"].data == "synthetic-small-s0"
    assert ids["tiny"].cell_id != ids["small"].cell_id
    assert ids["tiny"].config_hash == ids["small"].config_hash
