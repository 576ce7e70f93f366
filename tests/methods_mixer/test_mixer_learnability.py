"""MixER tiny trains end to end through the engine on synthetic SYSU
and beats its untrained model on cross-modal rank-1 (slow: several CPU minutes)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vibench.data import load_dataset
from vibench.data.synth.cache import ensure_synthetic
from vibench.engine.config import load_config
from vibench.engine.extract import extract_features
from vibench.engine.trainer import train, untrained


def cross_modal_rank1(tm, index, root) -> float:
    """Infrared queries against the visible test images (nearest neighbour by method.distance)."""
    recs = list(index.test(0))
    f = extract_features(tm.method, tm.model, recs, root, tm.cfg, "cpu")
    mods = np.array([r.modality for r in recs])
    pids = np.array([r.pid for r in recs])
    q, g = np.flatnonzero(mods == "infrared"), np.flatnonzero(mods == "visible")
    d = tm.method.distance({k: v[q] for k, v in f.items()}, {k: v[g] for k, v in f.items()}, mods[q], mods[g])
    excluded = torch.zeros_like(d, dtype=torch.bool)
    d = tm.method.refine(tm.model, {k: v[q] for k, v in f.items()}, {k: v[g] for k, v in f.items()}, d, excluded)
    return float((pids[g][d.argmin(1).numpy()] == pids[q]).mean())


@pytest.mark.slow
@pytest.mark.parametrize("config", ["tiny"])
def test_mixer_tiny_beats_untrained(tmp_path, config):
    root = ensure_synthetic("sysu", "tiny", 0)
    index = load_dataset("sysu", root)
    cfg = load_config("mixer", config, "sysu")
    n_cls = len({r.pid for r in index.train(0)})
    before = cross_modal_rank1(untrained("mixer", cfg, "sysu", n_cls), index, root)
    tm = train("mixer", cfg, index, 0, workdir=tmp_path, device="cpu", progress=False)
    after = cross_modal_rank1(tm, index, root)
    assert after > 1.5 * before and after < 0.99, (before, after)
