"""Weights in a run (vibench.runner.weights): per-backbone files in one run, the refusal of a
paper config left at random initialisation, the choice recorded in the cell spec and shown in
the report, and the config hash that follows the initialisation. No network: generated files."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from vibench.cli import main
from vibench.engine import pretrained as pw
from vibench.engine.config import load_config
from vibench.errors import VibenchError
from vibench.io import stable_hash
from vibench.protocols import resolve_protocols
from vibench.registry import get_method_class
from vibench.runner.cells import plan_cells
from vibench.runner.matrix import RunOptions, plan, run_matrix
from vibench.runner.weights import WeightChoices, planned_init

AGW = get_method_class("agw")


def _file(folder: Path, name: str, seed: int) -> tuple[Path, str]:
    torch.manual_seed(seed)
    path = folder / name
    torch.save({"w": torch.randn(4)}, path)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("VIBENCH_OFFLINE", "1")


@pytest.fixture
def old_style_paper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """AGW with a paper.yaml that states no model.init (as every paper.yaml did before): the
    tiny architecture, so a cell trains in seconds."""
    folder = tmp_path / "agw-configs"
    folder.mkdir()
    tiny = (AGW.config_dir / "tiny.yaml").read_text()
    assert "  init: random\n" in tiny
    (folder / "paper.yaml").write_text(tiny.replace("  init: random\n", ""))
    (folder / "tiny.yaml").write_text(tiny)
    monkeypatch.setattr(AGW, "config_dir", folder)
    return folder / "paper.yaml"


def test_a_paper_config_without_weights_refuses_to_start(offline, old_style_paper, capsys) -> None:
    cfg = load_config("agw", "paper", dataset="regdb")
    assert cfg["model"]["init"] == "random"
    with pytest.raises(VibenchError) as exc:
        planned_init("agw", "paper", cfg, (), False)
    text = str(exc.value)
    for part in ("agw", str(old_style_paper), "random initialisation", "no ImageNet file is known for backbone resnet_micro",
                 "--allow-random-init", "--set model.init=random"):
        assert part in text, part
    # a ResNet-50 paper config stating random (in its file, not on the command line)
    r50 = {**cfg, "model": {**cfg["model"], "backbone": "resnet50"}}
    with pytest.raises(VibenchError) as exc:
        planned_init("agw", "paper", r50, (), False)
    for part in ("set model.init: imagenet", "resnet50-0676ba61.pth", pw.KNOWN_WEIGHTS["resnet50"].sha256,
                 str(pw.hub_checkpoints()), "--weights resnet50=PATH"):
        assert part in str(exc.value), part
    # the run stops before planning a single computation (dry run included)
    opts = RunOptions(methods="agw", protocols="regdb-v2t", config="paper", regdb_splits=(1,), dry_run=True,
                      out=Path("unused"))
    with pytest.raises(VibenchError, match="would train from random initialisation"):
        run_matrix(opts)
    # tiny configs say random and are not paper configs: no refusal, nothing "allowed"
    assert planned_init("agw", "tiny", load_config("agw", "tiny"), (), False) == {
        "kind": "random", "arch": "resnet_micro", "label": "random"}


def test_the_real_paper_configs_name_their_weights(offline) -> None:
    """Every shipped paper config asks for ImageNet weights; without the file (offline, empty
    cache) the error names it, its hash and the cache folder."""
    for method in ("agw", "aminet", "tmpa", "mixer", "pmcm", "pmt", "bit"):
        cfg = load_config(method, "paper", dataset="sysu")
        arch = "vit_base" if method in ("pmt", "bit") else "resnet50"
        assert (cfg["model"]["init"], cfg["model"].get("backbone", cfg["model"].get("size"))) == ("imagenet", arch)
        entry = pw.KNOWN_WEIGHTS[arch]
        with pytest.raises(VibenchError) as exc:
            planned_init(method, "paper", cfg, (), False)
        assert entry.file in str(exc.value) and entry.expected in str(exc.value)
        assert str(pw.hub_checkpoints()) in str(exc.value)


def test_explicit_random_init_is_allowed_and_recorded(offline, old_style_paper) -> None:
    cfg = load_config("agw", "paper", dataset="regdb")
    assert planned_init("agw", "paper", cfg, (), True) == {
        "kind": "random", "arch": "resnet_micro", "allowed": "--allow-random-init",
        "label": "random (explicitly allowed: --allow-random-init)"}
    with_set = planned_init("agw", "paper", cfg, ("model.init=random",), False)
    assert with_set["allowed"] == "--set model.init=random"


def test_random_init_run_records_the_choice_in_spec_and_report(offline, old_style_paper, tmp_path, capsys) -> None:
    from vibench.report.aggregate import load_store
    from vibench.report.tables import provenance_table, provenance_text

    out = tmp_path / "store"
    args = ["run", "--methods", "agw", "--protocols", "regdb-v2t", "--regdb-splits", "1", "--device", "cpu",
            "--config", "paper", "--out", str(out), "--set", "schedule.epochs=1"]
    assert main(args) == 2
    assert "would train from random initialisation" in capsys.readouterr().err
    assert not out.exists()
    assert main([*args, "--allow-random-init"]) == 0, capsys.readouterr().out
    spec = json.loads(next((out / "cells").glob("*/spec.json")).read_text())
    assert spec["init"] == {"kind": "random", "arch": "resnet_micro", "allowed": "--allow-random-init",
                            "label": "random (explicitly allowed: --allow-random-init)"}
    agg = load_store(out).aggregates[0]
    assert "init: random (explicitly allowed: --allow-random-init)" in provenance_text(agg)
    table = provenance_table([agg])
    assert table.rows[0][table.header.index("Init")].text == "random (explicitly allowed: --allow-random-init)"


def test_resnet_and_vit_weights_land_on_their_methods(offline, tmp_path, monkeypatch) -> None:
    r50, r50_sha = _file(tmp_path, "a.pth", 0)
    vitb, vit_sha = _file(tmp_path, "b.pth", 1)
    monkeypatch.setitem(pw.KNOWN_WEIGHTS, "resnet50", pw.KnownWeights("resnet50", "test r50", "r50.pth", "u", r50_sha))
    monkeypatch.setitem(pw.KNOWN_WEIGHTS, "vit_base", pw.KnownWeights("vit_base", "test vit", "vit.pth", "u", vit_sha))
    choices = WeightChoices.parse([f"resnet50={r50}", f"vit_base={vitb}"])
    plans = plan(RunOptions(methods="agw,pmt,bit,tmpa", protocols="sysu-all-single", config="paper", max_trials=1,
                            weights=(f"resnet50={r50}", f"vit_base={vitb}")))
    assert choices.files == WeightChoices.parse([f"resnet50={r50}", f"vit_base={vitb}"]).files
    got = {}
    for p in plans:
        cfg = load_config(p.cell.method, "paper", dataset="sysu", overrides=p.overrides)
        assert stable_hash(cfg) == p.cell.config_hash
        record = planned_init(p.cell.method, "paper", cfg, p.overrides, False)
        got[p.cell.method] = (record["file"], record["sha256"], record["source"])
    assert got == {"agw": (str(r50), r50_sha, "local file"), "tmpa": (str(r50), r50_sha, "local file"),
                   "pmt": (str(vitb), vit_sha, "local file"), "bit": (str(vitb), vit_sha, "local file")}
    # the same files through --weights-dir, under the table's names
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "r50.pth").write_bytes(r50.read_bytes())
    only_dir = plan_cells(["agw"], resolve_protocols("sysu-all-single"), config="paper", max_trials=1,
                          weights=WeightChoices.parse([], tmp_path / "dir"))
    assert only_dir[0].overrides == (f'model.weights="{tmp_path / "dir" / "r50.pth"}"',)
    with pytest.raises(VibenchError, match="holds no vit.pth"):
        plan_cells(["pmt"], resolve_protocols("sysu-all-single"), config="paper", max_trials=1,
                   weights=WeightChoices.parse([], tmp_path / "dir"))
    unused = WeightChoices.parse([f"resnet5={r50}"])
    plan_cells(["agw"], resolve_protocols("sysu-all-single"), config="paper", max_trials=1, weights=unused)
    with pytest.raises(VibenchError, match=r"no selected method uses backbone 'resnet5'.*did you mean 'resnet50'"):
        unused.check_used()
    with pytest.raises(VibenchError, match="expected BACKBONE=PATH"):
        WeightChoices.parse([str(r50)])


def test_the_config_hash_follows_the_initialisation(offline, tmp_path) -> None:
    path, _ = _file(tmp_path, "w.pth", 0)
    kinds = {
        "imagenet": load_config("agw", "paper", dataset="regdb"),
        "imagenet+file": load_config("agw", "paper", dataset="regdb", overrides=[f"model.weights={path}"]),
        "file": load_config("agw", "paper", dataset="regdb", overrides=["model.init=file", f"model.weights={path}"]),
        "random": load_config("agw", "paper", dataset="regdb", overrides=["model.init=random"]),
    }
    assert len({stable_hash(c) for c in kinds.values()}) == 4
    specs = resolve_protocols("regdb-v2t")
    ids = {k: plan_cells(["agw"], specs, config="paper", overrides=o, regdb_splits=(1,))[0].cell
           for k, o in (("imagenet", ()), ("random", ("model.init=random",)))}
    assert ids["imagenet"].config_hash == stable_hash(kinds["imagenet"])
    assert ids["imagenet"].cell_id != ids["random"].cell_id
