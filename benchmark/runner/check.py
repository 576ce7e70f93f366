"""Regression checks: compare every metric of a result store with a committed baseline.

Baseline file (JSON)::

    {"schema_version": 1, "suite": "ci", "tolerance": {"default": 0.03},
     "metrics": {"<cell_id>/<protocol>/<metric>": value, ...}, "provenance": {...}}

Values are fractions in [0, 1]. A metric fails when |got - expected| > its tolerance, or when
it is missing from the results; metrics present in the results but not in the baseline are
listed as new and do not fail the check.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vibench.errors import VibenchError
from vibench.io import read_json, write_json_atomic
from vibench.provenance import provenance

METRICS = ("rank1", "rank5", "rank10", "rank20", "mAP", "mINP")
DEFAULT_TOLERANCE = 0.03


@dataclass(frozen=True)
class CheckRow:
    key: str
    expected: float | None
    got: float | None
    tolerance: float

    @property
    def diff(self) -> float | None:
        if self.expected is None or self.got is None:
            return None
        return self.got - self.expected

    @property
    def status(self) -> str:
        if self.expected is None:
            return "new"
        if self.got is None:
            return "MISSING"
        return "ok" if abs(self.got - self.expected) <= self.tolerance + 1e-12 else "FAIL"


def flatten_results(results_dir: Path) -> dict[str, float]:
    """`<cell directory>/<protocol>/<metric>` -> value for every completed cell of a result store."""
    from vibench.store import iter_completed_cells

    flat: dict[str, float] = {}
    for cell in iter_completed_cells(results_dir):
        for protocol, m in cell.metrics.items():
            for metric in METRICS:
                value = m.get("summary", {}).get(metric)
                if value is not None:
                    flat[f"{cell.path.name}/{protocol}/{metric}"] = float(value)
    return flat


def parse_tolerance(text: str | None, base: dict[str, float] | None = None) -> dict[str, float]:
    """'0.02' (every metric) or 'default=0.02,mAP=0.03,rank1=0.05' -> {metric or 'default': tol}."""
    tol = dict(base or {"default": DEFAULT_TOLERANCE})
    if not text:
        return tol
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, _, value = part.rpartition("=")
        name = name or "default"
        if name != "default" and name not in METRICS:
            from vibench.errors import unknown_name

            raise unknown_name("metric in --tolerance", name, (*METRICS, "default"))
        try:
            tol[name] = float(value)
        except ValueError:
            raise VibenchError(f"--tolerance {text!r}: {value!r} is not a number") from None
        if tol[name] < 0:
            raise VibenchError(f"--tolerance {text!r}: tolerances must be >= 0")
    return tol


def load_baseline(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise VibenchError(f"baseline {path} does not exist (create it with `vibench baseline --out {path}`)")
    try:
        data = read_json(path)
    except ValueError as exc:
        raise VibenchError(f"baseline {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
        raise VibenchError(f"baseline {path}: expected a JSON object with a 'metrics' mapping")
    return data


def compare(baseline: dict[str, Any], got: dict[str, float], tolerance: dict[str, float]) -> list[CheckRow]:
    rows: list[CheckRow] = []
    expected: dict[str, float] = baseline["metrics"]
    for key in sorted(set(expected) | set(got)):
        metric = key.rsplit("/", 1)[-1]
        tol = tolerance.get(metric, tolerance.get("default", DEFAULT_TOLERANCE))
        rows.append(CheckRow(key, expected.get(key), got.get(key), tol))
    return rows


def format_rows(rows: list[CheckRow]) -> str:
    def pct(v: float | None, signed: bool = False) -> str:
        if v is None:
            return "—"
        return f"{100 * v:+.2f}" if signed else f"{100 * v:.2f}"

    header = ("metric", "expected", "got", "diff", "tol", "status")
    table = [header] + [(r.key, pct(r.expected), pct(r.got), pct(r.diff, True), f"{100 * r.tolerance:.2f}", r.status) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)) for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n(values in percent)"


def write_baseline(path: Path, results_dir: Path, suite: str, tolerance: dict[str, float]) -> dict[str, Any]:
    metrics = flatten_results(results_dir)
    if not metrics:
        raise VibenchError(f"{results_dir} holds no completed cells: nothing to write into a baseline")
    data = {"schema_version": 1, "suite": suite, "tolerance": tolerance, "metrics": metrics,
            "provenance": provenance()}
    write_json_atomic(path, data)
    return data
