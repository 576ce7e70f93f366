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


def test_train_command_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VIBENCH_CACHE", str(tmp_path / "cache"))
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code = main(["train", "--method", "agw", "--dataset", "sysu", "--device", "cpu", "--out", str(tmp_path / "out"),
                     "--protocols", "sysu-all-single", "--quiet", "--set", "schedule.epochs=1", "--set", "sampler.iterations=2"])
    finally:
        torch.set_num_threads(n)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "sysu-all-single" in out
    rec = json.loads((tmp_path / "out" / "agw" / "sysu" / "split-0" / "seed-0" / "results.json").read_text())
    trials = rec["protocols"]["sysu-all-single"]["trials"]
    assert len(trials) == 10 and all(0.0 <= t["cmc"][0] <= 1.0 for t in trials.values())
    assert rec["params"]["registered"] > rec["params"]["effective"] > 0
    assert (tmp_path / "out" / "agw" / "sysu" / "split-0" / "seed-0" / "model.pt").exists()
