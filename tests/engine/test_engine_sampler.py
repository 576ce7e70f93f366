"""The cross-modal identity sampler: batch composition, determinism, missing modalities."""
from __future__ import annotations

import numpy as np
import pytest

from vibench.engine.batch_sampler import CrossModalSampler
from vibench.errors import VibenchError


def _data(ids: int = 6, vis: int = 3, ir: int = 2, drop_ir: tuple[int, ...] = ()):
    labels, mods = [], []
    for i in range(ids):
        labels += [i] * vis
        mods += ["visible"] * vis
        if i not in drop_ir:
            labels += [i] * ir
            mods += ["infrared"] * ir
    return np.array(labels), mods


def test_batch_composition():
    labels, mods = _data()
    s = CrossModalSampler(labels, mods, ids_per_batch=3, images_per_id=4, iterations=5, seed=1)
    plan = s.epoch(0)
    assert plan.vis.shape == plan.ir.shape == plan.labels.shape == (5, 12)
    m = np.array(mods)
    for t in range(5):
        ids = plan.labels[t].reshape(3, 4)
        assert (ids == ids[:, :1]).all()  # identity-major, K slots per identity
        assert len(set(ids[:, 0])) == 3  # P distinct identities
        assert (labels[plan.vis[t]] == plan.labels[t]).all()
        assert (labels[plan.ir[t]] == plan.labels[t]).all()  # vis slot i and ir slot i share the id
        assert (m[plan.vis[t]] == "visible").all() and (m[plan.ir[t]] == "infrared").all()


def test_deterministic_by_seed_and_epoch():
    labels, mods = _data()
    a = CrossModalSampler(labels, mods, ids_per_batch=2, images_per_id=2, iterations=4, seed=3)
    b = CrossModalSampler(labels, mods, ids_per_batch=2, images_per_id=2, iterations=4, seed=3)
    c = CrossModalSampler(labels, mods, ids_per_batch=2, images_per_id=2, iterations=4, seed=4)
    assert np.array_equal(a.epoch(2).vis, b.epoch(2).vis) and np.array_equal(a.epoch(2).ir, b.epoch(2).ir)
    assert not np.array_equal(a.epoch(2).vis, c.epoch(2).vis)
    assert not np.array_equal(a.epoch(1).vis, a.epoch(2).vis)
    # an epoch's plan does not depend on which epochs were drawn before (exact resume)
    fresh = CrossModalSampler(labels, mods, ids_per_batch=2, images_per_id=2, iterations=4, seed=3)
    assert np.array_equal(fresh.epoch(2).labels, a.epoch(2).labels)


def test_default_iterations_one_pass_over_larger_modality():
    labels, mods = _data(ids=6, vis=3, ir=2)  # 18 visible, 12 infrared
    s = CrossModalSampler(labels, mods, ids_per_batch=2, images_per_id=2, seed=0)
    assert s.iterations == 18 // 4
    assert s.batch_size == 4


def test_identities_missing_a_modality_are_skipped():
    labels, mods = _data(ids=5, drop_ir=(1, 3))
    s = CrossModalSampler(labels, mods, ids_per_batch=2, images_per_id=2, iterations=20, seed=0)
    assert s.skipped == [1, 3]
    assert set(np.unique(s.epoch(0).labels)) <= {0, 2, 4}
    with pytest.raises(VibenchError, match="only one modality"):
        CrossModalSampler(labels, mods, ids_per_batch=2, images_per_id=2, missing_modality="error")
    with pytest.raises(VibenchError, match="fewer than ids_per_batch"):
        CrossModalSampler(labels, mods, ids_per_batch=4, images_per_id=2)


def test_without_replacement_uses_distinct_images():
    labels, mods = _data(ids=4, vis=5, ir=5)
    s = CrossModalSampler(labels, mods, ids_per_batch=2, images_per_id=4, iterations=10, seed=0, with_replacement=False)
    plan = s.epoch(0)
    for row in plan.vis.reshape(-1, 4):
        assert len(set(row)) == 4


def test_bad_config_is_a_clear_error():
    labels, mods = _data()
    with pytest.raises(VibenchError, match="unknown key"):
        CrossModalSampler.from_config({"ids_per_batch": 2, "images_per_idd": 2}, labels, mods, seed=0)
    with pytest.raises(VibenchError, match="unknown modalities"):
        CrossModalSampler([0, 0], ["visible", "thermal"], ids_per_batch=1, images_per_id=1)
