"""Evaluate a trained model on protocols: features once per test split, then every protocol and
trial through the metrics engine (``vibench.metrics.pipeline.evaluate_lists`` when present,
else ``vibench.evaluate`` on the method's distance). ``vibench train`` uses this; the runner
(``vibench run``) has its own cached version of the same steps.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from vibench.data.records import DatasetIndex
from vibench.engine.extract import extract_features
from vibench.engine.trainer import TrainedModel


def _select(feats: dict[str, torch.Tensor], rows: dict[str, int], records: Sequence[Any]) -> dict[str, torch.Tensor]:
    idx = torch.as_tensor([rows[r.path] for r in records], dtype=torch.long)
    return {k: v.index_select(0, idx) for k, v in feats.items()}


def evaluate_protocols(
    trained: TrainedModel,
    index: DatasetIndex,
    split: int,
    protocols: Sequence[Any],
    *,
    root: str | Path | None = None,
    device: str | torch.device = "cpu",
    features: dict[str, torch.Tensor] | None = None,
) -> dict[str, dict[str, Any]]:
    """{protocol name: {"trials": {t: EvalResult}, "summary": {rank1, rank5, rank10, rank20, mAP, mINP}}}.

    `protocols` are ProtocolSpec objects of `index`'s dataset; for RegDB only the trial equal to
    `split` is evaluated (one model per split). Features are extracted once for the split's test set.
    """
    from vibench.protocols import build_lists

    method, model = trained.method, trained.model
    test = index.test(split)
    root = Path(root) if root is not None else Path(index.root)
    feats = features if features is not None else extract_features(method, model, test, root, trained.cfg, device)
    rows = {r.path: i for i, r in enumerate(test)}
    try:
        from vibench.metrics.pipeline import evaluate_lists
    except ImportError:  # metrics pipeline not available: same steps with vibench.evaluate
        evaluate_lists = None
    out: dict[str, dict[str, Any]] = {}
    for spec in protocols:
        trials = [t for t in spec.trials if index.name != "regdb" or t == split]
        results = {}
        for t in trials:
            lists = build_lists(spec, index, t)
            qf, gf = _select(feats, rows, lists.query), _select(feats, rows, lists.gallery)
            if evaluate_lists is not None:
                refine = None
                from vibench.engine.api import Method

                if type(method).refine is not Method.refine:
                    refine = lambda d, ex, qf=qf, gf=gf: method.refine(model, qf, gf, d, ex)  # noqa: E731
                res, _ = evaluate_lists(spec, lists, qf, gf, distance_fn=method.distance, refine_fn=refine, device=device)
            else:
                from vibench.metrics.evaluate import evaluate

                qm = np.array([r.modality for r in lists.query])
                gm = np.array([r.modality for r in lists.gallery])
                dist = method.distance(qf, gf, qm, gm)
                res = evaluate(
                    dist, [r.pid for r in lists.query], [r.pid for r in lists.gallery],
                    [r.cam for r in lists.query], [r.cam for r in lists.gallery], rule=spec.rule, cmc=spec.cmc,
                    max_rank=spec.max_rank, q_modalities=qm, g_modalities=gm, q_gallery_index=lists.query_gallery_index,
                )
            results[t] = res
        cmc = np.mean([np.asarray(r.cmc, dtype=np.float64) for r in results.values()], axis=0)
        summary = {f"rank{k}": float(cmc[k - 1]) for k in (1, 5, 10, 20) if k <= len(cmc)}
        summary["mAP"] = float(np.mean([r.mAP for r in results.values()]))
        summary["mINP"] = float(np.mean([getattr(r, "mINP", float("nan")) for r in results.values()]))
        out[spec.name] = {"trials": results, "summary": summary}
    return out
