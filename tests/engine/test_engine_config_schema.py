"""Typed method configs: every key, type and range is checked before any work starts, errors name
the file or the --set item and the dotted key path; the resolved dict is the schema's defaults
under the file's values (so identical configs hash identically); input.size is the one image size."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from vibench.engine.config import config_hash, load_config, upgrade_config
from vibench.errors import VibenchError
from vibench.registry import available_methods, get_method_class

METHODS_DIR = Path(__file__).resolve().parents[2] / "methods" / "vibench_methods" / "configs"
BEFORE = Path(__file__).parent / "data" / "resolved_configs_v1.json"


def _error(method: str, config: str = "tiny", overrides: tuple[str, ...] = (), dataset: str = "sysu") -> str:
    with pytest.raises(VibenchError) as info:
        load_config(method, config, dataset=dataset, overrides=list(overrides))
    return str(info.value)


def test_unknown_nested_key_from_set_is_refused_with_did_you_mean():
    msg = _error("agw", overrides=("optimizer.lrr=0.1",))
    assert "optimizer.lrr: unknown key (did you mean 'lr'?)" in msg
    assert "[from --set optimizer.lrr=0.1]" in msg and "methods/vibench_methods/configs/agw/tiny.yaml" in msg
    # deeper: a method section's sub-section
    msg = _error("aminet", overrides=("aminet.pesam.n_scale=3",))
    assert "aminet.pesam.n_scale: unknown key (did you mean 'n_scales'" in msg


def test_unknown_key_in_a_file_names_the_file_and_path(tmp_path):
    f = tmp_path / "agw.yaml"
    f.write_text("method: agw\noptimizer: {lr: 0.1}\nschedule: {epochs: 2, warmup_epoch: 1}\n")
    msg = _error("agw", str(f))
    assert str(f) in msg and "schedule.warmup_epoch: unknown key (did you mean 'warmup_epochs'" in msg
    assert "[from --set" not in msg


def test_wrong_types_are_refused():
    assert "schedule.epochs: must be an integer, got 'two'" in _error("agw", overrides=("schedule.epochs=two",))
    assert "schedule.epochs: must be an integer, got 2.5" in _error("agw", overrides=("schedule.epochs=2.5",))
    assert "amp: must be true or false, got 1" in _error("agw", overrides=("amp=1",))
    assert "input.size: must be a list of 2" in _error("agw", overrides=("input.size=[64,32,3]",))
    msg = _error("agw", overrides=("loss.triplet=hrad",))
    assert "loss.triplet: must be one of 'wrt', 'hard', 'none', got 'hrad' (did you mean 'hard'?)" in msg


def test_out_of_range_values_are_refused():
    assert "optimizer.lr: must be > 0, got -0.1" in _error("agw", overrides=("optimizer.lr=-0.1",))
    assert "schedule.epochs: must be >= 1, got 0" in _error("agw", overrides=("schedule.epochs=0",))
    assert "sampler.ids_per_batch: must be > 0, got 0" in _error("agw", overrides=("sampler.ids_per_batch=0",))
    assert "input.size: must be > 0, got -32" in _error("agw", overrides=("input.size=[64,-32]",))
    assert "loss.id_weight: must be > 0, got -1.0" in _error("agw", overrides=("loss.id_weight=-1",))
    # a stage's own sections are checked merged over the top level
    msg = _error("bit", overrides=("stages.1.optimizer.lr=-0.001",))
    assert "stages[1].optimizer.lr: must be > 0, got -0.001" in msg
    # several problems are reported together
    msg = _error("agw", overrides=("optimizer.lr=0", "schedule.epochs=0"))
    assert "2 problem(s)" in msg


def test_vit_size_must_fit_the_patch_grid():
    # non-overlapping patches (stride = patch size 8): 60 is not a multiple of 8
    msg = _error("pmt", overrides=("model.stride=8", "input.size=[60,32]"))
    assert "input.size: height 60 is not divisible by model.patch_size 8" in msg
    assert "[from --set input.size=[60,32]]" in msg
    assert "width 4 is smaller than model.patch_size 8" in _error("pmt", overrides=("input.size=[64,4]",))
    # overlapping patches (8 / 6) floor the grid: any size >= the patch is accepted
    assert load_config("pmt", "tiny", overrides=["input.size=[62,30]"])["input"]["size"] == [62, 30]


def test_retired_duplicate_size_keys_point_to_input_size():
    assert "test.size: is not a config key: the image size is input.size" in _error("agw", overrides=("test.size=[32,16]",))
    assert "model.img_size: is not a config key: the image size is input.size" in _error(
        "pmt", overrides=("model.img_size=[32,16]",))


def test_python_object_tag_is_refused(tmp_path):
    f = tmp_path / "evil.yaml"
    f.write_text("method: agw\nmodel: !!python/object/apply:os.system ['echo hi']\n")
    msg = _error("agw", str(f))
    assert str(f) in msg and "refused YAML tag (line 2)" in msg and "python/object" in msg
    msg = _error("agw", overrides=("model.weights=!!python/object/apply:os.getcwd []",))
    assert "config override 'model.weights=" in msg and "refused YAML tag" in msg


def _shipped() -> list[tuple[str, str]]:
    out = []
    for method in sorted(available_methods()):
        for f in sorted((METHODS_DIR / method).glob("*.yaml")):
            if f.stem != "metafile":
                out.append((method, f.stem if f.stem in ("tiny", "paper") else str(f)))
    return out


@pytest.mark.parametrize("method,config", _shipped())
def test_every_shipped_config_validates(method, config):
    for dataset in ("sysu", "regdb", "llcm"):
        cfg = load_config(method, config, dataset=dataset)
        # the resolved dict is a fixed point: resolving it again changes nothing
        assert get_method_class(method).resolve_config(cfg, "resolved") == cfg
        get_method_class(method)(cfg, dataset)


# values changed on purpose after v1 was written (a fidelity fix), per (method, config): dotted paths
CHANGED_SINCE_V1 = {
    ("aminet", "paper"): {"description", "model.non_local"},  # issue 14: §4.1's non-local blocks
    # issue 14: PMT's order of the infrared jitter/blur; the LayerNorm that makes Eq. 6 trainable
    ("bit", "paper"): {"augment.infrared", "bit.decoder.final_norm"},
    ("bit", "tiny"): {"description", "bit.decoder.dim", "bit.decoder.final_norm"},
}


def _set_path(d: dict, path: str, value) -> None:
    *head, last = path.split(".")
    for k in head:
        d = d[k]
    d[last] = value


def _get_path(d: dict, path: str):
    for k in path.split("."):
        d = d[k]
    return d


def test_schema_defaults_reproduce_the_previously_resolved_configs():
    """The configs resolved before the typed schema (tests/engine/data/resolved_configs_v1.json,
    written by the previous load_config for every shipped config x dataset), completed with the
    schema's defaults, equal today's resolved configs value for value and hash for hash. Every
    value the old dict held is kept, except test.size, which equalled input.size everywhere and
    is now input.size alone (docs/training.md), and model.init: the v1 paper configs' null
    weights meant random initialisation, which the paper configs now replace with imagenet
    (docs/training.md, "Backbone initialisation")."""
    before = json.loads(BEFORE.read_text())
    assert len(before) == 48

    def leaves(d, p=""):
        if isinstance(d, dict):
            for k, v in d.items():
                yield from leaves(v, f"{p}.{k}" if p else k)
        else:
            yield p, d

    for key, rec in before.items():
        method, config, dataset = key.split("|")
        now = load_config(method, config, dataset=dataset)
        completed = get_method_class(method).resolve_config(upgrade_config(rec["config"]), key)
        assert completed["model"]["init"] == "random" and not rec["config"]["model"].get("weights")
        if config == "paper":
            assert now["model"]["init"] == "imagenet", key
            now = {**now, "model": {**now["model"], "init": "random"}}
        changed = CHANGED_SINCE_V1.get((method, config), set())
        for path in changed:
            _set_path(completed, path, _get_path(now, path))
        assert completed == now, key
        if not changed:
            assert config_hash(completed) == config_hash(now)
        flat = dict(leaves(now))
        for path, value in leaves(rec["config"]):
            if path == "test.size":
                assert value == now["input"]["size"]
            elif path in changed:
                continue
            elif path == "stages":  # stage entries gain their empty defaults
                assert [{k: s[k] for k in old} for s, old in zip(now["stages"], value)] == value
            else:
                assert flat[path] == value, (key, path)


def test_hash_is_a_function_of_the_resolved_values():
    base = load_config("agw", "tiny", dataset="sysu")
    # stating a default, or an integer for a float, resolves (and hashes) the same
    same = load_config("agw", "tiny", dataset="sysu", overrides=["optimizer.eps=1.0e-8", "model.gem_p=3", "sampler.with_replacement=true"])
    assert same == base and config_hash(same) == config_hash(base)
    assert config_hash(load_config("agw", "tiny", dataset="sysu", overrides=["model.gem_p=4"])) != config_hash(base)


def test_runner_validates_every_planned_cell_before_the_first(tmp_path):
    from vibench.runner.matrix import RunOptions, run_matrix

    # valid for AGW (planned first), invalid for PMT: nothing may start
    opts = RunOptions(methods="agw,pmt", protocols="sysu-all-single", overrides=("input.size=[6,4]",),
                      out=tmp_path / "store")
    with pytest.raises(VibenchError, match=r"pmt/tiny.yaml: 2 problem\(s\)\n  input.size: height 6 is smaller"):
        run_matrix(opts)
    assert not (tmp_path / "store").exists()


@pytest.mark.usefixtures("one_thread")
def test_pmt_trains_and_extracts_at_the_set_input_size(tmp_path):
    """--set input.size=[288,144] on PMT used to build the ViT at 288x144 and extract at test.size
    64x32 (a crash); now both read input.size."""
    from vibench.engine.extract import extract_features
    from vibench.engine.toy import make_toy_dataset
    from vibench.engine.trainer import train

    index = make_toy_dataset(tmp_path / "toy", train_ids=2, test_ids=1, per_modality=2, size=(32, 16))
    cfg = load_config("pmt", "tiny", dataset="sysu", overrides=[
        "input.size=[288,144]", "sampler.ids_per_batch=2", "sampler.images_per_id=1", "sampler.iterations=1",
        "schedule.epochs=1", "schedule.warmup_epochs=0", "pmt.pl_epochs=0", "test.batch_size=2"])
    trained = train("pmt", cfg, index, 0, seed=0, device="cpu", workdir=tmp_path / "work", progress=False)
    assert trained.model.backbone.patch_embed.img_size == (288, 144)
    assert len(trained.history) == 1 and trained.history[0]["iterations"] == 1
    records = list(index.test(0))
    feats = extract_features(trained.method, trained.model, records, index.root, trained.cfg, "cpu")
    assert feats["feat"].shape == (len(records), trained.model.feat_dim)
    assert torch.isfinite(feats["feat"]).all()
