"""Run one cell: train (or reuse the checkpoint), extract features (or reuse them), evaluate
every planned protocol and trial, store metrics and raw rankings, then write ``DONE``.

Each step checks the cell directory first, so a cell killed at any moment resumes where it
stopped: training from its last epoch checkpoint, evaluation from the protocols whose metrics
file is missing. Nothing a completed step wrote is touched again (``--overwrite always`` clears
the cell first).
"""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from vibench.io import read_json, stable_hash, write_json_atomic
from vibench.runner.cells import STANDARD, CellPlan
from vibench.runner.datasources import DataSources
from vibench.runner.store import SCHEMA_VERSION, CellDir

OVERWRITE_MODES = ("never", "missing", "always")


@dataclass
class CellOutcome:
    plan: CellPlan
    status: str  # "done" | "skipped" | "failed"
    seconds: float = 0.0
    error: str | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"cell": self.plan.cell.to_dict(), "status": self.status, "seconds": self.seconds,
                "error": self.error, "rows": self.rows}


def _todo(plan: CellPlan, cd: CellDir) -> dict[str, tuple[int, ...]]:
    """The (protocol -> trials) of `plan` that the cell directory does not hold yet."""
    todo = {}
    for name, trials in plan.protocols:
        missing = tuple(t for t in trials if t not in cd.completed_trials(name))
        if missing:
            todo[name] = missing
    return todo


def run_cell(
    plan: CellPlan,
    *,
    out: Path,
    data: DataSources,
    device: str = "cpu",
    overwrite: str = "missing",
    progress: Callable[[str], None] | None = None,
) -> CellOutcome:
    """Run (or resume) one cell; failures are caught, recorded in error.txt and returned."""
    cd = CellDir.of(out, plan.cell)
    if overwrite == "always":
        cd.clear()
    if overwrite == "never" and cd.is_done():
        return CellOutcome(plan, "skipped", rows=_summary_rows(plan, cd))
    todo = _todo(plan, cd)
    if not todo and cd.is_done():
        return CellOutcome(plan, "skipped", rows=_summary_rows(plan, cd))
    start = time.perf_counter()
    say = progress or (lambda phase: None)
    try:
        _run(plan, cd, todo, data=data, device=device, say=say)
    except BaseException as exc:  # noqa: BLE001 - one cell's failure must not stop the others
        if isinstance(exc, KeyboardInterrupt):
            raise
        cd.write_error(traceback.format_exc())
        return CellOutcome(plan, "failed", time.perf_counter() - start, error=f"{type(exc).__name__}: {exc}")
    cd.clear_error()
    return CellOutcome(plan, "done", time.perf_counter() - start, rows=_summary_rows(plan, cd))


def _summary_rows(plan: CellPlan, cd: CellDir) -> list[dict[str, Any]]:
    rows = []
    for name, _ in plan.protocols:
        path = cd.metrics_path(name)
        if path.exists():
            m = read_json(path)
            rows.append({"protocol": name, **m.get("summary", {}), "trials": sorted(int(t) for t in m["trials"]),
                         "untrained": (m.get("untrained") or {}).get("summary")})
    return rows


def _run(plan: CellPlan, cd: CellDir, todo: dict[str, tuple[int, ...]], *, data: DataSources, device: str,
         say: Callable[[str], None]) -> None:
    from vibench.data import load_dataset
    from vibench.runner import runtime
    from vibench.protocols import apply_training_variant, build_lists, get_protocol
    from vibench.provenance import provenance

    cell = plan.cell
    timings: dict[str, float] = {}
    device = runtime.resolve_device(device)

    say("data")
    t0 = time.perf_counter()
    root = data.root(cell.dataset)
    index = load_dataset(cell.dataset, root)
    train_records = index.train(cell.split)
    if cell.variant != STANDARD:
        train_records = apply_training_variant(get_protocol(cell.variant), list(train_records), cell.seed)
    test_records = index.test(cell.split)
    cfg = runtime.load_method_config(cell.method, plan.config, cell.dataset, plan.overrides)
    timings["data_s"] = time.perf_counter() - t0

    specs = {name: get_protocol(name) for name, _ in plan.protocols}
    lists = {(name, t): build_lists(specs[name], index, t) for name, trials in todo.items() for t in trials}
    spec = {
        "schema_version": SCHEMA_VERSION,
        "cell": cell.to_dict(),
        "config_name": plan.config,
        "overrides": list(plan.overrides),
        "config": cfg,
        "config_hash": stable_hash(cfg),
        "data": {**data.describe(cell.dataset), "dataset": cell.dataset, "root": str(root),
                 "manifest_hash": index.manifest_hash(), "num_train": len(train_records), "num_test": len(test_records)},
        "variant": cell.variant,
        "protocols": {
            name: {"version": specs[name].version,
                   "trials": {str(t): lists[(name, t)].sha256 for t in trials}}
            for name, trials in todo.items()
        },
        "provenance": provenance(device),
        "device": device,
    }
    cd.write_spec(spec)

    say("train")
    t0 = time.perf_counter()
    trained = runtime.train_or_load(cell.method, cfg, index, cell.split, train_records, seed=cell.seed,
                                    device=device, workdir=cd.train_dir, root=root)
    timings["train_s"] = time.perf_counter() - t0

    say("extract")
    t0 = time.perf_counter()
    feats = runtime.features_for(trained, test_records, root, device=device, cache=cd.features_path)
    timings["extract_s"] = time.perf_counter() - t0

    reference = None
    if plan.untrained_reference:
        say("untrained reference")
        t0 = time.perf_counter()
        base = runtime.untrained_model(cell.method, cfg, cell.dataset, trained.inner.num_classes, seed=cell.seed, device=device)
        reference = (base, runtime.features_for(base, test_records, root, device=device, cache=cd.root / "features_untrained.npz"))
        timings["untrained_s"] = time.perf_counter() - t0

    say("evaluate")
    t0 = time.perf_counter()
    for name, trials in todo.items():
        _evaluate_protocol(cd, specs[name], trials, lists, feats, trained, device, reference)
    timings["evaluate_s"] = time.perf_counter() - t0

    model_json = cd.root / "model.json"
    if not model_json.exists():
        say("measure")
        write_json_atomic(model_json, runtime.model_stats(trained, device=device))

    old = read_json(cd.root / "timings.json") if (cd.root / "timings.json").exists() else {}
    runs = old.get("runs", []) + [timings]
    write_json_atomic(cd.root / "timings.json", {"runs": runs, "device": device})
    cd.mark_done(sorted(set(cd.done_protocols()) | {n for n, _ in plan.protocols}))


def _evaluate_protocol(cd: CellDir, spec: Any, trials: tuple[int, ...], lists: dict, feats: Any, trained: Any,
                       device: str, reference: tuple[Any, Any] | None = None) -> None:
    """Evaluate the missing trials of one protocol; rankings first, the metrics file last.

    With `reference` (the untrained model and its features) the same trials are also scored
    for the untrained model and stored under "untrained" (no rankings kept for it)."""
    from vibench.metrics.pipeline import evaluate_lists
    from vibench.metrics.rankings import save_rankings

    path = cd.metrics_path(spec.name)
    doc = read_json(path) if path.exists() else {
        "schema_version": SCHEMA_VERSION, "protocol": spec.name, "protocol_version": spec.version,
        "dataset": spec.dataset, "rule": spec.rule, "cmc_mode": spec.cmc, "max_rank": spec.max_rank,
        "rerank": spec.rerank, "trials": {},
    }
    for t in trials:
        pl = lists[(spec.name, t)]
        qf = feats.select([r.path for r in pl.query])
        gf = feats.select([r.path for r in pl.gallery])
        result, rankings = evaluate_lists(
            spec, pl, qf, gf,
            distance_fn=trained.method.distance,
            refine_fn=trained.refine_for(qf, gf),
            device=device,
        )
        save_rankings(cd.rankings_path(spec.name, t), rankings)
        doc["trials"][str(t)] = _trial_record(result, pl)
        if reference is not None:
            base, base_feats = reference
            qb = base_feats.select([r.path for r in pl.query])
            gb = base_feats.select([r.path for r in pl.gallery])
            base_result, _ = evaluate_lists(spec, pl, qb, gb, distance_fn=base.method.distance,
                                            refine_fn=base.refine_for(qb, gb), device=device)
            doc.setdefault("untrained", {"trials": {}})["trials"][str(t)] = _trial_record(base_result, pl)
    doc["summary"] = summarize_trials(doc["trials"])
    if "untrained" in doc:
        doc["untrained"]["summary"] = summarize_trials(doc["untrained"]["trials"])
    write_json_atomic(path, doc)


def _trial_record(result: Any, pl: Any) -> dict[str, Any]:
    return {
        "cmc": [float(x) for x in np.asarray(result.cmc)],
        "mAP": float(result.mAP), "mINP": float(result.mINP),
        "num_valid": int(result.num_valid), "num_query": len(pl.query), "num_gallery": len(pl.gallery),
        "list_sha256": pl.sha256, "padded_queries": int(getattr(result, "padded_queries", 0)),
    }


def summarize_trials(trials: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Mean over trials: CMC as a float32 vector sum / n (AGW's accumulation), mAP/mINP in float64."""
    rows = list(trials.values())
    n = len(rows)
    cmc = np.zeros(len(rows[0]["cmc"]), dtype=np.float32)
    for r in rows:
        cmc += np.asarray(r["cmc"], dtype=np.float32)
    cmc /= np.float32(n)
    out = {"mAP": float(np.mean([r["mAP"] for r in rows])), "mINP": float(np.mean([r["mINP"] for r in rows]))}
    for k in (1, 5, 10, 20):
        out[f"rank{k}"] = float(cmc[min(k, len(cmc)) - 1])
    return out
