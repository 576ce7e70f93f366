"""Run one cell: train (or reuse the checkpoint), extract features (or reuse them), evaluate
every planned protocol and trial, store metrics and raw rankings, then write ``DONE``.

Each step checks the cell directory first, so a cell killed at any moment resumes where it
stopped: training from its last epoch checkpoint, evaluation from the protocols whose metrics
file is missing. Nothing a completed step wrote is touched again (``--overwrite always`` clears
the cell first). A completed cell is verified against its ``DONE`` manifest before it is skipped;
damaged files and what was derived from them are deleted and recomputed
(vibench.store.verify). Everything happens under the cell's lock (vibench.store.lock), so two
processes sharing a store never compute one cell twice. The cell's identity (vibench.store.identity) was fixed when it was planned;
the run re-checks it against the config it resolves and the data it loads, so a cell directory
only ever holds numbers made under its own settings.
"""
from __future__ import annotations

import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from vibench.errors import VibenchError
from vibench.io import stable_hash
from vibench.metrics.rerank import resolve_rerank
from vibench.protocols import apply_training_variant, build_lists, get_protocol
from vibench.provenance import provenance
from vibench.runner import runtime
from vibench.runner.cells import STANDARD, CellPlan
from vibench.runner.curve import CurveRecorder
from vibench.runner.datasources import DataSources
from vibench.runner.weights import planned_init
from vibench.store import (
    SCHEMA_VERSION,
    CellDir,
    CellLock,
    finish_metrics_doc,
    metrics_doc,
    open_cell,
    repair_targets,
    trial_record,
    verify_cell,
)

OVERWRITE_MODES = ("never", "missing", "always")


@dataclass
class CellOutcome:
    plan: CellPlan
    status: str  # "done" | "repaired" | "skipped" | "failed" | "busy"
    seconds: float = 0.0
    error: str | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: the cell's training record (timings.json "training"): s/iteration, images/s, peak memory
    training: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"cell": self.plan.cell.to_dict(), "status": self.status, "seconds": self.seconds,
                "error": self.error, "rows": self.rows, "notes": self.notes, "training": self.training}


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
    wait: bool = True,
) -> CellOutcome:
    """Run (or resume, or repair) one cell under its lock; failures are caught, recorded in
    error.txt and returned. With ``wait=False`` a cell another process holds is returned as
    "busy" at once (the caller comes back to it later)."""
    lock = CellLock(out, plan.cell.cell_id)
    if not lock.acquire(wait=wait):
        return CellOutcome(plan, "busy", notes=[f"being computed by {lock.holder()}"])
    try:
        return _run_locked(plan, out=out, data=data, device=device, overwrite=overwrite,
                           say=progress or (lambda phase: None))
    finally:
        lock.release()


def _run_locked(plan: CellPlan, *, out: Path, data: DataSources, device: str, overwrite: str,
                say: Callable[[str], None]) -> CellOutcome:
    cd = open_cell(out, plan.cell)
    if overwrite == "always":
        cd.clear()
    notes: list[str] = []
    if cd.is_done():
        check = verify_cell(cd)
        if check.problems:
            notes = _repair(cd, check.problems)
        elif check.status == "unverified":
            notes = [f"{cd.root.name}: {check.note}"]
    if overwrite == "never" and cd.is_done():
        return CellOutcome(plan, "skipped", rows=_summary_rows(plan, cd), notes=notes, training=_training(cd))
    todo = _todo(plan, cd)
    if not todo and cd.is_done():
        return CellOutcome(plan, "skipped", rows=_summary_rows(plan, cd), notes=notes, training=_training(cd))
    start = time.perf_counter()
    try:
        _run(plan, cd, todo, data=data, device=device, say=say, notes=notes)
    except BaseException as exc:  # noqa: BLE001 - one cell's failure must not stop the others
        if isinstance(exc, KeyboardInterrupt):
            raise
        cd.write_error(traceback.format_exc())
        return CellOutcome(plan, "failed", time.perf_counter() - start, error=f"{type(exc).__name__}: {exc}",
                           notes=notes)
    cd.clear_error()
    return CellOutcome(plan, "repaired" if _repaired(notes) else "done",
                       time.perf_counter() - start, rows=_summary_rows(plan, cd), notes=notes, training=_training(cd))


def _training(cd: CellDir) -> dict[str, Any] | None:
    """The training record stored in the cell's timings.json (None for cells written before it)."""
    timings = cd.read_timings()
    return (timings or {}).get("training")


REPAIR_PREFIX = "damaged: "


def _repaired(notes: list[str]) -> bool:
    return any(n.startswith(REPAIR_PREFIX) for n in notes)


def _repair(cd: CellDir, problems: list[Any]) -> list[str]:
    """Delete the damaged files and what was derived from them (vibench.store.repair_targets);
    the resume that follows recomputes exactly those. Returns what was found and done."""
    targets, steps = repair_targets(cd, problems)
    for path in targets:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    return [f"{REPAIR_PREFIX}{p}" for p in problems] + [f"{cd.root.name}: {', '.join(steps)}"]


def _summary_rows(plan: CellPlan, cd: CellDir) -> list[dict[str, Any]]:
    rows = []
    for name, _ in plan.protocols:
        m = cd.read_metrics(name)
        if m is not None:
            rows.append({"protocol": name, **m.get("summary", {}), "trials": sorted(int(t) for t in m["trials"]),
                         "untrained": (m.get("untrained") or {}).get("summary")})
    return rows


def _run(plan: CellPlan, cd: CellDir, todo: dict[str, tuple[int, ...]], *, data: DataSources, device: str,
         say: Callable[[str], None], notes: list[str]) -> None:
    cell = plan.cell
    timings: dict[str, float] = {}
    device = runtime.resolve_device(device)

    say("data")
    t0 = time.perf_counter()
    root = data.root(cell.dataset)
    index = data.load(cell.dataset)
    train_records = index.train(cell.split)
    if cell.variant != STANDARD:
        train_records = apply_training_variant(get_protocol(cell.variant), list(train_records), cell.seed)
    test_records = index.test(cell.split)
    cfg = runtime.load_method_config(cell.method, plan.config, cell.dataset, plan.overrides)
    _check_identity(plan, cfg, data.identity(cell.dataset, index))
    init = planned_init(cell.method, plan.config, cfg, plan.overrides, plan.allow_random_init)
    timings["data_s"] = time.perf_counter() - t0

    specs = {name: get_protocol(name) for name, _ in plan.protocols}
    lists = {(name, t): build_lists(specs[name], index, t) for name, trials in todo.items() for t in trials}
    spec = {
        "schema_version": SCHEMA_VERSION,
        "cell": cell.to_dict(),
        "config_name": cell.config,
        "config_source": str(plan.config),
        "overrides": list(plan.overrides),
        "config": cfg,
        "config_hash": cell.config_hash,
        "init": init,
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
    hook = None
    if plan.eval_every:
        if (cd.train_dir / "model.pt").exists():
            notes.append(f"{cd.root.name}: trained before --eval-every was given: no curve "
                         "(--overwrite always retrains)")
        else:
            total = sum(s.epochs for s in runtime.stages_of(cell.method, cfg, cell.dataset))
            hook = CurveRecorder(cd, plan.eval_every, total, specs, lists, test_records, root, device)
    trained = runtime.train_or_load(cell.method, cfg, index, cell.split, train_records, seed=cell.seed,
                                    device=device, workdir=cd.train_dir, root=root, on_epoch_end=hook)
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
        reference = (base, runtime.features_for(base, test_records, root, device=device, cache=cd.untrained_features_path))
        timings["untrained_s"] = time.perf_counter() - t0

    say("evaluate")
    t0 = time.perf_counter()
    for name, trials in todo.items():
        _evaluate_protocol(cd, specs[name], trials, lists, feats, trained, device, reference)
    timings["evaluate_s"] = time.perf_counter() - t0

    if not cd.model_path.exists():
        say("measure")
        cd.write_model(runtime.model_stats(trained, device=device))

    cd.append_timings(timings, device, training=runtime.training_record(trained))
    cd.mark_done(sorted(set(cd.done_protocols()) | {n for n, _ in plan.protocols}))


def _check_identity(plan: CellPlan, cfg: dict[str, Any], data_id: str) -> None:
    """The resolved config and the loaded data must be those the cell was planned with (a data
    tree or a config file edited between planning and running would otherwise be mislabelled)."""
    cell = plan.cell
    if stable_hash(cfg) != cell.config_hash:
        raise VibenchError(f"config {plan.config} of {cell.method} now resolves to hash "
                           f"{stable_hash(cfg)[:12]}, not {cell.config_hash[:12]} as planned; run again")
    if data_id != cell.data:
        raise VibenchError(f"{cell.dataset} data is now {data_id[:24]}, not {cell.data[:24]} as "
                           "planned (the tree changed); run again")


def _evaluate_protocol(cd: CellDir, spec: Any, trials: tuple[int, ...], lists: dict, feats: Any, trained: Any,
                       device: str, reference: tuple[Any, Any] | None = None) -> None:
    """Evaluate the missing trials of one protocol; rankings first, the metrics file last.

    With `reference` (the untrained model and its features) the same trials are also scored
    for the untrained model and stored under "untrained" (no rankings kept for it)."""
    doc = cd.read_metrics(spec.name) or metrics_doc(spec, resolve_rerank(spec.rerank))
    for t in trials:
        pl = lists[(spec.name, t)]
        result, rankings = trained.evaluate_trial(spec, pl, feats, device)
        cd.write_rankings(spec.name, t, rankings)
        doc["trials"][str(t)] = trial_record(result, pl)
        if reference is not None:
            base, base_feats = reference
            base_result, _ = base.evaluate_trial(spec, pl, base_feats, device)
            doc.setdefault("untrained", {"trials": {}})["trials"][str(t)] = trial_record(base_result, pl)
    cd.write_metrics(finish_metrics_doc(doc))
