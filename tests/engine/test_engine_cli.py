"""``vibench methods list --json`` and ``vibench train``."""
from __future__ import annotations

import json

import pytest
import torch

from vibench.cli import main


def test_methods_list_json(capsys):
    assert main(["methods", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_name = {r["name"]: r for r in rows}
    assert {"agw", "pmt"} <= set(by_name)
    for r in rows:
        assert "error" not in r, r
        assert set(r["params"]) == {"sysu", "regdb", "llcm"} and all(isinstance(v, int) and v > 0 for v in r["params"].values())
    # paper configs: classifier rows differ by dataset (395 / 206 / 713 classes)
    assert by_name["agw"]["params"] == {"sysu": 31_689_088, "regdb": 31_689_088 - 2048 * 189, "llcm": 31_689_088 + 2048 * 318}
    assert by_name["pmt"]["params"]["sysu"] == 86_114_304
    assert by_name["pmt"]["params"]["regdb"] == 86_114_304 - 768 * 189


def test_methods_list_unknown_subcommand(capsys):
    assert main(["methods", "lsit"]) != 0


def test_train_command_is_a_one_cell_run_into_the_store(tmp_path, monkeypatch, capsys):
    from vibench.store import iter_completed_cells

    monkeypatch.setenv("VIBENCH_CACHE", str(tmp_path / "cache"))
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    args = ["train", "--method", "agw", "--dataset", "sysu", "--device", "cpu", "--out", str(tmp_path / "out"),
            "--protocols", "sysu-all-single", "--set", "schedule.epochs=1", "--set", "sampler.iterations=2"]
    try:
        code = main(args)
        out = capsys.readouterr().out
        assert code == 0, out
        assert "1 done" in out
        assert main(args) == 0  # the same request again: answered from the store
        assert "1 skipped" in capsys.readouterr().out
    finally:
        torch.set_num_threads(n)
    (cell,) = list(iter_completed_cells(tmp_path / "out"))
    assert cell.path.name.startswith("agw__sysu__standard__split0__seed0__tiny__syn-tiny-s0__")
    assert cell.spec["config"]["schedule"]["epochs"] == 1
    trials = cell.metrics["sysu-all-single"]["trials"]
    assert len(trials) == 10 and all(0.0 <= t["cmc"][0] <= 1.0 for t in trials.values())
    assert cell.model["params"]["registered"] > cell.model["params"]["effective"] > 0
    assert (cell.path / "train" / "model.pt").exists()
    assert (cell.path / "rankings" / "sysu-all-single" / "trial-9.npz").exists()


def test_train_rejects_a_split_the_dataset_does_not_have(capsys):
    assert main(["train", "--method", "agw", "--dataset", "sysu", "--split", "3", "--device", "cpu"]) == 2
    assert "sysu has only split 0, not 3" in capsys.readouterr().err
