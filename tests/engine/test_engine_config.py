"""Method configs: named configs, dataset sections, dotted overrides, errors."""
from __future__ import annotations

import pytest

from vibench.engine.api import parse_stages
from vibench.engine.config import apply_override, config_hash, load_config, resolve_config
from vibench.errors import VibenchError


def test_named_configs_and_dataset_section(tmp_path):
    cfg = load_config("agw", "paper", dataset="sysu")
    assert cfg["model"]["backbone"] == "resnet50" and cfg["input"]["size"] == [288, 144]
    assert cfg["dataset"] == "sysu" and "datasets" not in cfg
    f = tmp_path / "c.yaml"
    f.write_text("method: agw\ninput: {size: [8, 4]}\noptimizer: {lr: 0.1}\nschedule: {epochs: 3}\n"
                 "datasets:\n  regdb: {schedule: {epochs: 5}}\n")
    assert load_config("agw", f, dataset="regdb")["schedule"]["epochs"] == 5
    assert load_config("agw", f, dataset="sysu")["schedule"]["epochs"] == 3


def test_dotted_overrides():
    cfg = load_config("agw", "tiny", overrides=["schedule.epochs=2", "model.non_local=[0,0,0,0]", "augment.visible.1.p=0.25"])
    assert cfg["schedule"]["epochs"] == 2 and cfg["model"]["non_local"] == [0, 0, 0, 0]
    assert cfg["augment"]["visible"][1]["p"] == 0.25
    c = {"a": {"b": 1}}
    apply_override(c, "a.c.d=x")
    assert c == {"a": {"b": 1, "c": {"d": "x"}}}
    with pytest.raises(VibenchError, match="key.sub=value"):
        apply_override(c, "a.b")
    with pytest.raises(VibenchError, match="not a mapping"):
        apply_override(c, "a.b.c=1")
    assert config_hash(load_config("agw", "tiny")) != config_hash(load_config("agw", "tiny", overrides=["schedule.epochs=2"]))


def test_config_errors(tmp_path):
    with pytest.raises(VibenchError, match="did you mean 'tiny'"):
        load_config("agw", "tinny")
    typo = tmp_path / "typo.yaml"
    typo.write_text("method: agw\nschedul: {epochs: 2}\n")
    with pytest.raises(VibenchError, match=r"schedul: unknown key \(did you mean 'schedule'\?\)"):
        load_config("agw", typo)
    with pytest.raises(VibenchError, match="did you mean 'regdb'"):
        resolve_config({"datasets": {"regbd": {}}})
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(VibenchError, match="not valid YAML"):
        load_config("agw", bad)


def test_stages_merge_over_top_level_sections():
    cfg = {
        "optimizer": {"name": "adamw", "lr": 1e-3}, "schedule": {"name": "constant", "epochs": 4},
        "sampler": {"ids_per_batch": 8}, "augment": {"visible": []},
        "stages": [{"name": "s1"}, {"name": "s2", "epochs": 2, "optimizer": {"lr": 1e-4}, "freeze": ["encoder"],
                                    "sampler": {"ids_per_batch": 4}}],
    }
    s1, s2 = parse_stages(cfg)
    assert (s1.name, s1.epochs, s1.optimizer["lr"], s1.freeze) == ("s1", 4, 1e-3, ())
    assert (s2.epochs, s2.optimizer, s2.freeze, s2.sampler) == (2, {"name": "adamw", "lr": 1e-4}, ("encoder",), {"ids_per_batch": 4})
    with pytest.raises(VibenchError, match="duplicate stage"):
        parse_stages({"schedule": {"epochs": 1}, "stages": [{"name": "a"}, {"name": "a"}]})
    with pytest.raises(VibenchError, match="epochs must be"):
        parse_stages({"stages": [{"name": "a"}]})
