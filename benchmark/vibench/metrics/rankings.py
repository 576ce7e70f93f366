"""Raw rankings: what one protocol trial ranked, stored so every metric can be recomputed exactly
without the model (`vibench score`). Layout in the result store (docs/ARCHITECTURE.md):
``<cell>/rankings/<protocol>/trial-<t>.npz``. Format (docs/metrics.md, "Raw rankings"):

=================  ==========================  ===============================================
key                dtype / shape               meaning
=================  ==========================  ===============================================
meta               str (JSON)                  schema_version, protocol, protocol_version,
                                               trial, dataset, rule, cmc_mode, max_rank,
                                               requested_max_rank, num_query, num_gallery,
                                               topk, list_sha256, query_sha256,
                                               gallery_sha256, rerank
topk_index         int32 (nq, K)               first K gallery indices of each query's list
                                               after exclusion (stable order), -1 padded
topk_dist          float32/64 (nq, K)          their distances (+inf padding)
pos_ptr            int64 (nq+1,)               CSR offsets into pos_rank / pos_index
pos_rank           int64 (P,)                  0-based rank of every positive after exclusion
pos_index          int64 (P,)                  its gallery index
uniq_first         int64 (nq,)                 rank of the first positive in the identity-
                                               deduplicated list (-1: no positive)
num_kept           int64 (nq,)                 gallery items left after exclusion
short              bool (nq,)                  list shorter than max_rank (CMC row padded)
=================  ==========================  ===============================================

Validity = ``pos_ptr[i+1] > pos_ptr[i]``. The metrics are `stats.finalize` of these arrays, the
same function `vibench.evaluate` ends with, so re-scoring is bit-exact.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vibench.errors import VibenchError
from vibench.io import read_npz, save_npz_atomic
from vibench.metrics.stats import EvalResult, RankStats, finalize

SCHEMA_VERSION = 1
DEFAULT_TOPK = 100
_ARRAYS = ("topk_index", "topk_dist", "pos_ptr", "pos_rank", "pos_index", "uniq_first", "num_kept", "short")
_META = ("schema_version", "protocol", "trial", "rule", "cmc_mode", "max_rank", "num_query", "num_gallery")


@dataclass
class Rankings:
    """One trial's raw rankings: `meta` (see the module docstring), rank statistics, top-K."""

    meta: dict[str, Any]
    stats: RankStats
    topk_index: np.ndarray
    topk_dist: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def valid(self) -> np.ndarray:
        return np.diff(self.stats.pos_ptr) > 0


def save_rankings(path: str | Path, rankings: Rankings) -> None:
    """Write `rankings` atomically as a compressed npz."""
    s = rankings.stats
    save_npz_atomic(
        path,
        meta=np.array(json.dumps(rankings.meta, sort_keys=True)),
        topk_index=rankings.topk_index.astype(np.int32),
        topk_dist=rankings.topk_dist,
        pos_ptr=s.pos_ptr.astype(np.int64),
        pos_rank=s.pos_rank.astype(np.int64),
        pos_index=s.pos_index.astype(np.int64),
        uniq_first=s.uniq_first.astype(np.int64),
        num_kept=s.num_kept.astype(np.int64),
        short=s.short.astype(bool),
    )


def load_rankings(path: str | Path) -> Rankings:
    """Read and check a rankings file; any problem raises VibenchError naming the file."""
    path = Path(path)
    data = read_npz(path, "rankings")
    missing = [k for k in ("meta",) + _ARRAYS if k not in data]
    if missing:
        raise VibenchError(f"{path}: missing arrays {', '.join(missing)} (expected a vibench rankings file)")
    try:
        meta = json.loads(str(data["meta"]))
    except json.JSONDecodeError as exc:
        raise VibenchError(f"{path}: 'meta' is not JSON ({exc})") from exc
    lost = [k for k in _META if k not in meta]
    if lost:
        raise VibenchError(f"{path}: meta lacks {', '.join(lost)}")
    if meta["schema_version"] != SCHEMA_VERSION:
        raise VibenchError(f"{path}: schema_version {meta['schema_version']}, expected {SCHEMA_VERSION}")
    nq = int(meta["num_query"])
    ptr = data["pos_ptr"]
    checks = [
        (ptr.shape == (nq + 1,), f"pos_ptr has shape {ptr.shape}, expected ({nq + 1},)"),
        (ptr.size > 0 and ptr[0] == 0 and bool(np.all(np.diff(ptr) >= 0)), "pos_ptr is not a CSR offset array"),
        (data["pos_rank"].shape == (int(ptr[-1]) if ptr.size else 0,), "pos_rank length differs from pos_ptr[-1]"),
        (data["pos_index"].shape == data["pos_rank"].shape, "pos_index and pos_rank lengths differ"),
        (data["uniq_first"].shape == (nq,), "uniq_first length differs from num_query"),
        (data["num_kept"].shape == (nq,), "num_kept length differs from num_query"),
        (data["short"].shape == (nq,), "short length differs from num_query"),
        (data["topk_index"].ndim == 2 and data["topk_index"].shape[0] == nq, "topk_index is not (num_query, K)"),
        (data["topk_dist"].shape == data["topk_index"].shape, "topk_dist and topk_index shapes differ"),
    ]
    for ok, msg in checks:
        if not ok:
            raise VibenchError(f"{path}: {msg}")
    stats = RankStats(
        pos_ptr=ptr.astype(np.int64),
        pos_rank=data["pos_rank"].astype(np.int64),
        pos_index=data["pos_index"].astype(np.int64),
        uniq_first=data["uniq_first"].astype(np.int64),
        num_kept=data["num_kept"].astype(np.int64),
        short=data["short"].astype(bool),
    )
    return Rankings(meta=meta, stats=stats, topk_index=data["topk_index"].astype(np.int64),
                    topk_dist=data["topk_dist"])


def score_rankings(rankings: Rankings, *, warn: bool = False) -> EvalResult:
    """The metrics of stored rankings (identical to the `vibench.evaluate` call that made them)."""
    m = rankings.meta
    return finalize(
        rankings.stats,
        cmc_mode=m["cmc_mode"],
        max_rank=int(m["max_rank"]),
        num_gallery=int(m["num_gallery"]),
        rule=m["rule"],
        warn=warn,
    )
