"""What a run of paper configs costs: the planned epochs and iterations of every cell and its
estimated wall time, from seconds per iteration measured by the rehearsal suite.

Iterations per epoch follow the engine's sampler (``sampler.iterations``, else one pass over
the larger modality: ``max(#visible, #infrared) // (P * K)``, vibench.engine.batch_sampler).
The image counts come from the real index when ``--data-root`` names the dataset (imbalance
variants reduce it as training does), else from the real datasets' known sizes
(:data:`REAL_SIZES`). Seconds per iteration (per training stage) and extraction seconds per
image come from a rehearsal store (cells of the ``paper`` config on ``paper-shape`` synthetic
data, measured on the same device kind) or a costs JSON written by the rehearsal
(``rehearsal-<device kind>.json``; the committed ones live in ``results/costs/``). Evaluation
(ranking, re-ranking, BIT's decoder refinement) is not included.
"""
from __future__ import annotations

import datetime as _dt
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from vibench.engine.batch_sampler import planned_shape
from vibench.errors import VibenchError
from vibench.io import write_json_atomic
from vibench.paths import RESULTS_DIR
from vibench.protocols import apply_training_variant, get_protocol
from vibench.provenance import hardware
from vibench.registry import get_method_class
from vibench.runner.cells import STANDARD, CellPlan
from vibench.runner.datasources import DataSources
from vibench.runner.runtime import load_method_config, resolve_device
from vibench.store import iter_cell_dirs
from vibench.store.layout import read_json_file

COSTS_DIR = RESULTS_DIR / "costs"
REHEARSAL_SCALE = "paper-shape"


@dataclass(frozen=True)
class DatasetSize:
    """Training images per modality and test images (extracted once per cell) of one split."""

    train_visible: int
    train_infrared: int
    test: int


#: The real datasets' sizes (docs/datasets.md, docs/synthetic.md): SYSU-MM01 training = train +
#: val ids (395), test = every image of the 96 test ids (zip totals 30,071 RGB + 15,792 IR minus
#: the training images); RegDB one split (206 ids x 10 + 10); LLCM the paper's split.
REAL_SIZES: dict[str, DatasetSize] = {
    "sysu": DatasetSize(22258, 11909, (30071 - 22258) + (15792 - 11909)),
    "regdb": DatasetSize(2060, 2060, 4120),
    "llcm": DatasetSize(16946, 13975, 8680 + 7166),
}


def device_kind(device: str) -> str:
    """'cuda' or 'cpu' for a resolved device string (the key of a costs file)."""
    return "cuda" if str(device).startswith("cuda") else "cpu"


# ---- measured costs ---------------------------------------------------------------------------

@dataclass
class MeasuredCosts:
    """Seconds per iteration per method (and per training stage) on one device kind."""

    device: str
    source: str
    methods: dict[str, dict[str, Any]] = field(default_factory=dict)
    note: str = ""

    def seconds_per_iteration(self, method: str, stage: str) -> float | None:
        m = self.methods.get(method)
        if not m:
            return None
        return (m.get("stages") or {}).get(stage) or m.get("seconds_per_iteration")

    def images_per_iteration(self, method: str, stage: str) -> float | None:
        """Images per iteration of the rehearsal measurement (None for records without it)."""
        m = self.methods.get(method)
        if not m:
            return None
        return (m.get("stage_images_per_iteration") or {}).get(stage) or m.get("images_per_iteration")

    def extract_seconds_per_image(self, method: str) -> float | None:
        m = self.methods.get(method)
        return m.get("extract_s_per_image") if m else None


def _steady(training: Mapping[str, Any]) -> float | None:
    """Seconds per iteration without the first iteration when measured, else the mean."""
    return training.get("steady_seconds_per_iteration") or training.get("seconds_per_iteration")


def rehearsal_cells(store: Path, kind: str) -> Iterable[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(method, spec, timings) of every completed rehearsal cell of `store` measured on `kind`."""
    for cd in iter_cell_dirs(store):
        try:
            spec, timings = cd.read_spec(), cd.read_timings()
        except VibenchError:
            continue
        data = spec.get("data") or {}
        if (spec.get("config_name") != "paper" or data.get("kind") != "synthetic"
                or data.get("scale") != REHEARSAL_SCALE or not timings or not timings.get("training")
                or device_kind(spec.get("device", "cpu")) != kind):
            continue
        yield spec["cell"]["method"], spec, timings


def measured_from_store(store: Path, kind: str) -> MeasuredCosts:
    """Per method, the median over its rehearsal cells of the steady seconds per iteration
    (overall and per stage), of images per second, and of extraction seconds per test image;
    the largest peak memory."""
    per: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for method, spec, timings in rehearsal_cells(store, kind):
        per.setdefault(method, []).append((spec, timings))
    out = MeasuredCosts(kind, str(store))
    for method, cells in sorted(per.items()):
        trainings = [t["training"] for _, t in cells]
        stages: dict[str, list[float]] = {}
        stage_images: dict[str, list[float]] = {}
        for tr in trainings:
            for name, st in (tr.get("stages") or {}).items():
                if _steady(st):
                    stages.setdefault(name, []).append(float(_steady(st)))
                if st.get("images_per_iteration"):
                    stage_images.setdefault(name, []).append(float(st["images_per_iteration"]))
        extract = []
        for spec, timings in cells:
            n = int((spec.get("data") or {}).get("num_test") or 0)
            secs = max((float(r.get("extract_s", 0.0)) for r in timings.get("runs", [])), default=0.0)
            if n and secs > 0:
                extract.append(secs / n)
        peaks = [tr["peak_memory"] for tr in trainings if tr.get("peak_memory")]
        out.methods[method] = {
            "cells": len(cells),
            "seconds_per_iteration": _median(_steady(tr) for tr in trainings),
            "stages": {name: round(statistics.median(v), 4) for name, v in stages.items()},
            "images_per_s": _median(tr.get("images_per_s") for tr in trainings),
            "images_per_iteration": _median(tr.get("images_per_iteration") for tr in trainings),
            "stage_images_per_iteration": {name: statistics.median(v) for name, v in stage_images.items()},
            "peak_memory": max(peaks, key=lambda p: p["bytes"]) if peaks else None,
            "extract_s_per_image": round(statistics.median(extract), 5) if extract else None,
            "init": trainings[0].get("init"),
        }
    return out


def _median(values: Iterable[Any]) -> float | None:
    vals = [float(v) for v in values if v]
    return round(statistics.median(vals), 4) if vals else None


def write_measured_costs(store: Path, device: str) -> Path | None:
    """Write ``<store>/rehearsal-<device kind>.json`` from the store's rehearsal cells (None when
    it has none): the per-method figures `--dry-run` estimates from."""
    kind = device_kind(device)
    costs = measured_from_store(store, kind)
    if not costs.methods:
        return None
    path = Path(store) / f"rehearsal-{kind}.json"
    write_json_atomic(path, {
        "schema": 1, "suite": "rehearsal", "device": kind, "hardware": hardware(device),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "note": "paper configs from random initialisation on paper-shape synthetic data; steady "
                "seconds per iteration (first iteration excluded), median over the method's cells",
        "methods": costs.methods,
    })
    return path


def load_measured(source: Path | None, device: str) -> MeasuredCosts | None:
    """Measured costs for `device`'s kind: from `source` (a store directory or a costs JSON),
    else the default store's rehearsal cells, else ``results/costs/rehearsal-<kind>.json``; a
    CUDA device without a CUDA measurement falls back to the CPU file (said in the note)."""
    kind = device_kind(device)
    if source is not None:
        source = Path(source)
        if source.is_dir():
            costs = measured_from_store(source, kind)
            if not costs.methods:
                raise VibenchError(f"--estimate-from {source}: no completed rehearsal cells measured on {kind} "
                                   "(run `vibench run --suite rehearsal --out DIR` first)")
            return costs
        if source.is_file():
            return _from_json(source)
        raise VibenchError(f"--estimate-from {source}: neither a result store nor a costs JSON file")
    default_store = RESULTS_DIR / "store"
    if default_store.is_dir():
        costs = measured_from_store(default_store, kind)
        if costs.methods:
            return costs
    for k in (kind, "cpu"):
        path = COSTS_DIR / f"rehearsal-{k}.json"
        if path.is_file():
            costs = _from_json(path)
            if k != kind:
                costs.note = f"no {kind} measurement recorded: the figures are {k} figures"
            return costs
    return None


def _from_json(path: Path) -> MeasuredCosts:
    doc = read_json_file(path, "rehearsal costs (rehearsal-<device>.json)")
    if not isinstance(doc, dict) or not isinstance(doc.get("methods"), dict):
        raise VibenchError(f"{path}: expected a rehearsal costs file with a 'methods' mapping")
    return MeasuredCosts(str(doc.get("device", "?")), str(path), dict(doc["methods"]))


# ---- the plan's cost ---------------------------------------------------------------------------

@dataclass
class StageEstimate:
    name: str
    epochs: int
    iterations: int
    seconds_per_iteration: float | None
    #: planned / rehearsed images per iteration (the measured s/iteration was multiplied by it)
    batch_scale: float = 1.0

    @property
    def seconds(self) -> float | None:
        if self.seconds_per_iteration is None:
            return None
        return self.epochs * self.iterations * self.seconds_per_iteration


@dataclass
class CellEstimate:
    plan: CellPlan
    stages: list[StageEstimate]
    test_images: int
    extract_seconds: float | None
    sizes: str  # "real index" | "known real sizes"

    @property
    def seconds(self) -> float | None:
        parts = [s.seconds for s in self.stages] + [self.extract_seconds]
        return None if any(p is None for p in parts) else float(sum(parts))  # type: ignore[arg-type]


@dataclass
class Estimate:
    cells: list[CellEstimate]
    costs: MeasuredCosts | None
    device: str

    @property
    def total_seconds(self) -> float | None:
        secs = [c.seconds for c in self.cells]
        return None if not secs or any(s is None for s in secs) else float(sum(secs))  # type: ignore[arg-type]


def _sizes(plan: CellPlan, data: DataSources, cache: dict[str, Any]) -> tuple[DatasetSize, str]:
    cell = plan.cell
    if data.is_synthetic(cell.dataset):
        return REAL_SIZES[cell.dataset], "known real sizes"
    if cell.dataset not in cache:
        cache[cell.dataset] = data.load(cell.dataset)
    index = cache[cell.dataset]
    records = list(index.train(cell.split))
    if cell.variant != STANDARD:
        records = apply_training_variant(get_protocol(cell.variant), records, cell.seed)
    n_vis = sum(r.modality == "visible" for r in records)
    return DatasetSize(n_vis, len(records) - n_vis, len(index.test(cell.split))), "real index"


def estimate_plans(plans: Sequence[CellPlan], data: DataSources, *, device: str = "auto",
                   source: Path | None = None) -> Estimate:
    """Every cell's stages (epochs x iterations per epoch) and estimated seconds."""
    dev = resolve_device(device)
    costs = load_measured(source, dev)
    indexes: dict[str, Any] = {}
    cells = []
    for p in plans:
        size, how = _sizes(p, data, indexes)
        cfg = load_method_config(p.cell.method, p.config, p.cell.dataset, p.overrides)
        method = get_method_class(p.cell.method)(cfg, p.cell.dataset)
        stages = []
        for stage in method.stages():
            iters, planned = planned_shape(stage.sampler, size.train_visible, size.train_infrared)
            spi = costs.seconds_per_iteration(p.cell.method, stage.name) if costs else None
            measured = costs.images_per_iteration(p.cell.method, stage.name) if costs else None
            # a rehearsal with a smaller batch (the CPU rehearsal's identities per batch): time
            # scales with the images per iteration (linear; docs/rehearsal.md)
            scale = planned / measured if spi is not None and measured else 1.0
            stages.append(StageEstimate(stage.name, int(stage.epochs), int(iters),
                                        None if spi is None else spi * scale, scale))
        per_image = costs.extract_seconds_per_image(p.cell.method) if costs else None
        cells.append(CellEstimate(p, stages, size.test, None if per_image is None else per_image * size.test, how))
    return Estimate(cells, costs, dev)


def _hms(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def format_estimate(est: Estimate) -> str:
    """The estimate as a table: one line per cell, then the total and where the figures come from."""
    rows = [("method", "dataset", "variant", "split", "stages (epochs x iterations)", "s/iter", "test imgs",
             "extract", "estimate")]
    for c in est.cells:
        cell = c.plan.cell
        stages = " + ".join(f"{s.name} {s.epochs}x{s.iterations}" for s in c.stages)
        spi = ", ".join("?" if s.seconds_per_iteration is None else f"{s.seconds_per_iteration:.3g}"
                        + ("" if s.batch_scale == 1.0 else f" (x{s.batch_scale:.3g} batch)") for s in c.stages)
        rows.append((cell.method, cell.dataset, cell.variant, str(cell.split), stages, spi, str(c.test_images),
                     _hms(c.extract_seconds), _hms(c.seconds)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(v.ljust(widths[i]) for i, v in enumerate(r)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    sizes = sorted({c.sizes for c in est.cells})
    lines.append("")
    lines.append(f"{len(est.cells)} cells on {est.device}; training and extraction only (evaluation, re-ranking and "
                 f"BIT's refinement not included); image counts: {', '.join(sizes)}")
    if est.costs is None:
        lines.append("no measured seconds per iteration for this device: run `vibench run --suite rehearsal` "
                     "or give --estimate-from STORE|rehearsal-<device>.json")
    else:
        note = f" ({est.costs.note})" if est.costs.note else ""
        lines.append(f"seconds per iteration measured by the rehearsal on {est.costs.device}: {est.costs.source}{note}")
        missing = sorted({c.plan.cell.method for c in est.cells if c.seconds is None})
        if missing:
            lines.append(f"no measurement for: {', '.join(missing)} (their cells show '?')")
    total = est.total_seconds
    lines.append(f"estimated total: {_hms(total)}"
                 + ("" if total is None or total >= 3600 else f" ({total / 3600:.2f} h)")
                 + ("" if total is None or total < 48 * 3600 else f" = {total / 86400:.0f} days on one {est.device} device"))
    return "\n".join(lines)


def _gib(peak: Mapping[str, Any] | None) -> str:
    if not peak:
        return "—"
    kind = "RSS" if peak.get("kind") == "rss" else "CUDA alloc"
    return f"{peak['bytes'] / 2 ** 30:.2f} GiB {kind}"


def format_costs(outcomes: Sequence[Mapping[str, Any]]) -> str:
    """The training-cost table of a run: per cell iterations, seconds per iteration (mean and
    without the first), images per second, peak memory and initialisation."""
    rows = [("cell", "iterations", "s/iter", "s/iter steady", "images/s", "peak memory", "init")]
    for o in outcomes:
        tr = o.get("training")
        if not tr:
            rows.append((o["cell"]["cell_id"], "—", "—", "—", "—", "—", o["status"]))
            continue
        steady = tr.get("steady_seconds_per_iteration")
        rows.append((o["cell"]["cell_id"], str(tr.get("iterations")), f"{tr.get('seconds_per_iteration') or 0:.2f}",
                     "—" if steady is None else f"{steady:.2f}", f"{tr.get('images_per_s') or 0:.1f}",
                     _gib(tr.get("peak_memory")), str((tr.get("init") or {}).get("kind", "?"))))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(v.ljust(widths[i]) for i, v in enumerate(r)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
