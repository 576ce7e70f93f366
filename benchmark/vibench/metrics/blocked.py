"""The vectorised block engine: per-query rank statistics without sorting whole rows.

For each query, the list after exclusion is the gallery ordered by (distance, gallery index)
ascending: a stable sort (docs/metrics.md#ties; the reference's unstable argsort leaves ties
unspecified). Nothing is sorted. For a block of queries:

* positives = the query identity's gallery items (a per-identity member table) minus the
  removed ones, sorted by (distance, index);
* every item gets a histogram bin from a monotone map of its distance onto [first positive,
  last positive] of its row; removed items become +inf (they never precede a positive); items
  in lower bins than a positive precede it, items in higher bins follow it, and the few items
  sharing a bin with positives are compared exactly (`_count_shared`);
* rank of a positive = (items in lower bins) + (exact in-bin count) -> AP, INP, image CMC;
* the first positive's rank in the identity-deduplicated list = the number of identities whose
  nearest kept item precedes it (scatter-min per identity; equal minima re-checked exactly)
  -> unique CMC (docs/metrics.md#reference-arithmetic).

Query rows are processed in blocks of `block_rows` and the gallery in chunks of `chunk_cols`, so
memory is bounded for any gallery size; the results do not depend on either size.
"""
from __future__ import annotations

import ctypes
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from vibench.metrics.rules import Rule, Side, block_mask
from vibench.metrics.stats import RankStats
from vibench.metrics.topk import stable_topk_block

#: default element budgets: rows of the distance block x gallery size, and temporaries per chunk.
#: On CPU a block's temporaries stay within a core's L2 (2 MiB on the reference machine) while
#: amortising the ~130 operator calls each block makes (2^18 elements was 15-20% slower at
#: 3803 x 3010: per-call overhead); on CUDA large blocks amortise kernel launches.
BLOCK_ELEMS_CPU = 1 << 19
BLOCK_ELEMS_CUDA = 1 << 25
CHUNK_COLS = 1 << 17
#: galleries larger than this are evaluated on one thread by default
HUGE_GALLERY = 1 << 15

RowFn = Callable[[int, int], torch.Tensor]


def plan_blocks(
    nq: int, ng: int, block_rows: int | None, chunk_cols: int | None, device: torch.device
) -> tuple[int, int]:
    """Query rows per block and gallery columns per chunk, from budgets or explicit sizes."""
    budget = BLOCK_ELEMS_CUDA if device.type == "cuda" else BLOCK_ELEMS_CPU
    cols = chunk_cols if chunk_cols else min(ng, CHUNK_COLS)
    # at least 32 rows per block so huge galleries do not drown in per-block overhead
    rows = block_rows if block_rows else max(1, min(nq, max(32, budget // max(min(ng, cols), 1))))
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
    work_f32: bool = False,
    workers: int | None = None,
) -> tuple[RankStats, tuple[np.ndarray, np.ndarray] | None]:
    """Rank statistics for every query; `rows_fn(a, b)` returns distance rows [a, b) on `device`.

    With ``topk > 0`` also returns the first `topk` gallery indices (-1 padded) and distances of
    each query's list after exclusion. On CPU, blocks run on `workers` threads (default: torch's
    intra-op thread count) with single-threaded operators: blocks are independent, so this
    scales without the per-operator synchronisation that hurts on busy machines; results are
    assembled in block order, so they do not depend on scheduling.
    """
    nq, ng = q.pid.shape[0], g.pid.shape[0]
    rows, cols = plan_blocks(nq, ng, block_rows, chunk_cols, device)
    g_dev = g.to(device)
    # compact identity classes of the gallery (query pids absent from the gallery never match)
    gal = GalleryIndex.build(g.pid, device)
    n_cls = gal.n_cls
    need_ids = cmc_mode == "unique" and (
        rule.max_ids_removed is None or n_cls - rule.max_ids_removed < max_rank
    )
    unique = cmc_mode == "unique"
    big_blocks = device.type == "cpu" and rows * min(ng, cols) >= (1 << 20)

    def run(a: int) -> tuple:
        b = min(nq, a + rows)
        dist = rows_fn(a, b)
        qb = q.rows(a, b).to(device)
        removed = block_mask(rule, qb, g_dev)
        out = _block(dist, removed, qb, g_dev, gal, rule, cols, need_ids, unique, work_f32)
        top = _topk_block(dist, removed, topk) if topk else None
        del dist, removed
        if big_blocks:
            _release_free_memory()
        return out, top

    starts = list(range(0, nq, rows))
    if device.type != "cpu":
        results = [run(a) for a in starts]
    else:
        if workers is None:
            # threads over blocks pay off for cache-sized blocks; with huge galleries one thread
            # keeps the allocator from fragmenting (memory stays bounded, see docs/metrics.md)
            workers = torch.get_num_threads() if ng <= HUGE_GALLERY else 1
        n_workers = max(1, min(workers, len(starts)))
        prev = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            if n_workers == 1:
                results = [run(a) for a in starts]
            else:
                with ThreadPoolExecutor(max_workers=n_workers) as pool:
                    results = list(pool.map(run, starts))
        finally:
            torch.set_num_threads(prev)

    uniq_first = np.full(nq, -1, dtype=np.int64)
    num_kept = np.zeros(nq, dtype=np.int64)
    short = np.zeros(nq, dtype=bool)
    npos_all = np.zeros(nq, dtype=np.int64)
    top_idx = np.full((nq, topk), -1, dtype=np.int64) if topk else None
    top_dst = np.full((nq, topk), np.inf, dtype=np.float64) if topk else None
    rank_parts: list[np.ndarray] = []
    index_parts: list[np.ndarray] = []
    for a, (out, top) in zip(starts, results):
        b = min(nq, a + rows)
        pos_rank, pos_index, npos, ufirst, kept, ids_kept = out
        npos_all[a:b] = npos
        rank_parts.append(pos_rank)
        index_parts.append(pos_index)
        uniq_first[a:b] = ufirst
        num_kept[a:b] = kept
        if unique:
            short[a:b] = (ids_kept if ids_kept is not None else n_cls - _removed_ids_bound(rule)) < max_rank
        else:
            short[a:b] = kept < max_rank
        if top is not None:
            ti, td = top
            top_idx[a:b, : ti.shape[1]] = ti
            top_dst[a:b, : td.shape[1]] = td
    ptr = np.zeros(nq + 1, dtype=np.int64)
    np.cumsum(npos_all, out=ptr[1:])
    stats = RankStats(
        pos_ptr=ptr,
        pos_rank=np.concatenate(rank_parts).astype(np.int64) if rank_parts else np.zeros(0, np.int64),
        pos_index=np.concatenate(index_parts).astype(np.int64) if index_parts else np.zeros(0, np.int64),
        uniq_first=uniq_first,
        num_kept=num_kept,
        short=short,
    )
    return stats, ((top_idx, top_dst) if topk else None)


def _release_free_memory() -> None:
    """Hand freed heap memory back to the OS (glibc ``malloc_trim``). Large, varying block
    temporaries otherwise ratchet glibc's dynamic mmap threshold up and the heap grows by about
    one block per block: a 100k x 100k run climbed to several GB without this."""
    global _MALLOC_TRIM
    if _MALLOC_TRIM is None:
        try:
            _MALLOC_TRIM = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _MALLOC_TRIM = False
    if _MALLOC_TRIM:
        _MALLOC_TRIM(0)


_MALLOC_TRIM = None


@dataclass(frozen=True)
class GalleryIndex:
    """Gallery identities as classes: `uniq` sorted pids, `cls` each item's class, `members`
    (n_cls + 1, S) the gallery indices of each class in ascending order, padded with ng (the
    last row, all padding, serves queries whose pid is absent from the gallery), `min_cols` the
    column order for per-class minima."""

    uniq: torch.Tensor
    cls: torch.Tensor
    members: torch.Tensor
    n_cls: int
    #: (n_cls * S,) the member table flattened with each padding slot replaced by its class's
    #: first member (a repeat leaves a minimum unchanged), or None when padding would more than
    #: double the gallery (skewed class sizes): then minima use a scatter
    min_cols: torch.Tensor | None

    @staticmethod
    def build(g_pid: torch.Tensor, device: torch.device) -> "GalleryIndex":
        ng = g_pid.shape[0]
        uniq, cls, counts = torch.unique(g_pid, return_inverse=True, return_counts=True)
        n_cls = int(uniq.shape[0])
        order = torch.argsort(cls, stable=True)
        width = int(counts.max())
        starts = torch.cumsum(counts, 0) - counts
        slot = torch.arange(ng) - starts[cls[order]]
        members = torch.full((n_cls + 1, width), ng, dtype=torch.int64)
        members[cls[order], slot] = order
        min_cols = None
        if n_cls * width <= 2 * ng:
            real = members[:n_cls]
            min_cols = torch.where(real < ng, real, real[:, :1]).reshape(-1).to(device)
        return GalleryIndex(uniq.to(device), cls.to(device), members.to(device), n_cls, min_cols)

    def class_min(self, values: torch.Tensor, out: torch.Tensor) -> None:
        """``out[r, c] = min(out[r, c], min of values[r, items of class c])`` for a chunk that is
        the whole gallery. A column gather + row minimum is about twice as fast on CPU as
        ``scatter_reduce(amin)`` (docs/metrics.md#speed)."""
        if self.min_cols is None:
            out.scatter_reduce_(1, self.cls.expand(values.shape[0], -1), values, "amin")
        else:
            per_cls = values.index_select(1, self.min_cols).view(values.shape[0], self.n_cls, -1)
            torch.minimum(out, per_cls.amin(2), out=out)


def _removed_ids_bound(rule: Rule) -> int:
    return int(rule.max_ids_removed or 0)


def _block(
    dist: torch.Tensor,
    removed: torch.Tensor | None,
    q: Side,
    g: Side,
    gal: "GalleryIndex",
    rule: Rule,
    cols: int,
    need_ids: bool,
    unique: bool,
    work_f32: bool = False,
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
    g_uniq, g_cls, members, n_cls = gal.uniq, gal.cls, gal.members, gal.n_cls
    # positives: the query identity's gallery items (a per-class member table, so no (B, ng)
    # comparison), minus the removed ones; sorted by (distance, gallery index), padded +inf / ng
    q_cls = torch.searchsorted(g_uniq, q.pid).clamp_max(n_cls)
    q_cls = torch.where((q_cls < n_cls) & (g_uniq[q_cls.clamp_max(n_cls - 1)] == q.pid), q_cls, n_cls)
    cand = members[q_cls]  # (B, S), padding = ng
    ok = cand < ng
    cand0 = cand.clamp_max(ng - 1)
    rule_out = rule.predicate(
        Side(q.pid[:, None], q.cam[:, None], None if q.mod is None else q.mod[:, None],
             None if q.index is None else q.index[:, None]),
        Side(g.pid[cand0], g.cam[cand0], None if g.mod is None else g.mod[cand0], cand0),
    )
    if rule_out is not None:
        ok &= ~rule_out
    npos = ok.sum(1)
    pmax = int(npos.max()) if B else 0
    pd = torch.gather(dist, 1, cand0).masked_fill_(~ok, float("inf"))
    pj = cand.masked_fill(~ok, ng)
    pd, perm = torch.sort(pd, dim=1, stable=True)
    pd = pd[:, :pmax].contiguous()
    pj = torch.gather(pj, 1, perm)[:, :pmax]
    valid = npos > 0
    slots = torch.arange(pmax, device=dev)
    real = slots[None, :] < npos[:, None]

    # Monotone binning: x -> floor(x*scale + offset) clamped to [0, n_bins+2] is non-decreasing
    # in x (every rounding step is monotone), which is all the counting needs; exactness comes
    # from comparing items that share a bin with a positive. Bin n_bins+3 = padding slots.
    n_bins = int(min(max(ng // 2, 16), 1 << 15))
    dump = n_bins + 3
    # working precision for binning and identity minima: float32 is enough when the values fit
    # (rounding is monotone, so strict order survives; equalities are re-checked exactly)
    wdtype = torch.float32 if work_f32 else dist.dtype
    if pmax:
        lo = torch.where(valid, pd[:, 0], torch.zeros_like(pd[:, 0])).double()[:, None]
        hi = torch.gather(pd, 1, (npos - 1).clamp_min(0)[:, None]).double()
        hi = torch.where(valid[:, None], hi, lo)
        width = hi - lo
        scale = torch.where(width > 0, n_bins / width, torch.full_like(width, 1e30)).clamp_max(1e30)
        offset = 1.5 - lo * scale  # the first positive lands mid-bin 1: nothing below it shares its bin
        scale_b, offset_b = scale.to(wdtype), offset.to(wdtype)
        pbin = _bins(pd.to(wdtype), scale_b, offset_b, n_bins)
        pbin.masked_fill_(~real, dump)
        hist = torch.zeros(B, n_bins + 4, dtype=torch.int32, device=dev)
        # a contiguous source: scatter_add_ from an expanded (stride-0) one is ~3x slower on CPU
        ones = torch.ones(B, min(ng, cols), dtype=torch.int32, device=dev)
    cls_min = None
    if (unique and pmax) or need_ids:
        cls_min = torch.full((B, n_cls), float("inf"), dtype=wdtype, device=dev)
    if pmax:
        # flattened positives in (row, distance, index) order = (row, bin) order. `group[r, b]`
        # = n_flat - (flat index of the first positive of row r in bin b), 0 when none;
        # `run_end[k]` = the end of the run of positives sharing k's (row, bin).
        flat_d, flat_j = pd[real], pj[real]
        n_flat = flat_d.shape[0]
        flat_key = (torch.arange(B, device=dev)[:, None] * (n_bins + 4) + pbin)[real]
        flat_pos = torch.arange(n_flat, device=dev)
        group = torch.zeros(B, n_bins + 4, dtype=torch.int32, device=dev)
        code = torch.full((B, pmax), 0, dtype=torch.int32, device=dev)
        code[real] = (n_flat - flat_pos).to(torch.int32)
        group.scatter_reduce_(1, pbin, code, "amax")
        group[:, dump] = 0
        new_run = torch.ones(n_flat, dtype=torch.bool, device=dev)
        new_run[1:] = flat_key[1:] != flat_key[:-1]
        run_id = torch.cumsum(new_run, 0) - 1
        run_stop = torch.zeros(int(run_id[-1]) + 1 if n_flat else 0, dtype=torch.int64, device=dev)
        run_stop.scatter_reduce_(0, run_id, flat_pos + 1, "amax", include_self=False)
        run_end = run_stop[run_id]
        max_run = int((run_end - flat_pos).max()) if n_flat else 0
        same_before = torch.zeros(n_flat, dtype=torch.int64, device=dev)
    for s in range(0, ng, cols):
        e = min(ng, s + cols)
        whole = s == 0 and e == ng
        dc = dist if whole else dist[:, s:e]
        rc = None if removed is None else (removed if whole else removed[:, s:e])
        if wdtype != dc.dtype:
            masked = dc.to(wdtype)
            if rc is not None:
                masked.masked_fill_(rc, float("inf"))
        else:
            masked = dc if rc is None else dc.masked_fill(rc, float("inf"))
        if cls_min is not None:
            if whole:
                gal.class_min(masked, cls_min)
            else:
                cls_min.scatter_reduce_(1, g_cls[s:e].expand(B, e - s), masked, "amin")
        if not pmax:
            continue
        # removed items are +inf: they land in the last bin and never precede a positive
        bins = _bins(masked, scale_b, offset_b, n_bins)
        hist.scatter_add_(1, bins, ones[:, : e - s])
        tab = torch.gather(group, 1, bins)
        lin = tab.reshape(-1).nonzero().squeeze(1)
        if lin.numel():
            _count_shared(lin, tab, n_flat, s, dc, rc, run_end, max_run, flat_d, flat_j, same_before)
        del bins, masked

    if pmax:
        kept = _kept(removed, B, ng, dev)
        cum = torch.cumsum(hist, 1, dtype=torch.int64)
        below = torch.gather(cum, 1, (pbin - 1).clamp(0, dump))
        below.masked_fill_(pbin == 0, 0)
        pos_rank = below[real] + same_before
        pos_index = flat_j
    else:
        kept = _kept(removed, B, ng, dev)
        pos_rank = torch.zeros(0, dtype=torch.int64)
        pos_index = torch.zeros(0, dtype=torch.int64)
    ufirst = torch.full((B,), -1, dtype=torch.int64, device=dev)
    ids_kept = None
    if cls_min is not None:
        if need_ids:
            ids_kept = torch.isfinite(cls_min).sum(1).cpu().numpy()
        if unique and pmax:
            first_d = pd[:, :1].to(wdtype)
            ufirst = (cls_min < first_d).sum(1)
            tie_rows = (((cls_min == first_d).sum(1) > 1) & valid).nonzero(as_tuple=True)[0]
            if tie_rows.numel():
                ufirst[tie_rows] = _ufirst_exact(
                    dist[tie_rows], None if removed is None else removed[tie_rows],
                    g_cls, n_cls, pd[tie_rows, 0], pj[tie_rows, 0],
                )
            ufirst = torch.where(valid, ufirst, torch.full_like(ufirst, -1))
    return (
        pos_rank.cpu().numpy(),
        pos_index.cpu().numpy(),
        npos.cpu().numpy(),
        ufirst.cpu().numpy(),
        kept.to(torch.int64).cpu().numpy(),
        ids_kept,
    )


def _kept(removed: torch.Tensor | None, B: int, ng: int, dev: torch.device) -> torch.Tensor:
    """Items left per row after exclusion (an int32 row sum: several times faster on CPU than
    ``count_nonzero`` along a dimension)."""
    if removed is None:
        return torch.full((B,), ng, dtype=torch.int64, device=dev)
    return ng - removed.sum(1, dtype=torch.int32).to(torch.int64)


def _bins(x: torch.Tensor, scale: torch.Tensor, offset: torch.Tensor, n_bins: int) -> torch.Tensor:
    """Monotone non-decreasing bin index in [0, n_bins + 2]: floor(x*scale + offset), clamped.
    (Truncation equals floor after clamping at 0.)"""
    # mul + add_ rather than addcmul: addcmul with broadcast (B, 1) operands is ~1.6x slower on CPU
    t = x.to(scale.dtype).mul(scale).add_(offset)
    t.clamp_(0.0, float(n_bins + 2))
    return t.to(torch.int64)


def _count_shared(
    lin: torch.Tensor,
    tab: torch.Tensor,
    n_flat: int,
    col0: int,
    dc: torch.Tensor,
    removed: torch.Tensor | None,
    run_end: torch.Tensor,
    max_run: int,
    flat_d: torch.Tensor,
    flat_j: torch.Tensor,
    same_before: torch.Tensor,
) -> None:
    """Items at flat positions `lin` of the chunk share a bin with positives: add 1 to every such
    positive they precede in (distance, gallery index) order, the stable sort of
    docs/metrics.md#ties. The positives of one (row, bin) are a contiguous run of the flat positive list
    starting at ``n_flat - tab``; runs are short, so the loop is over the offset inside the run."""
    width = dc.shape[1]
    k0 = n_flat - tab.reshape(-1)[lin].to(torch.int64)
    hi = run_end[k0]
    rr, cc = lin // width, lin % width
    dv = dc.reshape(-1)[lin] if dc.is_contiguous() else dc[rr, cc]
    jv = cc + col0
    if removed is not None:
        keep_item = ~(removed.reshape(-1)[lin] if removed.is_contiguous() else removed[rr, cc])
    for t in range(max_run):
        k = k0 + t
        ok = k < hi
        kk = k.clamp_max(flat_d.shape[0] - 1)
        pdk, pjk = flat_d[kk], flat_j[kk]
        before = ok & ((dv < pdk) | ((dv == pdk) & (jv < pjk)))
        if removed is not None:
            before &= keep_item
        idx = kk[before]
        same_before.index_add_(0, idx, torch.ones_like(idx))


def _ufirst_exact(
    dist: torch.Tensor,
    removed: torch.Tensor | None,
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
    if removed is not None:
        before &= ~removed
    seen = torch.zeros(R, n_cls + 1, dtype=torch.bool, device=dist.device)
    seen.scatter_(1, torch.where(before, g_cls[None, :].expand(R, ng), n_cls), True)
    return seen[:, :n_cls].sum(1)


def _topk_block(dist: torch.Tensor, removed: torch.Tensor | None, k: int) -> tuple[np.ndarray, np.ndarray]:
    """First k items of each row's list after exclusion, ordered by (distance, index); excluded
    items (and rows shorter than k) are index -1 with distance inf."""
    masked = dist if removed is None else dist.masked_fill(removed, float("inf"))
    vals, idx = stable_topk_block(masked, k)
    removed = torch.isinf(vals)
    idx = idx.masked_fill(removed, -1)
    return idx.cpu().numpy(), vals.double().cpu().numpy()
