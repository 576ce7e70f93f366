"""``vibench protocols list|show``: output shape and user errors (exit code 2)."""
from __future__ import annotations

import json

import pytest

import vibench.commands.protocols
import vibench.data
from vibench.cli import main
from vibench.protocols import build_lists, get_protocol, list_protocols


def _run(capsys, *argv):
    code = main(["protocols", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_json(capsys):
    code, out, _ = _run(capsys, "list", "--json")
    assert code == 0
    data = json.loads(out)
    rows = {r["name"]: r for r in data["protocols"]}
    assert list(rows) == [s.name for s in list_protocols()]
    row = rows["regdb-v2t"]
    assert {k: row[k] for k in ("dataset", "family", "version", "trials", "rule", "cmc")} == {
        "dataset": "regdb", "family": "regdb", "version": 1, "trials": list(range(1, 11)),
        "rule": "regdb", "cmc": "image"}
    assert rows["sysu-imb-ir10"]["rule"] is None and rows["sysu-imb-ir10"]["kind"] == "training"
    assert set(data["groups"]) == {"sysu", "regdb", "llcm", "mixed", "unimodal", "imbalance", "all"}


def test_list_table_and_group(capsys):
    code, out, _ = _run(capsys, "list", "--group", "llcm")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].split()[:3] == ["name", "dataset", "family"]
    assert [ln.split()[0] for ln in lines[1:]] == ["llcm-v2i", "llcm-i2v", "llcm-v2i-deen-compat"]
    code, _, err = _run(capsys, "list", "--group", "mixd")
    assert code == 2 and "did you mean 'mixed'" in err


@pytest.fixture
def fake_loader(monkeypatch, indexes):
    calls = []

    def load(name, root):
        calls.append((name, str(root)))
        return indexes[name]

    monkeypatch.setattr(vibench.commands.protocols, "load_dataset", load)
    return calls


def test_show_json(capsys, fake_loader, indexes):
    code, out, err = _run(capsys, "show", "sysu-mix-i", "--root", "/data/SYSU", "--trial", "3", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert fake_loader == [("sysu", "/data/SYSU")]
    expected = build_lists(get_protocol("sysu-mix-i"), indexes["sysu"], 3)
    assert data["sha256"] == expected.sha256 and data["trial"] == 3
    assert data["protocol"]["name"] == "sysu-mix-i" and data["protocol"]["rule"] == "mix"
    assert data["dataset"] == {"root": "/data/SYSU", "synthetic": False}
    for side in ("query", "gallery"):
        assert data[f"num_{side}"] == len(data[side])
        for entry in data[side]:
            assert set(entry) == {"path", "pid", "cam", "modality"}
            assert entry["modality"] in ("visible", "infrared")
            assert not entry["path"].startswith("/") and "\\" not in entry["path"]
    assert data["query_gallery_index"] == expected.query_gallery_index.tolist()


def test_show_regdb_trial_is_split(capsys, fake_loader):
    code, out, _ = _run(capsys, "show", "regdb-t2v", "--root", "/r", "--trial", "10", "--json")
    assert code == 0 and json.loads(out)["trial"] == 10
    code, _, err = _run(capsys, "show", "regdb-t2v", "--root", "/r", "--trial", "0")
    assert code == 2 and "no trial 0" in err and "split numbers are 1, 2, 3" in err


def test_show_text_and_training_variant(capsys, fake_loader):
    code, out, _ = _run(capsys, "show", "llcm-i2v", "--root", "/l")
    assert code == 0 and "trial 0:" in out and "lists sha256" in out
    code, out, _ = _run(capsys, "show", "sysu-imb-ir20", "--root", "/s", "--json")
    data = json.loads(out)
    assert code == 0 and data["num_removed"] == len(data["removed"]) > 0
    code, _, err = _run(capsys, "show", "sysu-imb-ir20", "--root", "/s", "--trial", "1")
    assert code == 2 and "training variant" in err


def test_show_unknown_name(capsys):
    code, _, err = _run(capsys, "show", "llcm-v2l", "--root", "/x")
    assert code == 2 and "unknown protocol 'llcm-v2l'" in err and "did you mean" in err


def test_show_without_root_uses_synthetic_or_explains(capsys, monkeypatch, fake_loader, tmp_path):
    """No --root: the synthetic generator provides the tree."""
    monkeypatch.setattr(vibench.commands.protocols, "ensure_synthetic", lambda d, s, seed: tmp_path / f"{d}-{s}-{seed}")
    code, out, err = _run(capsys, "show", "sysu-all-single", "--dataset-scale", "small", "--json")
    assert code == 0, err
    assert json.loads(out)["dataset"] == {"root": str(tmp_path / "sysu-small-0"), "synthetic": True,
                                          "scale": "small", "seed": 0}
