"""Read a vibench result store (docs/ARCHITECTURE.md, "Result store") for the reports.

Aggregation rule (issue 7): SYSU-MM01 and LLCM numbers are the mean over the protocol's gallery
trials inside the cell; RegDB numbers are the mean over the ten split cells 1..10. When any
trial or split is missing the value is None (rendered "—"), never a partial average. With
several seeds, the value is the mean over seeds, and None if any seed is incomplete.
Values are returned in percent (the store holds fractions).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vibench.errors import VibenchError

METRIC_KEYS = ("rank1", "rank5", "rank10", "rank20", "mAP", "mINP")
STANDARD = "standard"
_DEFAULT_TRIALS = {"regdb": tuple(range(1, 11))}
_FALLBACK_TRIALS = tuple(range(10))


@dataclass
class CellRecord:
    """One completed cell directory: its spec and its metrics files."""

    path: Path
    method: str
    dataset: str
    variant: str | None
    split: int
    seed: int
    spec: dict[str, Any]
    metrics: dict[str, dict[str, Any]]
    model: dict[str, Any] | None

    @property
    def data_kind(self) -> str:
        """'synthetic', 'real' or 'unknown' (spec.json 'data.kind')."""
        return str((self.spec.get("data") or {}).get("kind", "unknown"))

    @property
    def commit(self) -> str | None:
        git = (self.spec.get("provenance") or {}).get("git") or {}
        return git.get("commit")

    @property
    def dirty(self) -> bool | None:
        git = (self.spec.get("provenance") or {}).get("git") or {}
        return git.get("dirty")

    @property
    def hardware(self) -> str:
        hw = (self.spec.get("provenance") or {}).get("hardware") or {}
        return str(hw.get("gpu") or hw.get("cpu") or self.spec.get("device") or "unknown")


@dataclass
class Aggregate:
    """One (method, variant, protocol, rerank) result with its provenance."""

    method: str
    variant: str | None
    protocol: str
    dataset: str
    rerank: bool
    values: dict[str, float | None]
    cmc: list[float] | None
    expected: tuple[int, ...]
    present: dict[int, tuple[int, ...]]  # seed -> trials/splits present
    seeds: tuple[int, ...]
    data_kinds: tuple[str, ...]
    commits: tuple[str, ...]
    hardware: tuple[str, ...]
    cells: tuple[Path, ...]

    @property
    def complete(self) -> bool:
        return all(set(self.expected) <= set(p) for p in self.present.values())

    @property
    def synthetic(self) -> bool:
        return any(k != "real" for k in self.data_kinds)

    @property
    def missing(self) -> dict[int, tuple[int, ...]]:
        return {s: tuple(t for t in self.expected if t not in p) for s, p in self.present.items()
                if not set(self.expected) <= set(p)}


@dataclass
class StoreSummary:
    """Everything the report needs from a result store."""

    root: Path | None
    cells: list[CellRecord] = field(default_factory=list)
    aggregates: list[Aggregate] = field(default_factory=list)
    incomplete: list[Path] = field(default_factory=list)

    def lookup(self, method: str, protocol: str, variant: str | None = None,
               rerank: bool = False) -> Aggregate | None:
        for a in self.aggregates:
            if (a.method, a.protocol, a.variant, a.rerank) == (method, protocol, variant, rerank):
                return a
        return None


def _read_json(path: Path, what: str) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise VibenchError(f"{path}: not valid JSON ({exc.msg}); expected the {what}") from exc
    except OSError as exc:
        raise VibenchError(f"{path}: cannot read ({exc.strerror}); expected the {what}") from exc


def _check_metrics(doc: Any, path: Path) -> dict[str, Any]:
    if not isinstance(doc, dict) or not isinstance(doc.get("trials"), dict):
        raise VibenchError(f"{path}: expected a metrics file with 'protocol' and 'trials' "
                           "(docs/ARCHITECTURE.md, Result store)")
    for t, tr in doc["trials"].items():
        try:
            int(t)
        except ValueError:
            raise VibenchError(f"{path}: trial key {t!r} is not an integer") from None
        if not isinstance(tr, dict) or not isinstance(tr.get("cmc"), list) or "mAP" not in tr:
            raise VibenchError(f"{path}: trial {t} needs 'cmc' (list), 'mAP' and 'mINP'")
        for x in tr["cmc"] + [tr["mAP"], tr.get("mINP", 0.0)]:
            if not isinstance(x, (int, float)) or not (0.0 <= float(x) <= 1.0):
                raise VibenchError(f"{path}: trial {t} has {x!r}; metric values are fractions "
                                   "in [0, 1]")
    return doc


def read_cell(path: Path) -> CellRecord:
    """Load one completed cell directory (spec.json, metrics/*.json, model.json)."""
    spec = _read_json(path / "spec.json", "cell spec (spec.json)")
    cell = spec.get("cell") if isinstance(spec, dict) else None
    if not isinstance(cell, dict) or not {"method", "dataset", "split", "seed"} <= set(cell):
        raise VibenchError(f"{path / 'spec.json'}: expected 'cell' with method, dataset, variant, "
                           "split, seed")
    if not isinstance(cell["method"], str) or not isinstance(cell["dataset"], str):
        raise VibenchError(f"{path / 'spec.json'}: cell method and dataset must be strings")
    try:
        split, seed = int(cell["split"]), int(cell["seed"])
    except (TypeError, ValueError):
        raise VibenchError(f"{path / 'spec.json'}: cell split and seed must be integers") from None
    variant = cell.get("variant")
    variant = None if variant in (None, STANDARD) else str(variant)
    metrics = {}
    for mpath in sorted((path / "metrics").glob("*.json")):
        doc = _check_metrics(_read_json(mpath, "protocol metrics file"), mpath)
        metrics[str(doc.get("protocol", mpath.stem))] = doc
    model_path = path / "model.json"
    model = _read_json(model_path, "model statistics") if model_path.exists() else None
    if model is not None and not isinstance(model, dict):
        raise VibenchError(f"{model_path}: expected a mapping with 'params' and 'latency'")
    return CellRecord(path, cell["method"], cell["dataset"], variant, split, seed, spec, metrics,
                      model)


def expected_trials(protocol: str, dataset: str) -> tuple[int, ...]:
    """The trials (SYSU/LLCM gallery draws) or splits (RegDB) a complete result needs."""
    try:
        from vibench.protocols import get_protocol

        return tuple(int(t) for t in get_protocol(protocol).trials)
    except (ImportError, VibenchError, AttributeError, KeyError):
        return _DEFAULT_TRIALS.get(dataset, _FALLBACK_TRIALS)


def _trial_values(tr: dict[str, Any]) -> dict[str, float]:
    cmc = [float(x) for x in tr["cmc"]]
    out = {"mAP": float(tr["mAP"]), "mINP": float(tr.get("mINP", math.nan))}
    for k in (1, 5, 10, 20):
        out[f"rank{k}"] = cmc[k - 1] if k <= len(cmc) else math.nan
    return out


def aggregate(cells: list[CellRecord]) -> list[Aggregate]:
    """Per (method, variant, protocol, rerank): the mean as defined in the module docstring."""
    # key -> seed -> trial -> (values, cmc, cell)
    table: dict[tuple, dict[int, dict[int, tuple[dict[str, float], list[float], CellRecord]]]] = {}
    for c in cells:
        for proto, doc in c.metrics.items():
            key = (c.method, c.variant, proto, str(doc.get("dataset", c.dataset)),
                   bool(doc.get("rerank")))
            slot = table.setdefault(key, {}).setdefault(c.seed, {})
            for t, tr in doc["trials"].items():
                trial = int(t)
                if key[3] == "regdb" and trial != c.split:
                    continue  # a RegDB split cell evaluates its own split only
                slot[trial] = (_trial_values(tr), [float(x) for x in tr["cmc"]], c)
    out = []
    for (method, variant, proto, dataset, rerank), seeds in sorted(
            table.items(), key=lambda kv: tuple(str(x) for x in kv[0])):
        expected = expected_trials(proto, dataset)
        present = {s: tuple(sorted(tr)) for s, tr in seeds.items()}
        complete = all(set(expected) <= set(p) for p in present.values())
        values: dict[str, float | None] = {k: None for k in METRIC_KEYS}
        cmc = None
        if complete:
            per_seed = []
            curves = []
            for s, trials in seeds.items():
                vals = [trials[t][0] for t in expected]
                per_seed.append({k: float(np.mean([v[k] for v in vals])) for k in METRIC_KEYS})
                n = min(len(trials[t][1]) for t in expected)
                curves.append(np.mean([trials[t][1][:n] for t in expected], axis=0))
            for k in METRIC_KEYS:
                v = float(np.mean([p[k] for p in per_seed])) * 100.0
                values[k] = None if math.isnan(v) else v
            n = min(len(c) for c in curves)
            cmc = [float(x) * 100.0 for x in np.mean([c[:n] for c in curves], axis=0)]
        used = [rec for trials in seeds.values() for (_, _, rec) in trials.values()]
        out.append(Aggregate(
            method, variant, proto, dataset, rerank, values, cmc, expected, present,
            tuple(sorted(seeds)), tuple(sorted({r.data_kind for r in used})),
            tuple(sorted({(r.commit or "unknown")[:12] + ("+dirty" if r.dirty else "")
                          for r in used})),
            tuple(sorted({r.hardware for r in used})), tuple(sorted({r.path for r in used}))))
    return out


def load_store(root: str | Path | None) -> StoreSummary:
    """Walk ``<root>/cells/*/``; cells without DONE are listed as incomplete and not used.
    A missing root (no results yet) gives an empty summary; a root that exists but has no
    ``cells/`` folder is an error (probably the wrong folder)."""
    if root is None:
        return StoreSummary(None)
    root = Path(root)
    if not root.exists():
        return StoreSummary(root)
    cells_dir = root / "cells"
    if not cells_dir.is_dir():
        raise VibenchError(f"{root}: not a result store (expected a 'cells/' folder written by "
                           "`vibench run`)")
    summary = StoreSummary(root)
    for path in sorted(p for p in cells_dir.iterdir() if p.is_dir()):
        if not (path / "DONE").exists():
            summary.incomplete.append(path)
            continue
        summary.cells.append(read_cell(path))
    summary.aggregates = aggregate(summary.cells)
    return summary


def model_stats(summary: StoreSummary) -> list[dict[str, Any]]:
    """One row per (method, device) from the cells' model.json: params (registered/effective,
    millions), FLOPs (G), latency (ms per query) and the device it was measured on."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for c in summary.cells:
        m = c.model
        if not m:
            continue
        params = m.get("params") or {}
        lat = m.get("latency") or {}
        device = str(lat.get("device") or c.spec.get("device") or "unknown")
        flops = m.get("flops")
        if isinstance(flops, dict):
            flops = flops.get("per_image", flops.get("total", flops.get("flops")))
        key = (c.method, device)
        row = rows.setdefault(key, {
            "method": c.method, "device": device,
            "params_registered_m": _millions(params.get("registered")),
            "params_effective_m": _millions(params.get("effective")),
            "gflops": None if not isinstance(flops, (int, float)) else float(flops) / 1e9,
            "latencies": [], "synthetic": False, "hardware": c.hardware})
        if isinstance(lat.get("ms_per_query"), (int, float)):
            row["latencies"].append(float(lat["ms_per_query"]))
        row["synthetic"] = row["synthetic"] or c.data_kind != "real"
    out = []
    for row in rows.values():
        lats = row.pop("latencies")
        row["ms_per_query"] = float(np.median(lats)) if lats else None
        out.append(row)
    return sorted(out, key=lambda r: (r["device"], r["method"]))


def _millions(x: Any) -> float | None:
    return float(x) / 1e6 if isinstance(x, (int, float)) else None
