"""Per-query rank statistics and the one function that turns them into CMC / mAP / mINP.

Both `vibench.evaluate` and re-scoring of stored rankings (`rankings.score_rankings`) go through
`finalize`, so a stored ranking reproduces the metrics bit for bit.

Arithmetic is the reference's, operation for operation (docs/metrics.md#reference-arithmetic):
* CMC = float32(number of hit rows at rank r) / float32(number of valid queries), a float32
  division, exactly as the reference's float32 row sum divided by the valid count;
* AP_i = (full-length sum over the kept list of precision x match) / P, where the sum is NumPy's
  pairwise sum of the float64 vector whose entry at the rank of the k-th positive is k/(rank+1)
  and 0 elsewhere (`ap_numerators`, docs/metrics.md#ap-summation); INP_i = P/(rank_last+1);
* mAP and mINP = `np.mean` (float64) over the valid queries in query order; queries without
  positives are skipped.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from vibench.errors import VibenchError


@dataclass
class RankStats:
    """What the metrics need from each query's ranked list after exclusion (ties: gallery index).

    pos_ptr:    (nq+1,) int64 CSR offsets into pos_rank / pos_index.
    pos_rank:   0-based ranks of every positive in the list after exclusion, ascending per query.
    pos_index:  their gallery indices (same order).
    uniq_first: the first positive's rank in the identity-deduplicated list (-1: no positive).
    num_kept:   gallery items left after exclusion.
    short:      the list (deduplicated for cmc="unique") is shorter than max_rank: padded.
    """

    pos_ptr: np.ndarray
    pos_rank: np.ndarray
    pos_index: np.ndarray
    uniq_first: np.ndarray
    num_kept: np.ndarray
    short: np.ndarray

    @property
    def num_query(self) -> int:
        return int(self.pos_ptr.shape[0] - 1)

    @property
    def num_pos(self) -> np.ndarray:
        return np.diff(self.pos_ptr)


@dataclass
class EvalResult:
    """The metrics of one evaluation (fractions in [0, 1]).

    cmc: float32 array of length max_rank (= min(requested max_rank, gallery size)).
    mAP, mINP: float64 python floats over the valid queries.
    num_valid: queries with at least one positive after exclusion; num_query, num_gallery: sizes.
    padded_queries: queries whose list after exclusion was shorter than max_rank (padded with
    their last CMC value; the reference code crashes there, docs/metrics.md#cmc-modes).
    ap, inp: per-query AP / INP (NaN for invalid queries); valid: boolean mask.
    """

    cmc: np.ndarray
    mAP: float
    mINP: float
    num_valid: int
    num_query: int
    num_gallery: int
    rule: str
    cmc_mode: str
    max_rank: int
    padded_queries: int = 0
    ap: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    inp: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    valid: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool), repr=False)

    @property
    def rank1(self) -> float:
        return float(self.cmc[0])

    def rank(self, k: int) -> float:
        """CMC at rank k (1-based)."""
        return float(self.cmc[k - 1])

    def to_dict(self) -> dict[str, object]:
        """The per-trial record of ``metrics/<protocol>.json`` (ARCHITECTURE.md, Result store)."""
        return {
            "cmc": [float(x) for x in self.cmc],
            "mAP": float(self.mAP),
            "mINP": float(self.mINP),
            "num_valid": int(self.num_valid),
            "num_query": int(self.num_query),
            "num_gallery": int(self.num_gallery),
            "padded_queries": int(self.padded_queries),
        }


def effective_max_rank(max_rank: int, num_gallery: int) -> int:
    """min(max_rank, gallery size), as the reference does (docs/metrics.md#reference-arithmetic)."""
    if isinstance(max_rank, bool) or not isinstance(max_rank, (int, np.integer)) or max_rank < 1:
        raise VibenchError(f"max_rank must be a positive integer, got {max_rank!r}")
    return int(min(int(max_rank), num_gallery))


#: elements of one dense block of `ap_numerators` (rows x kept-list length): 1 MiB of float64,
#: cache-resident, so the zero fill and the row sums are one pass over cached memory.
AP_BLOCK_ELEMS = 1 << 17


def ap_numerators(stats: RankStats, block_elems: int = AP_BLOCK_ELEMS) -> np.ndarray:
    """Per query, the reference's AP numerator, bit for bit: ``np.sum`` of the full-length float64
    vector ``(cumsum(M) / (1..L)) * M`` over its kept list of length L = `num_kept` (AGW
    ``eval_sysu``, torchreid; docs/metrics.md#ap-summation). NumPy sums such a vector pairwise,
    so the rounding depends on where the positives sit in the whole list, not only on the
    positives' terms. The vector is rebuilt densely (zeros except k/(rank_k+1) at the k-th
    positive) for blocks of queries whose lists have the same length, and summed with
    ``np.add.reduce`` along the rows of the C-contiguous block: the same pairwise summation NumPy
    applies to each row alone (checked by tests/metrics/test_metrics_exact.py). Queries without
    positives get 0. Cost: one pass over (valid queries x list length) float64 in cache.
    """
    nq = stats.num_query
    npos = stats.num_pos
    kept = stats.num_kept.astype(np.int64)
    ranks = stats.pos_rank
    out = np.zeros(nq, dtype=np.float64)
    if ranks.shape[0] == 0:
        return out
    rank_limit = np.repeat(kept, npos)
    if bool(np.any((ranks < 0) | (ranks >= rank_limit))):
        k = int(np.flatnonzero((ranks < 0) | (ranks >= rank_limit))[0])
        raise VibenchError(
            f"rank statistics are inconsistent: positive {k} has rank {int(ranks[k])}, expected a "
            f"rank in [0, num_kept={int(rank_limit[k])})"
        )
    starts = stats.pos_ptr[:-1]
    # the reference's terms: cumsum(M)[r] / (r + 1.) at each positive's rank r (float64 division)
    local = np.arange(ranks.shape[0], dtype=np.int64) - np.repeat(starts, npos)
    terms = (local + 1).astype(np.float64) / (ranks.astype(np.float64) + 1.0)
    # valid queries ordered by list length (stable: query order within a length)
    vq = np.flatnonzero(npos > 0)
    vq = vq[np.argsort(kept[vq], kind="stable")]
    cnt = npos[vq]
    off = np.zeros(vq.shape[0] + 1, dtype=np.int64)
    np.cumsum(cnt, out=off[1:])
    src = np.repeat(starts[vq] - off[:-1], cnt) + np.arange(off[-1], dtype=np.int64)
    lens = kept[vq]
    group_starts = np.concatenate(([0], np.flatnonzero(np.diff(lens)) + 1, [vq.shape[0]]))
    for g0, g1 in zip(group_starts[:-1], group_starts[1:]):
        n = int(lens[g0])
        rows = max(1, min(int(g1 - g0), block_elems // max(n, 1)))
        buf = np.empty((rows, n), dtype=np.float64)
        for a in range(int(g0), int(g1), rows):
            b = min(int(g1), a + rows)
            blk = buf[: b - a]
            blk.fill(0.0)
            sel = src[off[a] : off[b]]
            blk[np.repeat(np.arange(b - a), cnt[a:b]), ranks[sel]] = terms[sel]
            out[vq[a:b]] = np.add.reduce(blk, axis=1)
    return out


def finalize(
    stats: RankStats,
    *,
    cmc_mode: str,
    max_rank: int,
    num_gallery: int,
    rule: str,
    warn: bool = True,
) -> EvalResult:
    """CMC / mAP / mINP from rank statistics (docs/metrics.md#reference-arithmetic)."""
    if cmc_mode not in ("unique", "image"):
        raise VibenchError(f"cmc must be 'unique' or 'image', got {cmc_mode!r}")
    nq = stats.num_query
    npos = stats.num_pos
    valid = npos > 0
    n_v = int(valid.sum())
    if n_v == 0:
        raise VibenchError(
            f"no query has a positive gallery item left after exclusion rule {rule!r} "
            f"({nq} queries, {num_gallery} gallery items): nothing to score"
        )
    mr = effective_max_rank(max_rank, num_gallery)
    starts = stats.pos_ptr[:-1]
    if cmc_mode == "unique":
        first = stats.uniq_first[valid]
    else:
        first = stats.pos_rank[starts[valid]]
    hits = np.bincount(first[first < mr], minlength=mr)[:mr].cumsum()
    cmc = hits.astype(np.float32) / np.float32(n_v)

    ap = np.full(nq, np.nan)
    inp = np.full(nq, np.nan)
    ap[valid] = ap_numerators(stats)[valid] / npos[valid]
    last = stats.pos_rank[stats.pos_ptr[1:][valid] - 1].astype(np.float64)
    inp[valid] = npos[valid] / (last + 1.0)
    padded = int(stats.short.sum())
    if padded and warn:
        warnings.warn(
            f"{padded} of {nq} queries have fewer than max_rank={mr} "
            f"{'distinct identities' if cmc_mode == 'unique' else 'gallery items'} left after "
            f"exclusion rule {rule!r}; their CMC rows were padded with their last value",
            RuntimeWarning,
            stacklevel=3,
        )
    return EvalResult(
        cmc=cmc,
        mAP=float(np.mean(ap[valid])),
        mINP=float(np.mean(inp[valid])),
        num_valid=n_v,
        num_query=nq,
        num_gallery=num_gallery,
        rule=rule,
        cmc_mode=cmc_mode,
        max_rank=mr,
        padded_queries=padded,
        ap=ap,
        inp=inp,
        valid=valid,
    )
