"""MixER §4.1(c): "each training batch contains 8 V and 8 I images from 10 randomly selected
identities" -> 10 identities, each with 8 visible and 8 infrared images (160 per batch)."""
from __future__ import annotations

from collections import Counter

import numpy as np

from vibench.engine.batch_sampler import CrossModalSampler
from vibench.engine.config import load_config


def _training_set(ids: int = 30, per_modality: int = 12) -> tuple[np.ndarray, list[str]]:
    labels, mods = [], []
    for i in range(ids):
        labels += [i] * (2 * per_modality)
        mods += ["visible"] * per_modality + ["infrared"] * per_modality
    return np.asarray(labels), mods


def test_paper_batch_is_10_identities_with_8_visible_and_8_infrared_each() -> None:
    labels, mods = _training_set()
    for dataset in ("sysu", "regdb", "llcm"):
        cfg = load_config("mixer", "paper", dataset=dataset)
        sampler = CrossModalSampler.from_config(cfg["sampler"], labels, mods, seed=0)
        plan = sampler.epoch(0)
        for t in range(len(plan)):
            vis, ir = plan.vis[t], plan.ir[t]
            assert len(vis) == len(ir) == 80, dataset
            vis_ids = Counter(labels[vis].tolist())
            ir_ids = Counter(labels[ir].tolist())
            assert len(vis_ids) == 10 and set(vis_ids) == set(ir_ids)
            assert set(vis_ids.values()) == {8} and set(ir_ids.values()) == {8}
            assert all(mods[j] == "visible" for j in vis) and all(mods[j] == "infrared" for j in ir)


def test_saai_code_variant_halves_the_images_per_identity() -> None:
    labels, mods = _training_set()
    cfg = load_config("mixer", "paper", dataset="sysu", overrides=["sampler.images_per_id=4"])
    plan = CrossModalSampler.from_config(cfg["sampler"], labels, mods, seed=0).epoch(0)
    counts = Counter(labels[plan.vis[0]].tolist())
    assert len(counts) == 10 and set(counts.values()) == {4}
