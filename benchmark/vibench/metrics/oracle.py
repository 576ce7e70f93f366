"""Slow references for testing and benchmarking the fast engine.

* `oracle_evaluate`: straight from the spec, one query at a time, plain Python/NumPy loops
  (docs/metrics.md#reference-arithmetic, #exclusion-rules), with its own copy of every exclusion rule so
  it checks `rules.py` too. Ties: stable sort by gallery index (docs/metrics.md#ties).
* `reference_loop_evaluate`: the reference code's *cost profile* (AGW ``eval_sysu`` /
  ``eval_regdb`` as described in docs/metrics.md#reference-arithmetic): argsort of the whole matrix, then a per-query Python loop
  with boolean masks and ``np.unique``-based identity de-duplication. Used as the speed baseline
  of the benchmarks (and cross-checked against the oracle). Written from the spec, not copied.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

PairRule = Callable[[dict[str, Any], dict[str, Any]], bool]


def _mod(x: Any) -> int:
    if isinstance(x, str):
        return {"visible": 0, "infrared": 1}[x.lower()]
    return int(x)


#: rule name -> "is gallery item g removed from query q's list?" on plain Python dicts.
ORACLE_RULES: dict[str, PairRule] = {
    "sysu": lambda q, g: q["cam"] == 3 and g["cam"] == 2,
    "llcm": lambda q, g: q["pid"] == g["pid"] and q["cam"] == g["cam"],
    "regdb": lambda q, g: False,
    "none": lambda q, g: False,
    "market": lambda q, g: q["pid"] == g["pid"] and q["cam"] == g["cam"],
    "mix": lambda q, g: q["self"] == g["index"],
    "mix-cam": lambda q, g: q["self"] == g["index"] or q["cam"] == g["cam"],
    "mix-cam-id": lambda q, g: q["self"] == g["index"] or (q["pid"] == g["pid"] and q["cam"] == g["cam"]),
    "mix-id": lambda q, g: q["self"] == g["index"] or (q["pid"] == g["pid"] and q["mod"] == g["mod"]),
    "mix-p": lambda q, g: q["self"] == g["index"] or (q["pid"] != g["pid"] and q["mod"] == g["mod"]),
    "unimodal": lambda q, g: q["self"] == g["index"] or (q["pid"] == g["pid"] and q["cam"] == g["cam"]),
}


def oracle_evaluate(
    distmat: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    *,
    rule: str = "sysu",
    cmc: str = "unique",
    max_rank: int = 20,
    q_modalities: Any = None,
    g_modalities: Any = None,
    q_gallery_index: Any = None,
) -> dict[str, Any]:
    """The metrics computed query by query from the spec. Returns a dict with cmc (float32),
    mAP, mINP, num_valid, padded_queries, ap and inp (per valid query, in query order)."""
    d = np.asarray(distmat, dtype=np.float64)
    nq, ng = d.shape
    pred = ORACLE_RULES[rule]
    mr = min(max_rank, ng)
    hit_rows = []
    aps: list[float] = []
    inps: list[float] = []
    padded = 0
    for i in range(nq):
        q = {
            "pid": int(q_pids[i]), "cam": int(q_camids[i]),
            "mod": None if q_modalities is None else _mod(q_modalities[i]),
            "self": -1 if q_gallery_index is None else int(q_gallery_index[i]),
        }
        order = sorted(range(ng), key=lambda j: (d[i, j], j))  # stable: ties by gallery index
        kept = []
        for j in order:
            g = {
                "pid": int(g_pids[j]), "cam": int(g_camids[j]), "index": j,
                "mod": None if g_modalities is None else _mod(g_modalities[j]),
            }
            if not pred(q, g):
                kept.append(g["pid"])
        matches = [p == q["pid"] for p in kept]
        if cmc == "unique":
            uniq: list[int] = []
            seen: set[int] = set()
            for p in kept:
                if p not in seen:
                    seen.add(p)
                    uniq.append(p)
            seq = [p == q["pid"] for p in uniq]
        else:
            seq = matches
        row = []
        found = False
        for r in range(len(seq)):
            found = found or seq[r]
            row.append(1 if found else 0)
        if len(row) < mr:
            padded += 1
            row = row + [row[-1] if row else 0] * (mr - len(row))
        row = row[:mr]
        if cmc == "unique":
            hit_rows.append(row)  # every query; invalid rows are all zeros (as the reference does)
        if not any(matches):
            continue
        if cmc == "image":
            hit_rows.append(row)
        # AP and INP in the reference's arithmetic (docs/metrics.md#reference-arithmetic): the
        # running precision over the whole kept list, times the match vector, summed by NumPy
        m_vec = np.asarray(matches, dtype=np.int32)
        running = m_vec.cumsum()
        prec = [x / (k + 1.0) for k, x in enumerate(running)]
        npos = m_vec.sum()
        aps.append((np.asarray(prec) * m_vec).sum() / npos)
        last = max(k for k, m in enumerate(matches) if m)
        inps.append(running[last] / (last + 1.0))
    n_v = len(aps)
    if n_v == 0:
        raise ValueError("no valid query")
    counts = np.zeros(mr, dtype=np.float32)
    for row in hit_rows:
        counts += np.asarray(row, dtype=np.float32)
    return {
        "cmc": counts / np.float32(n_v),
        "mAP": float(np.mean(aps)),
        "mINP": float(np.mean(inps)),
        "num_valid": n_v,
        "padded_queries": padded,
        "ap": np.asarray(aps),
        "inp": np.asarray(inps),
    }


def reference_loop_evaluate(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    *,
    rule: str = "sysu",
    cmc: str = "unique",
    max_rank: int = 20,
    stable: bool = True,
) -> tuple[np.ndarray, float, float]:
    """The reference's cost profile (docs/metrics.md#reference-arithmetic): argsort of the whole matrix and a
    whole-matrix match table, then per query: boolean keep mask, ``np.unique``-based identity
    de-duplication re-ordered through a Python list, the image-level CMC, INP, and AP from a
    Python-level running precision over the whole kept list. Rules: sysu, llcm, market, regdb,
    none. `stable=True` (default) uses a stable argsort so it agrees with the engine on ties."""
    nq, ng = distmat.shape
    mr = min(max_rank, ng)
    order = np.argsort(distmat, axis=1, kind="stable" if stable else None)
    pid_ranked = g_pids[order]
    match_table = (pid_ranked == q_pids[:, np.newaxis]).astype(np.int32)
    uniq_rows = []
    img_rows = []
    aps = []
    inps = []
    n_v = 0.0
    for i in range(nq):
        cam_i = g_camids[order[i]]
        if rule == "sysu":
            drop = (q_camids[i] == 3) & (cam_i == 2)
        elif rule in ("llcm", "market"):
            drop = (pid_ranked[i] == q_pids[i]) & (cam_i == q_camids[i])
        else:
            drop = np.zeros(ng, dtype=bool)
        keep = np.invert(drop)
        lst = pid_ranked[i][keep]
        first_idx = np.unique(lst, return_index=True)[1]
        uniq = np.asarray([lst[k] for k in sorted(first_idx)])
        hit = (uniq == q_pids[i]).astype(np.int32).cumsum()
        hit = _pad(hit, mr)
        uniq_rows.append(hit)
        m = match_table[i][keep]
        if not np.any(m):
            continue
        c = m.cumsum()
        last = np.max(np.where(m == 1))
        inps.append(c[last] / (last + 1.0))
        c[c > 1] = 1
        img_rows.append(_pad(c, mr))
        n_v += 1.0
        num_rel = m.sum()
        running = m.cumsum()
        prec = [x / (k + 1.0) for k, x in enumerate(running)]
        aps.append((np.asarray(prec) * m).sum() / num_rel)
    rows = uniq_rows if cmc == "unique" else img_rows
    cmc_v = np.asarray(rows, dtype=np.float32).sum(0) / n_v
    return cmc_v.astype(np.float32), float(np.mean(aps)), float(np.mean(inps))


def _pad(row: np.ndarray, mr: int) -> np.ndarray:
    """The first mr entries, padded with the last value (the reference would crash instead)."""
    row = row[:mr]
    if row.shape[0] < mr:
        row = np.concatenate([row, np.full(mr - row.shape[0], row[-1] if row.size else 0, dtype=row.dtype)])
    return row
