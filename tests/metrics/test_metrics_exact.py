"""mAP and mINP equal the reference's arithmetic bit for bit at every size (docs/metrics.md#ap-summation).

The reference (AGW ``eval_sysu``, torchreid) sums, per query, the full-length float64 vector
``(cumsum(M) / (1..L)) * M`` over the kept list with ``ndarray.sum`` (NumPy's pairwise sum), so
the rounding depends on where the positives sit in a list of length L. `stats.ap_numerators`
rebuilds these vectors densely and sums rows of 2-D blocks with ``np.add.reduce(axis=1)``; these
tests check that claim on the installed NumPy and the whole engine against the oracle.
"""
from __future__ import annotations

import numpy as np
import pytest

from vibench.errors import VibenchError
from vibench.metrics.evaluate import evaluate
from vibench.metrics.oracle import oracle_evaluate, reference_loop_evaluate
from vibench.metrics.stats import RankStats, ap_numerators

#: row lengths around every branch of NumPy's pairwise sum: < 8 (plain loop), 8..128 (eight
#: accumulators), > 128 (recursive halves), and past the 8192-element buffer size
LENGTHS = [1, 2, 7, 8, 9, 15, 16, 17, 127, 128, 129, 130, 255, 256, 257, 1000, 3010, 8191, 8192,
           8193, 16385, 40001]


def _reference_row(ranks: np.ndarray, length: int) -> float:
    """The reference's AP numerator, literally: running precision over the whole list times the
    match vector (int32), summed by NumPy."""
    m = np.zeros(length, dtype=np.int32)
    m[ranks] = 1
    running = m.cumsum()
    prec = [x / (k + 1.0) for k, x in enumerate(running)]
    return (np.asarray(prec) * m).sum()


@pytest.mark.parametrize("n", LENGTHS)
def test_row_reduce_of_2d_block_equals_1d_sum(n):
    """np.add.reduce along the last axis of a C-contiguous 2-D block sums each row exactly as
    ``ndarray.sum`` sums that row alone (the claim `ap_numerators` relies on)."""
    rng = np.random.default_rng(n)
    rows = 6
    block = rng.random((rows, n)) * (rng.random((rows, n)) < 0.3)  # sparse, like AP vectors
    block[0] = rng.random(n)  # and a dense row
    got = np.add.reduce(block, axis=1)
    for r in range(rows):
        assert got[r] == np.ascontiguousarray(block[r]).sum()


def _random_stats(rng, nq, lengths, max_pos):
    """Rank statistics with a list length per query drawn from `lengths` (some queries invalid)."""
    kept = rng.choice(lengths, nq)
    parts, ptr = [], [0]
    for n in kept:
        p = int(rng.integers(0, min(max_pos, n) + 1))
        parts.append(np.sort(rng.choice(n, p, replace=False)))
        ptr.append(ptr[-1] + p)
    ranks = np.concatenate(parts).astype(np.int64)
    return RankStats(
        pos_ptr=np.asarray(ptr, dtype=np.int64), pos_rank=ranks, pos_index=ranks.copy(),
        uniq_first=np.zeros(nq, dtype=np.int64), num_kept=kept.astype(np.int64),
        short=np.zeros(nq, dtype=bool),
    )


@pytest.mark.parametrize("block_elems", [1, 300, 1 << 17])
def test_ap_numerators_equal_reference_sum(block_elems):
    """Every query's numerator equals the literal reference sum, whatever the block size, with
    mixed list lengths (grouping by length) and queries without positives."""
    rng = np.random.default_rng(7)
    stats = _random_stats(rng, 120, [5, 129, 700, 3010, 9000], max_pos=60)
    got = ap_numerators(stats, block_elems=block_elems)
    for i in range(stats.num_query):
        a, b = stats.pos_ptr[i], stats.pos_ptr[i + 1]
        want = _reference_row(stats.pos_rank[a:b], int(stats.num_kept[i])) if b > a else 0.0
        assert got[i] == want, i


def test_positives_only_sum_differs_somewhere():
    """The check above can fail: summing only the positives' terms in order (the engine's former
    arithmetic) differs from the full-length pairwise sum for some queries of this size."""
    rng = np.random.default_rng(3)
    stats = _random_stats(rng, 300, [3010], max_pos=60)
    full = ap_numerators(stats)
    differ = 0
    for i in range(stats.num_query):
        a, b = stats.pos_ptr[i], stats.pos_ptr[i + 1]
        acc = 0.0
        for k, r in enumerate(stats.pos_rank[a:b]):
            acc += (k + 1) / (r + 1.0)
        differ += acc != full[i]
    assert differ > 0


def test_inconsistent_rank_statistics_are_refused():
    stats = RankStats(pos_ptr=np.array([0, 1]), pos_rank=np.array([5]), pos_index=np.array([5]),
                      uniq_first=np.array([0]), num_kept=np.array([5]), short=np.array([False]))
    with pytest.raises(VibenchError, match=r"rank 5, expected a rank in \[0, num_kept=5\)"):
        ap_numerators(stats)


def sysu_multishot_problem(seed: int = 0):
    """A SYSU all-search multi-shot trial's shape and labels: 96 test ids; 3,803 queries (cam3: 93
    ids, 1,883 images; cam6: 96 ids, 1,920 images); gallery 10 images per (id, camera) folder of
    cams 1, 2 (56 ids each, the same ones), 4 (94 ids), 5 (95 ids) = 3,010; random distances."""
    rng = np.random.default_rng(seed)
    ids = np.arange(96)
    qp, qc = [], []
    cam3_ids = ids[3:]
    for k, pid in enumerate(cam3_ids):
        n = 20 + (k < 1883 - 20 * 93)
        qp += [pid] * n
        qc += [3] * n
    for pid in ids:
        qp += [pid] * 20
        qc += [6] * 20
    gp, gc = [], []
    for cam, cam_ids in ((1, ids[:56]), (2, ids[:56]), (4, ids[2:]), (5, ids[1:])):
        for pid in cam_ids:
            gp += [pid] * 10
            gc += [cam] * 10
    qp, qc, gp, gc = (np.asarray(x, dtype=np.int64) for x in (qp, qc, gp, gc))
    assert (len(qp), len(gp)) == (3803, 3010) and (qc == 3).sum() == 1883
    return rng.random((len(qp), len(gp))), qp, gp, qc, gc


@pytest.mark.slow
def test_sysu_multishot_size_bit_exact_against_oracle():
    """3,803 x 3,010 (about two minutes on a loaded 2-core machine: the oracle sorts every row in Python): CMC, mAP, mINP and
    every per-query AP/INP equal the oracle's bit for bit (==, no tolerance)."""
    d, qp, gp, qc, gc = sysu_multishot_problem()
    got = evaluate(d, qp, gp, qc, gc, rule="sysu", cmc="unique")
    want = oracle_evaluate(d, qp, gp, qc, gc, rule="sysu", cmc="unique")
    assert got.num_valid == want["num_valid"] == 3803
    assert got.cmc.tobytes() == want["cmc"].tobytes()
    assert got.mAP == want["mAP"]
    assert got.mINP == want["mINP"]
    assert got.ap[got.valid].tobytes() == want["ap"].tobytes()
    assert got.inp[got.valid].tobytes() == want["inp"].tobytes()


def test_medium_size_bit_exact_against_reference_loop():
    """A quick version at 400 x 3,010 against the reference cost-profile loop (reference code
    arithmetic), both CMC modes' rules."""
    d, qp, gp, qc, gc = sysu_multishot_problem(seed=1)
    sel = np.r_[0:200, 1883:2083]
    for rule, cmc in (("sysu", "unique"), ("llcm", "unique"), ("regdb", "image")):
        got = evaluate(d[sel], qp[sel], gp, qc[sel], gc, rule=rule, cmc=cmc)
        cmc_ref, map_ref, minp_ref = reference_loop_evaluate(d[sel], qp[sel], gp, qc[sel], gc, rule=rule, cmc=cmc)
        assert got.cmc.tobytes() == cmc_ref.tobytes()
        assert got.mAP == map_ref and got.mINP == minp_ref
