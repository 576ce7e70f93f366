"""Protocol files: validation errors, the catalogue, names, groups and did-you-mean."""
from __future__ import annotations

import json
import textwrap

import pytest

from vibench.errors import VibenchError
from vibench.paths import PROTOCOLS_DIR
from vibench.protocols import get_protocol, list_protocols, protocol_groups, resolve_protocols
from vibench.protocols.catalog import Catalog
from vibench.protocols.spec import RULES, load_protocol_file

REQUIRED = [
    "sysu-all-single", "sysu-all-multi", "sysu-indoor-single", "sysu-indoor-multi",
    "regdb-v2t", "regdb-t2v", "llcm-v2i", "llcm-i2v", "llcm-v2i-deen-compat",
    "sysu-all-single-official", "sysu-all-multi-official",
    "sysu-indoor-single-official", "sysu-indoor-multi-official",
    *[f"sysu-{s}-{q}" for s in ("mix", "mixcam", "mixcamid", "mixid", "mixp", "cross") for q in "iv"],
    *[f"{d}-{s}-{q}" for d in ("regdb", "llcm") for s in ("mix", "mixid") for q in "iv"],
    "sysu-i2i", "sysu-v2v", "llcm-i2i", "llcm-v2v", "regdb-t2t", "regdb-v2v",
    "sysu-imb-ir10", "sysu-imb-ir20", "sysu-imb-vis10", "sysu-imb-vis20",
]

GOOD = """\
family: fam
schema_version: 1
defaults:
  version: 1
  dataset: sysu
  kind: evaluation
  query: {modalities: [infrared], cams: [3, 6]}
  gallery: {modalities: [visible], cams: [1, 2, 4, 5]}
  sampler: {kind: single-shot}
  trials: [0, 1]
  rule: sysu
  cmc: unique
  max_rank: 20
protocols:
  - name: p-one
    description: one
"""


def _write(tmp_path, text, name="fam.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_repository_files_define_every_required_protocol():
    names = [s.name for s in list_protocols()]
    assert len(names) == len(set(names))
    missing = [n for n in REQUIRED if n not in names]
    assert not missing
    for spec in list_protocols():
        assert spec.version >= 1 and spec.description
        if spec.kind == "evaluation":
            assert spec.rule in RULES and spec.cmc in ("unique", "image") and spec.max_rank == 20
            assert spec.trials == (tuple(range(1, 11)) if spec.dataset == "regdb" else tuple(range(10)))
        else:
            assert spec.family == "imbalance" and spec.evaluate_with


def test_standard_protocol_fields():
    s = get_protocol("sysu-all-single")
    assert (s.dataset, s.rule, s.cmc, s.sampler.kind, s.sampler.shots) == ("sysu", "sysu", "unique", "single-shot", 1)
    assert s.query.modalities == ("infrared",) and s.query.cams == (3, 6)
    assert s.gallery.cams == (1, 2, 4, 5)
    m = get_protocol("sysu-all-multi")
    assert (m.sampler.kind, m.sampler.shots) == ("multi-shot", 10)
    assert get_protocol("sysu-indoor-single").gallery.cams == (1, 2)
    r = get_protocol("regdb-v2t")
    assert (r.rule, r.cmc, r.trial_source, r.trials) == ("regdb", "image", "split", tuple(range(1, 11)))
    llcm = get_protocol("llcm-v2i-deen-compat")
    assert llcm.sampler.applies_to == "query" and "deen-testpy-compat" in llcm.flags
    imb = get_protocol("sysu-imb-vis20")
    assert (imb.kind, imb.reduction.modality, imb.reduction.fraction) == ("training", "visible", 0.2)
    assert "sysu-all-single" in imb.evaluate_with


def test_good_file_loads(tmp_path):
    (spec,) = load_protocol_file(_write(tmp_path, GOOD))
    assert spec.name == "p-one" and spec.family == "fam" and spec.trials == (0, 1)


@pytest.mark.parametrize("old,new,pattern", [
    ("rule: sysu", "rule: mixid", r"rule: 'mixid' is not one of .*did you mean 'mix-id'"),
    ("sampler: {kind: single-shot}", "sampler: {kind: random}", r"sampler.kind: 'random' is not one of all, single-shot, multi-shot, official"),
    ("  cmc: unique\n", "", r"missing field 'cmc'"),
    ("cmc: unique", "cmc: identity", r"cmc: 'identity' is not one of unique, image"),
    ("family: fam", "family: other", r"family: 'other' must equal the file name stem 'fam'"),
    ("schema_version: 1", "schema_version: 2", r"schema_version: expected 1"),
    ("cams: [1, 2, 4, 5]", "cams: [1, 3]", r"gallery.cams: camera 3 does not exist for sysu in modalities \['visible'\]"),
    ("dataset: sysu", "dataset: market", r"dataset: 'market' is not one of sysu, regdb, llcm"),
    ("max_rank: 20", "max_rank: 0", r"max_rank: expected an integer >= 1"),
    ("trials: [0, 1]", "trials: [0, 0]", r"trials: duplicate entries"),
    ("trials: [0, 1]", "trials: 3", r"trials: expected a non-empty list"),
    ("sampler: {kind: single-shot}", "sampler: {kind: single-shot, shots: 3}", r"single-shot takes 1 image"),
    ("sampler: {kind: single-shot}", "sampler: {kind: all}", r"sampler 'all' draws nothing"),
    ("  max_rank: 20\n", "  max_rank: 20\n  rerank: {method: magic}\n", r"rerank.method: 'magic'"),
    ("  max_rank: 20\n", "  max_rank: 20\n  galery: {}\n", r"unknown field\(s\) \['galery'\] \(did you mean 'gallery'"),
    ("    description: one\n", "    description: one\n  - name: p-one\n    description: two\n", r"duplicate protocol name 'p-one'"),
    ("  - name: p-one", "  - name: P One", r"name: expected a lower-case name"),
    ("  kind: evaluation", "  kind: training", r"training variants take reduction and evaluate_with"),
    ("protocols:", "protocols: []\nx:", r"unknown top-level key"),
    ("query: {modalities: [infrared], cams: [3, 6]}", "query: {modalities: [thermal], cams: [3, 6]}",
     r"query.modalities: 'thermal' is not one of visible, infrared"),
])
def test_validation_errors_name_file_and_field(tmp_path, old, new, pattern):
    assert old in GOOD
    path = _write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(VibenchError, match=pattern) as err:
        load_protocol_file(path)
    assert str(path) in str(err.value)


def test_rerank_loads_and_spec_is_hashable(tmp_path):
    text = GOOD.replace("  max_rank: 20\n", "  max_rank: 20\n  rerank: {method: k-reciprocal, k1: 20, k2: 6, lambda: 0.3}\n")
    (spec,) = load_protocol_file(_write(tmp_path, text))
    assert dict(spec.rerank) == {"method": "k-reciprocal", "k1": 20, "k2": 6, "lambda": 0.3}
    assert spec.to_dict()["rerank"]["k1"] == 20
    assert len({spec, *list_protocols()}) == len(list_protocols()) + 1
    assert json.loads(json.dumps(spec.rerank)) == {"method": "k-reciprocal", "k1": 20, "k2": 6, "lambda": 0.3}
    with pytest.raises(TypeError):
        spec.rerank["k1"] = 3


def test_invalid_yaml_and_non_mapping(tmp_path):
    with pytest.raises(VibenchError, match="not valid YAML"):
        load_protocol_file(_write(tmp_path, "family: [unclosed\n"))
    with pytest.raises(VibenchError, match="expected a mapping"):
        load_protocol_file(_write(tmp_path, "- a\n- b\n"))
    with pytest.raises(VibenchError, match="cannot read"):
        load_protocol_file(tmp_path / "absent.yaml")


def test_training_variant_validation(tmp_path):
    text = """\
    family: fam
    schema_version: 1
    protocols:
      - name: imb
        version: 1
        dataset: sysu
        kind: training
        description: d
        reduction: {modality: infrared, fraction: 1.5}
        evaluate_with: [x]
    """
    with pytest.raises(VibenchError, match=r"reduction.fraction: expected a number in \(0, 1\)"):
        load_protocol_file(_write(tmp_path, text))
    with pytest.raises(VibenchError, match=r"missing field 'evaluate_with'"):
        load_protocol_file(_write(tmp_path, text.replace("    evaluate_with: [x]\n", "")))


def test_catalog_cross_file_checks(tmp_path):
    _write(tmp_path, GOOD, "fam.yaml")
    _write(tmp_path, GOOD.replace("family: fam", "family: fam2"), "fam2.yaml")
    with pytest.raises(VibenchError, match=r"fam2.yaml: protocol 'p-one' is already defined in .*fam.yaml"):
        Catalog(tmp_path)
    (tmp_path / "fam2.yaml").unlink()
    _write(tmp_path, """\
    family: imb
    schema_version: 1
    protocols:
      - name: imb-x
        version: 1
        dataset: sysu
        kind: training
        description: d
        reduction: {modality: infrared, fraction: 0.1}
        evaluate_with: [p-onee]
    """, "imb.yaml")
    with pytest.raises(VibenchError, match=r"evaluate_with names unknown protocol 'p-onee' \(did you mean 'p-one'"):
        Catalog(tmp_path)
    with pytest.raises(VibenchError, match="protocols directory not found"):
        Catalog(tmp_path / "nowhere")


def test_unknown_protocol_did_you_mean():
    with pytest.raises(VibenchError, match=r"unknown protocol 'sysu-all-singel' \(did you mean 'sysu-all-single'"):
        get_protocol("sysu-all-singel")
    with pytest.raises(VibenchError, match=r"unknown protocol or group 'mixd' \(did you mean 'mixed'"):
        resolve_protocols("mixd")


def test_groups():
    groups = protocol_groups()
    assert list(groups) == ["sysu", "regdb", "llcm", "mixed", "unimodal", "imbalance", "all"]
    assert set(groups["all"]) == {s.name for s in list_protocols()}
    assert "sysu-all-single" in groups["sysu"] and "sysu-mix-i" not in groups["sysu"]
    assert all(get_protocol(n).family == "mixed" for n in groups["mixed"])
    assert [s.name for s in resolve_protocols("sysu-all-single,regdb-v2t")] == ["sysu-all-single", "regdb-v2t"]
    combo = [s.name for s in resolve_protocols(" regdb , regdb-v2t,sysu-all-single ")]
    assert combo == ["regdb-v2t", "regdb-t2v", "sysu-all-single"]
    assert [s.name for s in resolve_protocols(["imbalance"])] == list(groups["imbalance"])
    assert all(s.kind == "evaluation" for s in resolve_protocols("all", kind="evaluation"))
    assert len(resolve_protocols("all", kind="training")) == 4
    with pytest.raises(VibenchError, match="no protocol named"):
        resolve_protocols(" , ")


def test_repository_protocols_dir_is_the_default():
    assert (PROTOCOLS_DIR / "sysu.yaml").is_file()
    assert get_protocol("sysu-all-single").source.endswith("sysu.yaml")
