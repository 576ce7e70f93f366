"""The vectorised block engine: per-query rank statistics without sorting whole rows.

For each query, the list after exclusion is the gallery ordered by (distance, gallery index)
ascending: a stable sort (protocols.md §8 (5); the reference's unstable argsort leaves ties
unspecified). Nothing is sorted: for a block of queries, the positives (same pid, kept) are
sorted by (distance, index) and every kept gallery item is assigned the bucket
``b = number of positives ordered before it`` (a batched ``searchsorted``; exact ties in distance
are resolved by gallery index). Then

* rank of the k-th positive = (#kept items with b <= k) - 1   -> AP, INP, image-level CMC;
* identities seen in bucket 0 = distinct ids ranked before the first positive
  = the first positive's rank in the identity-deduplicated list -> unique CMC (§1.5 step 2.3).

Query rows are processed in blocks of `block_rows` and the gallery in chunks of `chunk_cols`, so
memory is bounded for any gallery size; the results do not depend on either size.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from vibench.metrics.rules import Rule, Side, block_mask
from vibench.metrics.stats import RankStats

#: default element budgets: rows of the distance block x gallery size, and temporaries per chunk.
#: Small blocks keep every temporary in cache (the engine is memory-bound on CPU); on CUDA large
#: blocks amortise kernel launches.
BLOCK_ELEMS_CPU = 1 << 18
BLOCK_ELEMS_CUDA = 1 << 25
CHUNK_COLS = 1 << 17

RowFn = Callable[[int, int], torch.Tensor]


def plan_blocks(
    nq: int, ng: int, block_rows: int | None, chunk_cols: int | None, device: torch.device
) -> tuple[int, int]:
    """Query rows per block and gallery columns per chunk, from budgets or explicit sizes."""
    budget = BLOCK_ELEMS_CUDA if device.type == "cuda" else BLOCK_ELEMS_CPU
    cols = chunk_cols if chunk_cols else min(ng, CHUNK_COLS)
    rows = block_rows if block_rows else max(1, min(nq, budget // max(min(ng, cols), 1)))
    return max(1, int(rows)), max(1, int(cols))


def rank_stats(
    rows_fn: RowFn,
    q: Side,
    g: Side,
    rule: Rule,
    *,
    cmc_mode: str,
    max_rank: int,
    device: torch.device,
    block_rows: int | None = None,
    chunk_cols: int | None = None,
    topk: int = 0,
    on_block: Callable[[int, int, torch.Tensor, torch.Tensor | None], None] | None = None,
) -> tuple[RankStats, tuple[np.ndarray, np.ndarray] | None]:
    """Rank statistics for every query; `rows_fn(a, b)` returns distance rows [a, b) on `device`.

    With ``topk > 0`` also returns the first `topk` gallery indices (-1 padded) and distances of
    each query's list after exclusion. `on_block(a, b, dist, removed)` sees every block.
    """
    nq, ng = q.pid.shape[0], g.pid.shape[0]
    rows, cols = plan_blocks(nq, ng, block_rows, chunk_cols, device)
    g_dev = g.to(device)
    # compact identity classes of the gallery (query pids absent from the gallery never match)
    g_uniq, g_cls = torch.unique(g.pid, return_inverse=True)
    g_cls = g_cls.to(device)
    n_cls = int(g_uniq.shape[0])
    need_ids = cmc_mode == "unique" and (
        rule.max_ids_removed is None or n_cls - rule.max_ids_removed < max_rank
    )
    ptr_parts: list[np.ndarray] = []
    rank_parts: list[np.ndarray] = []
    index_parts: list[np.ndarray] = []
    uniq_first = np.full(nq, -1, dtype=np.int64)
    num_kept = np.zeros(nq, dtype=np.int64)
    short = np.zeros(nq, dtype=bool)
    top_idx = np.full((nq, topk), -1, dtype=np.int64) if topk else None
    top_dst = np.full((nq, topk), np.inf, dtype=np.float64) if topk else None
    npos_all = np.zeros(nq, dtype=np.int64)

    for a in range(0, nq, rows):
        b = min(nq, a + rows)
        dist = rows_fn(a, b)
        qb = q.rows(a, b).to(device)
        removed = block_mask(rule, qb, g_dev)
        if on_block is not None:
            on_block(a, b, dist, removed)
        keep = None if removed is None else ~removed
        out = _block(dist, keep, qb, g_dev, g_cls, n_cls, cols, need_ids)
        pos_rank, pos_index, npos, ufirst, kept, ids_kept = out
        npos_all[a:b] = npos
        rank_parts.append(pos_rank)
        index_parts.append(pos_index)
        uniq_first[a:b] = ufirst
        num_kept[a:b] = kept
        if cmc_mode == "unique":
            short[a:b] = (ids_kept if ids_kept is not None else n_cls - _removed_ids_bound(rule)) < max_rank
        else:
            short[a:b] = kept < max_rank
        if topk:
            ti, td = _topk_block(dist, keep, topk)
            top_idx[a:b, : ti.shape[1]] = ti
            top_dst[a:b, : td.shape[1]] = td
    ptr = np.zeros(nq + 1, dtype=np.int64)
    np.cumsum(npos_all, out=ptr[1:])
    stats = RankStats(
        pos_ptr=ptr,
        pos_rank=np.concatenate(rank_parts) if rank_parts else np.zeros(0, np.int64),
        pos_index=np.concatenate(index_parts) if index_parts else np.zeros(0, np.int64),
        uniq_first=uniq_first,
        num_kept=num_kept,
        short=short,
    )
    return stats, ((top_idx, top_dst) if topk else None)


def _removed_ids_bound(rule: Rule) -> int:
    return int(rule.max_ids_removed or 0)


def _block(
    dist: torch.Tensor,
    keep: torch.Tensor | None,
    q: Side,
    g: Side,
    g_cls: torch.Tensor,
    n_cls: int,
    cols: int,
    need_ids: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Rank statistics of one query block.

    Ranks of positives are counted, not sorted: each kept item gets a histogram bin from a
    monotone map of its distance onto [first positive, last positive] of its row, so items in
    lower bins than a positive are before it, items in higher bins after it, and only items that
    share a bin with a positive are compared exactly (distance, then gallery index). The
    deduplicated rank of the first positive is the number of identities whose nearest kept item
    precedes it (a scatter-min over identities).
    """
    B, ng = dist.shape
    dev = dist.device
    pos = g.pid[None, :] == q.pid[:, None]
    if keep is not None:
        pos &= keep
    npos = pos.sum(1)
    pmax = int(npos.max()) if B else 0
    # positives of each row, sorted by (distance, gallery index); padding = +inf / index ng
    r_idx, c_idx = pos.nonzero(as_tuple=True)
    del pos
    starts = torch.cumsum(npos, 0) - npos
    slot = torch.arange(r_idx.shape[0], device=dev) - starts[r_idx]
    pd = torch.full((B, pmax), float("inf"), dtype=dist.dtype, device=dev)
    pj = torch.full((B, pmax), ng, dtype=torch.int64, device=dev)
    pd[r_idx, slot] = dist[r_idx, c_idx]
    pj[r_idx, slot] = c_idx
    pd, perm = torch.sort(pd, dim=1, stable=True)
    pj = torch.gather(pj, 1, perm)
    valid = npos > 0
    slots = torch.arange(pmax, device=dev)
    real = slots[None, :] < npos[:, None]

    # monotone binning (float32 is enough: rounding is monotone; exactness comes from the
    # exact comparison inside shared bins). bins: 0 (before), 1..Q+1, Q+2 (after), Q+3 removed.
    n_bins = int(min(max(ng, 16), 1 << 15))
    has_pos = valid.any().item() if B else False
    if pmax:
        lo = pd[:, :1].clone()
        hi = torch.gather(pd, 1, (npos - 1).clamp_min(0)[:, None])
        lo[~valid] = 0.0
        hi[~valid] = 0.0
        width = (hi - lo).double()
        big = 1e30
        scale = torch.where(width > 0, n_bins / width, torch.full_like(width, big)).clamp_max(big)
        lo32, scale32 = lo.float(), scale.float()
        pbin = _bins(pd, lo32, scale32, n_bins)
        pbin = torch.where(real, pbin, torch.full_like(pbin, n_bins + 3))
    dump = n_bins + 3
    ones = torch.ones(1, 1, dtype=torch.int64, device=dev)
    hist = torch.zeros(B, n_bins + 4, dtype=torch.int64, device=dev)
    same_before = torch.zeros(B, max(pmax, 1), dtype=torch.int64, device=dev)
    cls_min = torch.full((B, n_cls), float("inf"), dtype=dist.dtype, device=dev) if (has_pos or need_ids) else None
    if pmax:
        flagged = torch.zeros(B, n_bins + 4, dtype=torch.bool, device=dev)
        flagged.scatter_(1, pbin, True)
        flagged[:, dump] = False
    for s in range(0, ng, cols):
        e = min(ng, s + cols)
        dc = dist[:, s:e] if cols < ng else dist
        kc = None if keep is None else (keep[:, s:e] if cols < ng else keep)
        if cls_min is not None:
            masked = dc if kc is None else dc.masked_fill(~kc, float("inf"))
            cls_min.scatter_reduce_(1, g_cls[s:e].expand(B, e - s), masked, "amin")
        if not pmax:
            continue
        bins = _bins(dc, lo32, scale32, n_bins)
        if kc is not None:
            bins.masked_fill_(~kc, dump)
        hist.scatter_add_(1, bins, ones.expand(B, e - s))
        shared = torch.gather(flagged, 1, bins).nonzero(as_tuple=True)
        _count_shared(shared, s, dc, bins, pd, pj, pbin, same_before)

    kept = (keep.sum(1) if keep is not None else torch.full((B,), ng, device=dev)).to(torch.int64)
    if pmax:
        cum = torch.cumsum(hist, 1)
        below = torch.gather(cum, 1, (pbin - 1).clamp(0, n_bins + 3))
        below = torch.where(pbin > 0, below, torch.zeros_like(below))
        ranks = below + same_before[:, :pmax]
        pos_rank = ranks[real]
        pos_index = pj[real]
    else:
        pos_rank = torch.zeros(0, dtype=torch.int64)
        pos_index = torch.zeros(0, dtype=torch.int64)
    ufirst = torch.full((B,), -1, dtype=torch.int64, device=dev)
    ids_kept = None
    if cls_min is not None:
        if need_ids:
            ids_kept = torch.isfinite(cls_min).sum(1).cpu().numpy()
        if pmax:
            first_d = pd[:, :1]
            ufirst = (cls_min < first_d).sum(1)
            tie_rows = (((cls_min == first_d).sum(1) > 1) & valid).nonzero(as_tuple=True)[0]
            if tie_rows.numel():
                ufirst[tie_rows] = _ufirst_exact(dist[tie_rows], None if keep is None else keep[tie_rows],
                                                 g_cls, n_cls, pd[tie_rows, 0], pj[tie_rows, 0])
            ufirst = torch.where(valid, ufirst, torch.full_like(ufirst, -1))
    return (
        pos_rank.cpu().numpy(),
        pos_index.cpu().numpy(),
        npos.cpu().numpy(),
        ufirst.cpu().numpy(),
        kept.cpu().numpy(),
        ids_kept,
    )


def _bins(x: torch.Tensor, lo: torch.Tensor, scale: torch.Tensor, n_bins: int) -> torch.Tensor:
    """Monotone non-decreasing bin index in [0, n_bins + 2] of each value (per-row lo, scale)."""
    t = x.to(torch.float32, copy=True)
    t.sub_(lo).mul_(scale).add_(1.0).clamp_(0.0, float(n_bins + 2)).floor_()
    return t.to(torch.int64)


def _count_shared(
    shared: tuple[torch.Tensor, torch.Tensor],
    col0: int,
    dc: torch.Tensor,
    bins: torch.Tensor,
    pd: torch.Tensor,
    pj: torch.Tensor,
    pbin: torch.Tensor,
    same_before: torch.Tensor,
    piece: int = 1 << 20,
) -> None:
    """For items sharing a bin with positives, count exactly which positives they precede:
    (distance, gallery index) lexicographic order = the stable sort (protocols.md §8 (5))."""
    rr, cc = shared
    pmax = pd.shape[1]
    step = max(1, piece // max(pmax, 1))
    for a in range(0, rr.shape[0], step):
        r, c = rr[a:a + step], cc[a:a + step]
        dv = dc[r, c][:, None]
        bv = bins[r, c][:, None]
        j = (c + col0)[:, None]
        pdr = pd[r]
        before = (pbin[r] == bv) & ((dv < pdr) | ((dv == pdr) & (j < pj[r])))
        same_before.index_add_(0, r, before.to(torch.int64))


def _ufirst_exact(
    dist: torch.Tensor,
    keep: torch.Tensor | None,
    g_cls: torch.Tensor,
    n_cls: int,
    d0: torch.Tensor,
    j0: torch.Tensor,
) -> torch.Tensor:
    """Distinct identities ordered before each row's first positive, ties by gallery index
    (used only for rows where another identity's nearest item ties the first positive)."""
    R, ng = dist.shape
    j = torch.arange(ng, device=dist.device)[None, :]
    before = (dist < d0[:, None]) | ((dist == d0[:, None]) & (j < j0[:, None]))
    if keep is not None:
        before &= keep
    seen = torch.zeros(R, n_cls + 1, dtype=torch.bool, device=dist.device)
    seen.scatter_(1, torch.where(before, g_cls[None, :].expand(R, ng), n_cls), True)
    return seen[:, :n_cls].sum(1)


def _topk_block(dist: torch.Tensor, keep: torch.Tensor | None, k: int) -> tuple[np.ndarray, np.ndarray]:
    """First k items of each row's list after exclusion, ordered by (distance, index).

    topk does not order ties; rows where a tie straddles the cut are redone with a stable sort.
    """
    B, ng = dist.shape
    k = min(k, ng)
    masked = dist if keep is None else dist.masked_fill(~keep, float("inf"))
    vals, idx = torch.topk(masked, k, dim=1, largest=False, sorted=True)
    # order (value, index) lexicographically: sort by index, then stable by value
    idx, o = torch.sort(idx, dim=1)
    vals = torch.gather(vals, 1, o)
    vals, o = torch.sort(vals, dim=1, stable=True)
    idx = torch.gather(idx, 1, o)
    cut = vals[:, -1:]
    straddle = (masked == cut).sum(1) != (vals == cut).sum(1)
    if bool(straddle.any()):
        rows = straddle.nonzero(as_tuple=True)[0]
        sv, si = torch.sort(masked[rows], dim=1, stable=True)
        vals[rows] = sv[:, :k]
        idx[rows] = si[:, :k]
    removed = torch.isinf(vals)
    idx = idx.masked_fill(removed, -1)
    return idx.cpu().numpy(), vals.double().cpu().numpy()
