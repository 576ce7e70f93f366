"""Public entry points: ``vibench.evaluate`` (a distance matrix) and ``evaluate_features``
(query/gallery features, distances computed block by block, for galleries of any size).

Both give exactly the numbers of the reference evaluation functions (AGW
``eval_sysu``, ``eval_regdb``, DEEN ``eval_llcm``, torchreid; docs/metrics.md#reference-arithmetic), with ties broken by a
stable sort (gallery index order). See docs/metrics.md.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from vibench.errors import VibenchError, did_you_mean
from vibench.metrics.blocked import rank_stats
from vibench.metrics.rules import Rule, get_rule, make_sides
from vibench.metrics.stats import EvalResult, RankStats, effective_max_rank, finalize

__all__ = ["evaluate", "evaluate_features", "EvalResult", "compute", "as_tensor"]


def as_tensor(
    x: Any, what: str, device: torch.device | str | None = None, *, check_finite: bool = True
) -> torch.Tensor:
    """A float tensor (float32, or float64 when given float64) from numpy/torch/lists; checks
    finiteness unless `check_finite` is False (the caller then calls `check_finite_range`)."""
    if isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        try:
            arr = np.asarray(x)
        except Exception as exc:  # pragma: no cover - exotic inputs
            raise VibenchError(f"{what} is not an array: {exc}") from exc
        if arr.dtype.kind not in "fiub":
            raise VibenchError(f"{what} must be numeric, got dtype {arr.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if t.dtype not in (torch.float32, torch.float64):
        t = t.to(torch.float32)
    if device is not None:
        t = t.to(device)
    # a finite sum proves every entry finite (one cheap pass); otherwise look closer
    if check_finite and t.numel() and not bool(torch.isfinite(t.sum())):
        _raise_not_finite(t, what)
    return t


def _raise_not_finite(t: torch.Tensor, what: str) -> None:
    """Raise naming the first NaN/inf entry of `t` (no-op when every entry is finite)."""
    if bool(torch.isfinite(t).all()):
        return
    bad = (~torch.isfinite(t)).nonzero()[0].tolist()
    raise VibenchError(f"{what} contains NaN or inf (first at index {tuple(bad)}); expected finite values")


def check_finite_range(t: torch.Tensor, what: str) -> bool:
    """One pass (min and max) that both checks `t` for NaN/inf and tells whether a float64 `t`
    fits float32's range (`fits_float32`); returns the latter."""
    if t.numel() == 0:
        return False
    lo, hi = torch.aminmax(t)
    lo_f, hi_f = float(lo), float(hi)
    if not (np.isfinite(lo_f) and np.isfinite(hi_f)):
        _raise_not_finite(t, what)
    return t.dtype == torch.float64 and max(abs(lo_f), abs(hi_f)) < 1e30


def _check_cmc(cmc: str) -> str:
    if cmc not in ("unique", "image"):
        raise VibenchError(f"cmc must be 'unique' or 'image', got {cmc!r}{did_you_mean(str(cmc), ['unique', 'image'])}")
    return cmc


def compute(
    rows_fn: Callable[[int, int], torch.Tensor],
    nq: int,
    ng: int,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    *,
    rule: str,
    cmc: str,
    max_rank: int,
    q_modalities: Any,
    g_modalities: Any,
    q_gallery_index: Any,
    device: torch.device,
    block_rows: int | None = None,
    chunk_cols: int | None = None,
    topk: int = 0,
    work_f32: bool = False,
    workers: int | None = None,
    warn: bool = True,
) -> tuple[EvalResult, RankStats, tuple[np.ndarray, np.ndarray] | None]:
    """The shared core: validate labels, compute rank statistics block-wise, finalize metrics."""
    r: Rule = get_rule(rule)
    _check_cmc(cmc)
    if nq == 0:
        raise VibenchError("the query set is empty; expected at least one query")
    if ng == 0:
        raise VibenchError("the gallery is empty; expected at least one gallery item")
    q, g = make_sides(r, q_pids, g_pids, q_camids, g_camids, q_modalities, g_modalities,
                      q_gallery_index, nq, ng)
    mr = effective_max_rank(max_rank, ng)
    stats, top = rank_stats(
        rows_fn, q, g, r, cmc_mode=cmc, max_rank=mr, device=torch.device(device),
        block_rows=block_rows, chunk_cols=chunk_cols, topk=topk, work_f32=work_f32, workers=workers,
    )
    res = finalize(stats, cmc_mode=cmc, max_rank=mr, num_gallery=ng, rule=r.name, warn=warn)
    return res, stats, top


def evaluate(
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
    device: torch.device | str | None = None,
    block_rows: int | None = None,
    chunk_cols: int | None = None,
    workers: int | None = None,
) -> EvalResult:
    """CMC, mAP and mINP of a (nq, ng) distance matrix, lower = closer (numpy or torch, CPU/CUDA).

    rule: exclusion rule (`vibench.metrics.rules`: sysu, llcm, regdb, market, none, mix, mix-cam,
    mix-cam-id, mix-id, mix-p, unimodal). cmc: "unique" = identity-deduplicated CMC after
    exclusion (AGW eval_sysu/eval_llcm), "image" = standard CMC (eval_regdb,
    torchreid; docs/metrics.md#cmc-modes). max_rank is cut to the gallery size. Modalities ("visible"/"infrared" or
    0/1) and q_gallery_index (the query's own gallery position, -1 if absent) are needed by the
    mixed/uni-modal rules. Computation runs on `device` (default: the tensor's device) in query
    blocks of `block_rows` rows and gallery chunks of `chunk_cols` columns (defaults bound memory);
    the result does not depend on them.
    """
    if isinstance(distmat, torch.Tensor) and device is None:
        device = distmat.device
    dev = torch.device(device or "cpu")
    d = as_tensor(distmat, "distmat", check_finite=False)
    if d.ndim != 2:
        raise VibenchError(f"distmat must be two-dimensional (queries x gallery), got shape {tuple(d.shape)}")
    nq, ng = d.shape
    _check_lengths(nq, ng, q_pids, g_pids)

    def rows_fn(a: int, b: int) -> torch.Tensor:
        return d[a:b].to(dev, non_blocking=True)

    res, _, _ = compute(
        rows_fn, nq, ng, q_pids, g_pids, q_camids, g_camids, rule=rule, cmc=cmc,
        max_rank=max_rank, q_modalities=q_modalities, g_modalities=g_modalities,
        q_gallery_index=q_gallery_index, device=dev, block_rows=block_rows, chunk_cols=chunk_cols,
        work_f32=check_finite_range(d, "distmat"), workers=workers,
    )
    return res


def fits_float32(d: torch.Tensor) -> bool:
    """True for float64 values safely inside float32's range (binning may then run in float32;
    exact comparisons always use the given values)."""
    if d.dtype != torch.float64 or d.numel() == 0:
        return False
    lo, hi = torch.aminmax(d)
    return bool(max(abs(float(lo)), abs(float(hi))) < 1e30)


def _check_lengths(nq: int, ng: int, q_pids: Any, g_pids: Any) -> None:
    lq, lg = len(q_pids), len(g_pids)
    if lq != nq:
        raise VibenchError(f"q_pids has length {lq} but distmat has {nq} rows (one per query expected)")
    if lg != ng:
        raise VibenchError(f"g_pids has length {lg} but distmat has {ng} columns (one per gallery item expected)")


def cosine_rows(qf: torch.Tensor, gf: torch.Tensor, device: torch.device, normalize: bool = True) -> Callable[[int, int], torch.Tensor]:
    """Rows of -(q·gᵀ) (on L2-normalised features when `normalize`), computed per query block."""
    g = gf.to(device)
    if normalize:
        g = torch.nn.functional.normalize(g, dim=1)

    def rows_fn(a: int, b: int) -> torch.Tensor:
        q = qf[a:b].to(device)
        if normalize:
            q = torch.nn.functional.normalize(q, dim=1)
        return -(q @ g.T)

    return rows_fn


def evaluate_features(
    query_features: Any,
    gallery_features: Any,
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
    normalize: bool = True,
    device: torch.device | str | None = None,
    block_rows: int | None = None,
    chunk_cols: int | None = None,
    workers: int | None = None,
) -> EvalResult:
    """Like `evaluate`, from (nq, D) and (ng, D) features with distance -(q·gᵀ) on L2-normalised
    features (the AGW convention, docs/metrics.md#test-time-conventions), computed block by block: the (nq, ng) matrix is
    never materialised, so memory stays bounded (e.g. 100,000 x 100,000)."""
    qf = as_tensor(query_features, "query_features")
    gf = as_tensor(gallery_features, "gallery_features")
    if isinstance(query_features, torch.Tensor) and device is None:
        device = query_features.device
    dev = torch.device(device or "cpu")
    if qf.ndim != 2 or gf.ndim != 2:
        raise VibenchError(f"features must be 2-D (items x dim); got {tuple(qf.shape)} and {tuple(gf.shape)}")
    if qf.shape[1] != gf.shape[1]:
        raise VibenchError(f"query features have dimension {qf.shape[1]} but gallery features {gf.shape[1]}")
    nq, ng = qf.shape[0], gf.shape[0]
    _check_lengths(nq, ng, q_pids, g_pids)
    if ng == 0:
        raise VibenchError("the gallery is empty; expected at least one gallery item")
    res, _, _ = compute(
        cosine_rows(qf, gf, dev, normalize), nq, ng, q_pids, g_pids, q_camids, g_camids,
        rule=rule, cmc=cmc, max_rank=max_rank, q_modalities=q_modalities,
        g_modalities=g_modalities, q_gallery_index=q_gallery_index, device=dev,
        block_rows=block_rows, chunk_cols=chunk_cols, workers=workers,
    )
    return res

