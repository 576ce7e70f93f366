"""The single code path from features to metrics (used by `vibench eval` and `vibench run`).

distance (default -(q·gᵀ) on L2-normalised 'feat', docs/metrics.md#test-time-conventions; or the protocol's
re-ranking; or the method's `distance_fn`) -> optional refinement that sees the exclusion
mask (BIT, docs/metrics.md#refinement-sees-the-exclusion-mask) -> `vibench.evaluate` with the protocol's rule, CMC mode and max rank ->
(EvalResult, Rankings).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np
import torch

from vibench.data.records import records_sha256
from vibench.errors import VibenchError
from vibench.metrics.evaluate import as_tensor, compute, fits_float32
from vibench.metrics.rankings import DEFAULT_TOPK, SCHEMA_VERSION, Rankings
from vibench.metrics.rerank import rerank_distance, resolve_rerank
from vibench.metrics.rules import exclusion_mask
from vibench.metrics.stats import EvalResult

DistanceFn = Callable[[Mapping[str, torch.Tensor], Mapping[str, torch.Tensor], np.ndarray, np.ndarray], torch.Tensor]
RefineFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def default_distance(query: Mapping[str, torch.Tensor], gallery: Mapping[str, torch.Tensor],
                     q_modalities: np.ndarray | None = None, g_modalities: np.ndarray | None = None) -> torch.Tensor:
    """-(q·gᵀ) on the L2-normalised 'feat' embeddings (AGW test.py, docs/metrics.md#test-time-conventions)."""
    q = torch.nn.functional.normalize(_feat(query, "query").float(), dim=1)
    g = torch.nn.functional.normalize(_feat(gallery, "gallery").float(), dim=1)
    return -(q @ g.T)


def _feat(feats: Mapping[str, torch.Tensor], side: str) -> torch.Tensor:
    if "feat" not in feats:
        raise VibenchError(f"{side} features have no 'feat' embedding; available: {', '.join(sorted(feats)) or 'none'}")
    return feats["feat"]


def evaluate_lists(
    spec: Any,
    lists: Any,
    query_feats: Mapping[str, Any],
    gallery_feats: Mapping[str, Any],
    *,
    distance_fn: DistanceFn | None = None,
    refine_fn: RefineFn | None = None,
    device: str | torch.device = "cpu",
    topk: int = DEFAULT_TOPK,
) -> tuple[EvalResult, Rankings]:
    """Evaluate one protocol trial: `spec` a ProtocolSpec (rule, cmc, max_rank, rerank), `lists`
    its ProtocolLists, features as dicts name -> (N, D) aligned with lists.query / lists.gallery.

    With ``spec.rerank`` the distance is the re-ranked one (k-reciprocal or AIM on 'feat') and
    `distance_fn` is not used. `refine_fn(distmat, excluded)` may rewrite the distances after
    seeing the protocol's exclusion mask.
    """
    dev = torch.device(device)
    query, gallery = tuple(lists.query), tuple(lists.gallery)
    nq, ng = len(query), len(gallery)
    if ng == 0:
        raise VibenchError(f"protocol {spec.name}: the gallery is empty")
    if nq == 0:
        raise VibenchError(f"protocol {spec.name}: the query set is empty")
    qf = {k: as_tensor(v, f"query features {k!r}") for k, v in query_feats.items()}
    gf = {k: as_tensor(v, f"gallery features {k!r}") for k, v in gallery_feats.items()}
    for side, feats, n in (("query", qf, nq), ("gallery", gf, ng)):
        for k, v in feats.items():
            if v.ndim != 2 or v.shape[0] != n:
                raise VibenchError(f"protocol {spec.name}: {side} features {k!r} have shape {tuple(v.shape)}, "
                                   f"expected ({n}, D) for the {n} listed {side} images")
    q_pids = np.array([r.pid for r in query], dtype=np.int64)
    g_pids = np.array([r.pid for r in gallery], dtype=np.int64)
    q_cams = np.array([r.cam for r in query], dtype=np.int64)
    g_cams = np.array([r.cam for r in gallery], dtype=np.int64)
    q_mods = np.array([r.modality for r in query])
    g_mods = np.array([r.modality for r in gallery])
    q_self = np.asarray(lists.query_gallery_index, dtype=np.int64)
    rr = resolve_rerank(spec.rerank)
    if rr is not None:
        dist = rerank_distance(rr, _feat(qf, "query").to(dev), _feat(gf, "gallery").to(dev))
    elif distance_fn is not None:
        dist = distance_fn({k: v.to(dev) for k, v in qf.items()}, {k: v.to(dev) for k, v in gf.items()}, q_mods, g_mods)
    else:
        dist = default_distance({"feat": _feat(qf, "query").to(dev)}, {"feat": _feat(gf, "gallery").to(dev)})
    dist = as_tensor(dist, f"distance matrix of protocol {spec.name}", dev)
    if tuple(dist.shape) != (nq, ng):
        raise VibenchError(f"protocol {spec.name}: distance matrix has shape {tuple(dist.shape)}, expected ({nq}, {ng})")
    if refine_fn is not None:
        excluded = exclusion_mask(spec.rule, q_pids, g_pids, q_cams, g_cams, q_mods, g_mods, q_self, device=dev)
        dist = as_tensor(refine_fn(dist, excluded), f"refined distance matrix of protocol {spec.name}", dev)
        if tuple(dist.shape) != (nq, ng):
            raise VibenchError(f"protocol {spec.name}: refine returned shape {tuple(dist.shape)}, expected ({nq}, {ng})")
    result, stats, top = compute(
        lambda a, b: dist[a:b], nq, ng, q_pids, g_pids, q_cams, g_cams,
        rule=spec.rule, cmc=spec.cmc, max_rank=spec.max_rank, q_modalities=q_mods, g_modalities=g_mods,
        q_gallery_index=q_self, device=dev, topk=topk, work_f32=fits_float32(dist),
    )
    assert top is not None
    meta = {
        "schema_version": SCHEMA_VERSION,
        "protocol": spec.name,
        "protocol_version": getattr(spec, "version", None),
        "dataset": getattr(spec, "dataset", None),
        "trial": getattr(lists, "trial", None),
        "rule": result.rule,
        "cmc_mode": result.cmc_mode,
        "max_rank": result.max_rank,
        "requested_max_rank": int(spec.max_rank),
        "num_query": nq,
        "num_gallery": ng,
        "topk": int(top[0].shape[1]),
        "list_sha256": getattr(lists, "sha256", None),
        "query_sha256": records_sha256(query),
        "gallery_sha256": records_sha256(gallery),
        "rerank": rr,
        "refined": refine_fn is not None,
    }
    return result, Rankings(meta=meta, stats=stats, topk_index=top[0], topk_dist=top[1])
