"""Per-query rank statistics and the one function that turns them into CMC / mAP / mINP.

Both `vibench.evaluate` and re-scoring of stored rankings (`rankings.score_rankings`) go through
`finalize`, so a stored ranking reproduces the metrics bit for bit.

Arithmetic follows protocols.md §1.5 step 3 and §8 (4):
* CMC = float32(number of hit rows at rank r) / float32(number of valid queries), a float32
  division, exactly as the reference's float32 row sum divided by the valid count;
* AP_i = (1/P) Σ_k (k+1)/(rank_k+1) over the positives (float64), INP_i = P/(rank_last+1);
* mAP and mINP = float64 means over the valid queries; queries without positives are skipped.
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
    their last CMC value; the reference code crashes there, protocols.md §8 (6)).
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
    """min(max_rank, gallery size), as the reference does (protocols.md §1.5 inputs)."""
    if isinstance(max_rank, bool) or not isinstance(max_rank, (int, np.integer)) or max_rank < 1:
        raise VibenchError(f"max_rank must be a positive integer, got {max_rank!r}")
    return int(min(int(max_rank), num_gallery))


def finalize(
    stats: RankStats,
    *,
    cmc_mode: str,
    max_rank: int,
    num_gallery: int,
    rule: str,
    warn: bool = True,
) -> EvalResult:
    """CMC / mAP / mINP from rank statistics (protocols.md §1.5 steps 2-3, §2.3)."""
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

    ranks = stats.pos_rank.astype(np.float64)
    local = np.arange(ranks.shape[0], dtype=np.int64) - np.repeat(starts, npos)
    terms = (local + 1).astype(np.float64) / (ranks + 1.0)
    ap = np.full(nq, np.nan)
    inp = np.full(nq, np.nan)
    vstarts = starts[valid]
    ap[valid] = np.add.reduceat(terms, vstarts) / npos[valid]
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
