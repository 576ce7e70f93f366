"""vibench.evaluate against the per-query oracle (hypothesis), the reference cost-profile loop,
hand-computed values, block-size invariance, ties, padding, torch/CUDA inputs."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vibench
from vibench.errors import VibenchError
from vibench.metrics.evaluate import evaluate, evaluate_features
from vibench.metrics.oracle import oracle_evaluate, reference_loop_evaluate
from vibench.metrics.rules import rule_names

RULES = rule_names()


@st.composite
def problems(draw):
    """Small random evaluation problems: few ids/cams so that ties, invalid queries, excluded
    positives and galleries shorter than max_rank all occur."""
    nq = draw(st.integers(1, 7))
    ng = draw(st.integers(1, 24))
    n_ids = draw(st.integers(1, 6))
    ints = lambda n, lo, hi: np.array(draw(st.lists(st.integers(lo, hi), min_size=n, max_size=n)), dtype=np.int64)
    qp, gp = ints(nq, 0, n_ids), ints(ng, 0, n_ids)
    qc, gc = ints(nq, 1, 6), ints(ng, 1, 6)
    qm, gm = ints(nq, 0, 1), ints(ng, 0, 1)
    ties = draw(st.booleans())
    if ties:
        d = ints(nq * ng, 0, 3).reshape(nq, ng).astype(np.float64)
    else:
        seed = draw(st.integers(0, 2**31 - 1))
        d = np.random.default_rng(seed).standard_normal((nq, ng))
    own = []
    for i in range(nq):
        same = np.flatnonzero(gp == qp[i])
        own.append(int(same[draw(st.integers(0, len(same) - 1))]) if len(same) and draw(st.booleans()) else -1)
    return d, qp, gp, qc, gc, qm, gm, np.array(own, dtype=np.int64)


def _both(d, qp, gp, qc, gc, qm, gm, qi, rule, cmc, max_rank=20, **kw):
    args = dict(rule=rule, cmc=cmc, max_rank=max_rank, q_modalities=qm, g_modalities=gm, q_gallery_index=qi)
    try:
        want = oracle_evaluate(d, qp, gp, qc, gc, **args)
    except ValueError:
        want = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if want is None:
            with pytest.raises(VibenchError, match="no query has a positive"):
                evaluate(d, qp, gp, qc, gc, **args, **kw)
            return None, None
        return want, evaluate(d, qp, gp, qc, gc, **args, **kw)


def _assert_same(want, got):
    assert got.cmc.dtype == np.float32
    assert got.cmc.tobytes() == want["cmc"].tobytes(), (want["cmc"], got.cmc)
    assert got.mAP == want["mAP"] and got.mINP == want["mINP"]  # bit for bit (docs/metrics.md#ap-summation)
    assert got.num_valid == want["num_valid"]
    assert got.padded_queries == want["padded_queries"]
    assert got.ap[got.valid].tobytes() == want["ap"].tobytes()
    assert got.inp[got.valid].tobytes() == want["inp"].tobytes()


@pytest.mark.parametrize("cmc", ["unique", "image"])
@pytest.mark.parametrize("rule", RULES)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(p=problems(), max_rank=st.sampled_from([1, 3, 20]))
def test_engine_equals_oracle(p, max_rank, rule, cmc):
    want, got = _both(*p, rule, cmc, max_rank)
    if want is not None:
        _assert_same(want, got)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(p=problems(), rule=st.sampled_from(RULES), cmc=st.sampled_from(["unique", "image"]),
       rows=st.integers(1, 4), cols=st.integers(1, 5))
def test_tiny_blocks_give_identical_results(p, rule, cmc, rows, cols):
    want, got = _both(*p, rule, cmc, 20, block_rows=rows, chunk_cols=cols)
    if want is not None:
        _assert_same(want, got)


def _sysu_like(rng, nq=150, ng=400, ids=30):
    qp = rng.integers(0, ids, nq)
    gp = rng.integers(0, ids, ng)
    qc = rng.choice([3, 6], nq)
    gc = rng.choice([1, 2, 4, 5], ng)
    return qp, gp, qc, gc


@pytest.mark.parametrize("rule,cmc", [("sysu", "unique"), ("llcm", "unique"), ("market", "image"), ("regdb", "image")])
def test_reference_loop_agrees_bit_for_bit(rule, cmc):
    rng = np.random.default_rng(1)
    qp, gp, qc, gc = _sysu_like(rng)
    d = rng.standard_normal((len(qp), len(gp)))
    cmc_ref, map_ref, minp_ref = reference_loop_evaluate(d, qp, gp, qc, gc, rule=rule, cmc=cmc)
    res = evaluate(d, qp, gp, qc, gc, rule=rule, cmc=cmc)
    assert res.cmc.tobytes() == cmc_ref.tobytes()
    assert res.mAP == map_ref and res.mINP == minp_ref


def test_hand_computed_example():
    # one query (pid 1, cam 3); gallery ranked by distance: ids 2, 2, 1(cam2), 3, 1, 1
    d = np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]])
    gp = np.array([2, 2, 1, 3, 1, 1])
    gc = np.array([1, 4, 2, 5, 1, 4])
    # sysu: cam-3 query drops the cam-2 item -> list ids 2, 2, 3, 1, 1
    r = evaluate(d, [1], gp, [3], gc, rule="sysu", cmc="unique", max_rank=5)
    # unique list 2, 3, 1 (then padded): first hit at deduplicated rank 3
    assert r.cmc.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]
    assert r.padded_queries == 1  # 3 distinct ids < max_rank 5
    # positives at positions 3, 4 -> AP = (1/4 + 2/5) / 2, INP = 2/5
    assert r.mAP == pytest.approx((1 / 4 + 2 / 5) / 2, abs=1e-15)
    assert r.mINP == pytest.approx(2 / 5, abs=1e-15)
    img = evaluate(d, [1], gp, [3], gc, rule="sysu", cmc="image", max_rank=5)
    assert img.cmc.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]
    # regdb keeps the cam-2 positive: rank 3 in both CMCs
    reg = evaluate(d, [1], gp, [3], gc, rule="regdb", cmc="image", max_rank=5)
    assert reg.cmc.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]
    assert reg.mAP == pytest.approx((1 / 3 + 2 / 5 + 3 / 6) / 3, abs=1e-15)


def test_ties_are_broken_by_gallery_index():
    d = np.zeros((1, 4))
    r = evaluate(d, [5], [1, 5, 2, 5], [6], [1, 1, 1, 1], rule="regdb", cmc="image", max_rank=4)
    # stable order 0, 1, 2, 3: positives at ranks 1 and 3 (0-based)
    assert r.cmc.tolist() == [0.0, 1.0, 1.0, 1.0]
    assert r.mAP == pytest.approx((1 / 2 + 2 / 4) / 2)


def test_invalid_queries_are_skipped_and_counted():
    d = np.array([[0.1, 0.2], [0.3, 0.1]])
    r = evaluate(d, [1, 9], [1, 2], [6, 6], [1, 1], rule="sysu", max_rank=2)
    assert r.num_valid == 1 and r.num_query == 2
    assert r.cmc.tolist() == [1.0, 1.0]
    assert np.isnan(r.ap[1]) and not r.valid[1]


def test_padding_warns_and_does_not_crash():
    rng = np.random.default_rng(0)
    d = rng.random((4, 6))
    with pytest.warns(RuntimeWarning, match="padded"):
        r = evaluate(d, [0, 1, 0, 1], [0, 0, 1, 1, 0, 1], [6] * 4, [1] * 6, rule="sysu", max_rank=20)
    assert r.cmc.shape == (6,) and r.padded_queries == 4
    assert r.cmc[-1] == 1.0


def test_max_rank_is_cut_to_the_gallery_size():
    r = evaluate(np.array([[0.5, 0.1, 0.3]]), [1], [1, 2, 3], [6], [1, 1, 1], rule="regdb", cmc="image")
    assert r.cmc.shape == (3,) and r.max_rank == 3


def test_torch_float32_and_package_reexport():
    rng = np.random.default_rng(3)
    qp, gp, qc, gc = _sysu_like(rng, 40, 90, 10)
    d = rng.standard_normal((40, 90)).astype(np.float32)
    a = vibench.evaluate(torch.from_numpy(d), qp, gp, qc, gc)
    b = oracle_evaluate(d, qp, gp, qc, gc, rule="sysu")
    _assert_same(b, a)
    assert isinstance(a, vibench.EvalResult)
    assert isinstance(a.mAP, float) and 0 <= a.mAP <= 1 and 0 <= a.mINP <= 1


def test_evaluate_features_equals_matrix_path():
    rng = np.random.default_rng(4)
    qp, gp, qc, gc = _sysu_like(rng, 60, 200, 15)
    qf = torch.randn(60, 16, generator=torch.Generator().manual_seed(0))
    gf = torch.randn(200, 16, generator=torch.Generator().manual_seed(1))
    rows = 7
    res = evaluate_features(qf, gf, qp, gp, qc, gc, block_rows=rows)
    # the same per-block distances, materialised
    g = torch.nn.functional.normalize(gf, dim=1)
    d = torch.cat([-(torch.nn.functional.normalize(qf[a:a + rows], dim=1) @ g.T) for a in range(0, 60, rows)])
    want = oracle_evaluate(d.numpy(), qp, gp, qc, gc, rule="sysu")
    _assert_same(want, res)


def test_large_gallery_in_chunks_matches_one_block():
    rng = np.random.default_rng(5)
    qp, gp, qc, gc = _sysu_like(rng, 30, 5000, 300)
    d = rng.standard_normal((30, 5000)).astype(np.float32)
    a = evaluate(d, qp, gp, qc, gc)
    b = evaluate(d, qp, gp, qc, gc, block_rows=4, chunk_cols=333)
    assert a.cmc.tobytes() == b.cmc.tobytes() and a.mAP == b.mAP and a.mINP == b.mINP


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    rng = np.random.default_rng(6)
    qp, gp, qc, gc = _sysu_like(rng, 300, 900, 40)
    d = torch.from_numpy(rng.standard_normal((300, 900)))
    a = evaluate(d, qp, gp, qc, gc)
    b = evaluate(d.cuda(), qp, gp, qc, gc)
    assert a.cmc.tobytes() == b.cmc.tobytes() and a.mAP == b.mAP and a.mINP == b.mINP
