"""Exclusion rules on hand-made cases and every bad-input error of vibench.evaluate."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vibench.errors import VibenchError
from vibench.metrics.evaluate import evaluate, evaluate_features
from vibench.metrics.rules import exclusion_mask, get_rule

# gallery: (pid, cam, modality); the query is pid 1, cam 3, infrared, own image at index 2
G = [(1, 2, "visible"), (2, 3, "infrared"), (1, 3, "infrared"), (1, 6, "infrared"), (1, 1, "visible"), (2, 2, "visible")]
GP, GC, GM = [g[0] for g in G], [g[1] for g in G], [g[2] for g in G]


@pytest.mark.parametrize("rule,expected", [
    ("sysu", [1, 0, 0, 0, 0, 1]),
    ("llcm", [0, 0, 1, 0, 0, 0]),
    ("market", [0, 0, 1, 0, 0, 0]),
    ("regdb", [0, 0, 0, 0, 0, 0]),
    ("none", [0, 0, 0, 0, 0, 0]),
    ("mix", [0, 0, 1, 0, 0, 0]),
    ("mix-cam", [0, 1, 1, 0, 0, 0]),
    ("mix-cam-id", [0, 0, 1, 0, 0, 0]),
    ("mix-id", [0, 0, 1, 1, 0, 0]),
    ("mix-p", [0, 1, 1, 0, 0, 0]),
    ("unimodal", [0, 0, 1, 0, 0, 0]),
])
def test_rule_predicates(rule, expected):
    m = exclusion_mask(rule, [1], GP, [3], GC, ["infrared"], GM, [2])
    assert m.dtype == torch.bool and m.shape == (1, 6)
    assert m[0].tolist() == [bool(x) for x in expected]


def test_mix_rules_drop_the_own_image_by_index_not_distance():
    m = exclusion_mask("mix", [1, 1], GP, [3, 3], GC, [1, 1], [0, 1, 1, 1, 0, 0], [2, -1])
    assert m[0].tolist() == [False, False, True, False, False, False]
    assert not m[1].any()


def test_modalities_as_ints_or_strings_agree():
    a = exclusion_mask("mix-id", [1], GP, [3], GC, ["infrared"], GM, [2])
    b = exclusion_mask("mix-id", [1], GP, [3], GC, [1], [0 if m == "visible" else 1 for m in GM], [2])
    assert torch.equal(a, b)


def test_aliases_and_unknown_rule_did_you_mean():
    assert get_rule("mix_camera_id").name == "mix-cam-id"
    with pytest.raises(VibenchError, match=r"unknown exclusion rule 'sysuu'.*did you mean 'sysu'"):
        evaluate(np.zeros((1, 2)), [1], [1, 2], [3], [1, 2], rule="sysuu")


@pytest.mark.parametrize("kwargs,match", [
    (dict(rule="mix"), "q_gallery_index"),
    (dict(rule="mix-id", q_gallery_index=[0]), "modalities"),
    (dict(rule="mix", q_gallery_index=[5]), r"outside \[-1, 2\)"),
    (dict(rule="mix", q_gallery_index=[1]), "pid 2"),
    (dict(rule="mix-id", q_gallery_index=[0], q_modalities=["ir"], g_modalities=[0, 1]), "not a modality"),
    (dict(cmc="uniq"), "did you mean 'unique'"),
    (dict(max_rank=0), "max_rank"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(VibenchError, match=match):
        evaluate(np.array([[0.1, 0.2]]), [1], [1, 2], [3], [1, 2], **kwargs)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_distances(bad):
    d = np.array([[0.1, bad]])
    with pytest.raises(VibenchError, match="NaN or inf"):
        evaluate(d, [1], [1, 2], [3], [1, 2])
    with pytest.raises(VibenchError, match="NaN or inf"):
        evaluate_features(torch.tensor([[1.0, bad]]), torch.ones(2, 2), [1], [1, 2], [3], [1, 2])


@pytest.mark.parametrize("args,match", [
    ((np.zeros((2, 2)), [1], [1, 2], [3, 3], [1, 2]), "q_pids has length 1"),
    ((np.zeros((1, 2)), [1], [1, 2, 3], [3], [1, 2]), "g_pids has length 3"),
    ((np.zeros((1, 2)), [1], [1, 2], [3, 4], [1, 2]), "q_camids has length 2"),
    ((np.zeros((1, 2)), [1], [1, 2], [3], [1]), "g_camids has length 1"),
    ((np.zeros(3), [1], [1, 2], [3], [1]), "two-dimensional"),
    ((np.zeros((1, 0)), [1], [], [3], []), "gallery is empty"),
    ((np.zeros((0, 2)), [], [1, 2], [], [1, 2]), "query set is empty"),
    ((np.zeros((1, 2)), [1.5], [1, 2], [3], [1, 2]), "integers"),
])
def test_shape_and_length_errors(args, match):
    with pytest.raises(VibenchError, match=match):
        evaluate(*args)


def test_feature_dimension_mismatch():
    with pytest.raises(VibenchError, match="dimension"):
        evaluate_features(torch.ones(1, 3), torch.ones(2, 4), [1], [1, 2], [3], [1, 2])


def test_no_valid_query_is_an_error():
    with pytest.raises(VibenchError, match="no query has a positive"):
        evaluate(np.zeros((1, 2)), [7], [1, 2], [3], [1, 2])
