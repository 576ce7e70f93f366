"""pipeline.evaluate_lists with hand-built lists, and raw rankings: save / load / exact re-score."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from vibench.data.records import ImageRecord
from vibench.errors import VibenchError
from vibench.metrics.evaluate import evaluate
from vibench.metrics.pipeline import evaluate_lists
from vibench.metrics.rankings import load_rankings, save_rankings, score_rankings


def _lists(rng, nq=40, ng=120, ids=30, mixed=False):
    q = tuple(ImageRecord(f"cam{c}/{p:04d}/q{i}.jpg", int(p), int(c), "infrared")
              for i, (p, c) in enumerate(zip(rng.integers(0, ids, nq), rng.choice([3, 6], nq))))
    g = tuple(ImageRecord(f"cam{c}/{p:04d}/g{i}.jpg", int(p), int(c), "visible")
              for i, (p, c) in enumerate(zip(rng.integers(0, ids, ng), rng.choice([1, 2, 4, 5], ng))))
    own = -np.ones(nq, dtype=np.int64)
    if mixed:
        g = g + q
        own = np.arange(ng, ng + nq)
    return SimpleNamespace(query=q, gallery=g, query_gallery_index=own, sha256="ab" * 32, trial=0)


def _spec(rule="sysu", cmc="unique", rerank=None):
    return SimpleNamespace(name="t-proto", version=1, dataset="sysu", rule=rule, cmc=cmc, max_rank=20, rerank=rerank)


def _feats(rng, lists, dim=8):
    centers = rng.standard_normal((100, dim))
    f = lambda recs: {"feat": torch.from_numpy(centers[[r.pid for r in recs]] + rng.standard_normal((len(recs), dim)))}
    return f(lists.query), f(lists.gallery)


@pytest.mark.parametrize("rule,cmc,mixed", [("sysu", "unique", False), ("regdb", "image", False),
                                            ("mix-id", "unique", True), ("mix-cam", "image", True)])
def test_pipeline_rankings_rescore_exactly(tmp_path, rule, cmc, mixed):
    rng = np.random.default_rng(0)
    lists = _lists(rng, mixed=mixed)
    qf, gf = _feats(rng, lists)
    res, rk = evaluate_lists(_spec(rule, cmc), lists, qf, gf, topk=15)
    q = torch.nn.functional.normalize(qf["feat"].float(), dim=1)
    g = torch.nn.functional.normalize(gf["feat"].float(), dim=1)
    direct = evaluate(-(q @ g.T), [r.pid for r in lists.query], [r.pid for r in lists.gallery],
                      [r.cam for r in lists.query], [r.cam for r in lists.gallery], rule=rule, cmc=cmc,
                      q_modalities=[r.modality for r in lists.query], g_modalities=[r.modality for r in lists.gallery],
                      q_gallery_index=lists.query_gallery_index)
    assert res.cmc.tobytes() == direct.cmc.tobytes() and res.mAP == direct.mAP and res.mINP == direct.mINP
    path = tmp_path / "rankings" / "t-proto" / "trial-0.npz"
    save_rankings(path, rk)
    back = load_rankings(path)
    again = score_rankings(back)
    assert again.cmc.tobytes() == res.cmc.tobytes()
    assert again.mAP == res.mAP and again.mINP == res.mINP and again.num_valid == res.num_valid
    assert back.meta["list_sha256"] == "ab" * 32 and back.meta["rule"] == rule
    # the top-K list is the ranked list after exclusion: its positives sit at the stored ranks
    s = back.stats
    for i in range(len(lists.query)):
        ranks = s.pos_rank[s.pos_ptr[i]:s.pos_ptr[i + 1]]
        idx = s.pos_index[s.pos_ptr[i]:s.pos_ptr[i + 1]]
        for r, j in zip(ranks, idx):
            if r < 15:
                assert back.topk_index[i, r] == j


def test_refine_fn_sees_the_exclusion_mask_and_distance_fn_is_used():
    rng = np.random.default_rng(1)
    lists = _lists(rng)
    qf, gf = _feats(rng, lists)
    seen = {}

    def dist_fn(q, g, qm, gm):
        seen["mods"] = (qm[0], gm[0])
        return torch.cdist(q["feat"], g["feat"])

    def refine(d, excluded):
        seen["excluded"] = excluded
        return d.masked_fill(excluded, 1e6)  # pushing excluded items away changes nothing

    a, _ = evaluate_lists(_spec(), lists, qf, gf, distance_fn=dist_fn)
    b, _ = evaluate_lists(_spec(), lists, qf, gf, distance_fn=dist_fn, refine_fn=refine)
    assert seen["mods"] == ("infrared", "visible")
    assert seen["excluded"].shape == (40, 120) and seen["excluded"].dtype == torch.bool
    assert a.cmc.tobytes() == b.cmc.tobytes() and a.mAP == b.mAP


def test_pipeline_rerank_is_recorded():
    rng = np.random.default_rng(2)
    lists = _lists(rng, nq=20, ng=60)
    qf, gf = _feats(rng, lists)
    res, rk = evaluate_lists(_spec(rerank={"method": "aim", "k1": 4, "k2": 1}), lists, qf, gf)
    assert rk.meta["rerank"] == {"method": "aim", "k1": 4, "k2": 1}
    assert 0 <= res.mAP <= 1


@pytest.mark.parametrize("mutate,match", [
    (lambda q, g: q.update(feat=q["feat"][:-1]), "expected \\(40, D\\)"),
    (lambda q, g: g.update(feat=g["feat"] * float("nan")), "NaN or inf"),
    (lambda q, g: q.pop("feat"), "no 'feat' embedding"),
])
def test_pipeline_bad_features(mutate, match):
    rng = np.random.default_rng(3)
    lists = _lists(rng)
    qf, gf = _feats(rng, lists)
    mutate(qf, gf)
    with pytest.raises(VibenchError, match=match):
        evaluate_lists(_spec(), lists, qf, gf)


def test_pipeline_empty_gallery():
    rng = np.random.default_rng(4)
    lists = _lists(rng)
    lists.gallery = ()
    with pytest.raises(VibenchError, match="gallery is empty"):
        evaluate_lists(_spec(), lists, {"feat": torch.ones(40, 2)}, {"feat": torch.ones(0, 2)})


def test_load_rankings_rejects_broken_files(tmp_path):
    bad = tmp_path / "trial-0.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(VibenchError, match="not a readable"):
        load_rankings(bad)
    np.savez(bad, meta=np.array("{}"))
    with pytest.raises(VibenchError, match="missing arrays"):
        load_rankings(bad)
    with pytest.raises(VibenchError, match="no such rankings file"):
        load_rankings(tmp_path / "nope.npz")
