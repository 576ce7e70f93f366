"""The one trial summary of the result store, and the per-trial record.

Every writer (``vibench run``, ``vibench eval``) stores :func:`summarize_trials` in
``metrics/<protocol>.json``; the report averages trials (and RegDB split cells) with the same
function, and migration fills missing summaries with it.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

SUMMARY_KEYS = ("rank1", "rank5", "rank10", "rank20", "mAP", "mINP")


def mean_cmc(trials: Mapping[str, Mapping[str, Any]]) -> np.ndarray:
    """Mean CMC curve over trials: a float32 vector sum divided by n (AGW's accumulation of the
    per-trial curves); curves of different lengths are cut to the shortest."""
    rows = list(trials.values())
    if not rows:
        raise ValueError("no trials to summarize")
    n = min(len(r["cmc"]) for r in rows)
    cmc = np.zeros(n, dtype=np.float32)
    for r in rows:
        cmc += np.asarray(r["cmc"][:n], dtype=np.float32)
    return cmc / np.float32(len(rows))


def summarize_trials(trials: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """{rank1, rank5, rank10, rank20, mAP, mINP}: the mean over `trials` (trial -> record), CMC by
    :func:`mean_cmc` (rank-k beyond the curve's length reads its last value), mAP and mINP as
    float64 means."""
    cmc = mean_cmc(trials)
    rows = list(trials.values())
    out = {"mAP": float(np.mean([float(r["mAP"]) for r in rows])),
           "mINP": float(np.mean([float(r.get("mINP", np.nan)) for r in rows]))}
    for k in (1, 5, 10, 20):
        out[f"rank{k}"] = float(cmc[min(k, len(cmc)) - 1])
    return out


def trial_record(result: Any, lists: Any) -> dict[str, Any]:
    """The record of one trial: the EvalResult's fields plus the sha256 of its protocol lists."""
    return {**result.to_dict(), "list_sha256": lists.sha256}


def curve_summary(curve: Mapping[str, Any], protocol: str, metric: str = "mAP") -> dict[str, Any] | None:
    """Last-epoch and best-on-test values of `metric` for `protocol` in a cell's ``curve.json``
    (``vibench run --eval-every``): {last, last_epoch, best, best_epoch, gap = best - last};
    the earliest epoch wins a tie for best. None when the curve lacks the protocol."""
    pts = [(int(p["epoch"]), float(p["protocols"][protocol]["summary"][metric]))
           for p in curve.get("points", []) if protocol in p.get("protocols", {})]
    if not pts:
        return None
    last_epoch, last = max(pts)
    best_epoch, best = max(pts, key=lambda e: (e[1], -e[0]))
    return {"last": last, "last_epoch": last_epoch, "best": best, "best_epoch": best_epoch, "gap": best - last}
