"""Stable top-k: the first k entries of each row in (value, column index) order.

``torch.topk`` does not order ties; the re-ranking neighbour lists (docs/metrics.md#k-reciprocal-steps) and the
stored rankings both need a deterministic order, the one ``argsort(kind="stable")`` gives.
"""
from __future__ import annotations

import torch


def stable_topk_block(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(values, indices) of the k smallest entries of every row of `x`, ordered by (value, column).

    ``topk`` picks the candidates, two sorts order them lexicographically; rows where a tie
    straddles the cut are redone with a full stable sort, so the result equals
    ``sort(x, stable=True)[:, :k]`` for every row."""
    k = min(k, x.shape[1])
    vals, idx = torch.topk(x, k, dim=1, largest=False, sorted=True)
    idx, o = torch.sort(idx, dim=1)
    vals = torch.gather(vals, 1, o)
    vals, o = torch.sort(vals, dim=1, stable=True)
    idx = torch.gather(idx, 1, o)
    cut = vals[:, -1:]
    straddle = ((x == cut).sum(1) != (vals == cut).sum(1)).nonzero(as_tuple=True)[0]
    if straddle.numel():
        sv, si = torch.sort(x[straddle], dim=1, stable=True)
        vals[straddle] = sv[:, :k]
        idx[straddle] = si[:, :k]
    return vals, idx


def stable_topk(mat: torch.Tensor, k: int, *, largest: bool = False, block: int = 1024) -> torch.Tensor:
    """Indices of the first k entries of every row in a stable order (value, then column index),
    smallest first (largest first with `largest`), `block` rows at a time; equals
    ``argsort(kind="stable")[:, :k]``."""
    n, m = mat.shape
    k = min(k, m)
    out = torch.empty(n, k, dtype=torch.int64, device=mat.device)
    for a in range(0, n, block):
        x = mat[a:a + block]
        out[a:a + block] = stable_topk_block(-x if largest else x, k)[1]
    return out
