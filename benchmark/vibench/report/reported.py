"""The reported-results registry: the five papers' tables (``results/reported/<paper>.yaml``),
validated, flattened to one record per reported number, and checked for conflicts (two papers —
or two tables — reporting different numbers for the same method, protocol and metric).

File format (one YAML per paper, written by ``vibench.report.transcribe``; see docs/reports.md)::

    paper: BIT
    tables:
    - id: BIT-T1
      caption, kind (comparison|ablation|statistics|cross-dataset), dataset, protocol_text, notes
      label_columns: [Model, Venue]
      columns: [{label: AS-SS R1, dataset: SYSU-MM01, protocol: sysu-all-single, metric: rank1}]
      rows: [{labels: [...], method, role, flags: {rerank, reproduced, copied}, variant,
              cells: ["80.53", ...], marks: {label: best|second}, note}]
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from vibench.errors import VibenchError, unknown_name
from vibench.paths import REPORTED_DIR

CONFIG_NAME = "report.yaml"
#: Display order of the papers (the order of paper_tables.md); other files follow by name.
PAPER_ORDER = ("bit", "aminet", "tmpa", "mixer", "pmcm")
KINDS = ("comparison", "ablation", "statistics", "cross-dataset")
ROLES = ("ours", "copied", "reproduced", "ablation", "reference", "statistics")
METRICS = ("rank1", "rank5", "rank10", "rank20", "mAP", "mINP", "params", "flops", "latency",
           "ids", "images", "cameras_vis_ir")
_NUMBER = re.compile(r"^(-?\d{1,3}(?:,\d{3})+|-?\d+(?:\.\d+)?)(M)?(?:\s*\(([+-]\d+(?:\.\d+)?)\))?$")
_TEXT_CELL = re.compile(r"^\d+ / \d+$")
MISSING = ("-", "")
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_cell(text: str) -> float | None:
    """The number a reported cell states ("80.53 (+11.3)" -> 80.53, "8,240" -> 8240,
    "82.0M" -> 82.0), None for a missing ('-', '') or non-scalar ("1 / 1") cell."""
    m = _NUMBER.match(text.strip())
    if not m:
        return None
    return float(m.group(1).replace(",", ""))


@dataclass(frozen=True)
class Column:
    """A numeric column of a paper table."""

    label: str
    dataset: str | None
    protocol: str | None
    metric: str
    unit: str | None = None


@dataclass(frozen=True)
class Row:
    """A row of a paper table: its labels as printed, the curated method and flags, its cells."""

    labels: tuple[str, ...]
    method: str
    role: str
    rerank: str | bool
    reproduced: bool
    copied: bool
    variant: str | None
    cells: tuple[str, ...]
    marks: dict[str, str] = field(default_factory=dict)
    note: str | None = None


@dataclass(frozen=True)
class PaperTable:
    """One table of one paper, as it is re-rendered."""

    id: str
    paper: str
    caption: str
    kind: str
    dataset: str | None
    protocol_text: str | None
    notes: str | None
    label_columns: tuple[str, ...]
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]


@dataclass
class Registry:
    """All papers' tables, their claims, and the long-form records (one per reported number)."""

    tables: dict[str, PaperTable]
    claims: list[dict[str, str]]
    titles: dict[str, str]

    def records(self) -> pd.DataFrame:
        """One row per reported cell (missing cells included, value NaN), every field named."""
        out: list[dict[str, Any]] = []
        for t in self.tables.values():
            for r_i, row in enumerate(t.rows):
                for col, text in zip(t.columns, row.cells):
                    value = parse_cell(text)
                    out.append({
                        "paper": t.paper, "table": t.id, "row": r_i, "method": row.method,
                        "role": row.role, "row_label": " | ".join(row.labels),
                        "column": col.label, "dataset": col.dataset or t.dataset,
                        "protocol": col.protocol, "variant": row.variant, "metric": col.metric,
                        "unit": col.unit, "text": text,
                        "value": math.nan if value is None else value,
                        "rerank": row.rerank or False, "reproduced": row.reproduced,
                        "copied": row.copied, "mark": row.marks.get(col.label),
                    })
        return pd.DataFrame(out)


def _req(d: dict[str, Any], key: str, typ: type | tuple[type, ...], where: str) -> Any:
    if key not in d:
        raise VibenchError(f"{where}: missing key {key!r}")
    if not isinstance(d[key], typ):
        raise VibenchError(f"{where}: {key!r} should be {getattr(typ, '__name__', typ)}, got "
                           f"{type(d[key]).__name__}")
    return d[key]


def _load_yaml(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            # the C implementation of yaml.safe_load's SafeLoader when libyaml is available
            return yaml.load(fh, Loader=_SAFE_LOADER)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        raise VibenchError(f"{path}: not valid YAML ({exc})") from exc
    except OSError as exc:
        raise VibenchError(f"{path}: cannot read ({exc.strerror})") from exc


def _table(doc: dict[str, Any], paper: str, where: str) -> PaperTable:
    tid = _req(doc, "id", str, where)
    where = f"{where} table {tid}"
    kind = _req(doc, "kind", str, where)
    if kind not in KINDS:
        raise VibenchError(f"{where}: kind {kind!r}, expected one of {', '.join(KINDS)}")
    labels = tuple(str(x) for x in _req(doc, "label_columns", list, where))
    columns = []
    for c in _req(doc, "columns", list, where):
        metric = _req(c, "metric", str, f"{where} column")
        if metric not in METRICS:
            raise VibenchError(f"{where}: column {c.get('label')!r} metric {metric!r}, expected "
                               f"one of {', '.join(METRICS)}")
        columns.append(Column(str(_req(c, "label", str, f"{where} column")), c.get("dataset"),
                              c.get("protocol"), metric, c.get("unit")))
    rows = []
    for i, r in enumerate(_req(doc, "rows", list, where)):
        rw = f"{where} row {i + 1}"
        cells = tuple(str(x) for x in _req(r, "cells", list, rw))
        if len(cells) != len(columns):
            raise VibenchError(f"{rw}: {len(cells)} cells, expected {len(columns)} (one per column)")
        for cell in cells:
            if cell not in MISSING and parse_cell(cell) is None and not _TEXT_CELL.match(cell):
                raise VibenchError(f"{rw}: cell {cell!r} is not a number, '-' or 'a / b'")
        row_labels = tuple(str(x) for x in _req(r, "labels", list, rw))
        if len(row_labels) != len(labels):
            raise VibenchError(f"{rw}: {len(row_labels)} labels, expected {len(labels)}")
        role = _req(r, "role", str, rw)
        if role not in ROLES:
            raise VibenchError(f"{rw}: role {role!r}, expected one of {', '.join(ROLES)}")
        flags = _req(r, "flags", dict, rw)
        rows.append(Row(row_labels, str(_req(r, "method", str, rw)), role,
                        flags.get("rerank", False), bool(flags.get("reproduced", False)),
                        bool(flags.get("copied", False)), r.get("variant"), cells,
                        dict(r.get("marks") or {}), r.get("note")))
    return PaperTable(tid, paper, str(doc.get("caption", "")), kind, doc.get("dataset"),
                      doc.get("protocol_text"), doc.get("notes"), labels, tuple(columns),
                      tuple(rows))


def load_registry(directory: str | Path | None = None) -> Registry:
    """Load and validate every ``<paper>.yaml`` of the registry folder (``report.yaml`` aside)."""
    folder = Path(directory) if directory is not None else REPORTED_DIR
    files = sorted((p for p in folder.glob("*.yaml") if p.name != CONFIG_NAME),
                   key=lambda p: (PAPER_ORDER.index(p.stem) if p.stem in PAPER_ORDER else 99,
                                  p.name))
    if not files:
        raise VibenchError(f"{folder}: no reported-results files (<paper>.yaml) found")
    tables: dict[str, PaperTable] = {}
    claims: list[dict[str, str]] = []
    titles: dict[str, str] = {}
    for path in files:
        doc = _load_yaml(path)
        if not isinstance(doc, dict):
            raise VibenchError(f"{path}: expected a mapping with 'paper' and 'tables'")
        paper = _req(doc, "paper", str, str(path))
        titles[paper] = str(doc.get("title", paper))
        for t in _req(doc, "tables", list, str(path)):
            table = _table(t, paper, str(path))
            if table.id in tables:
                raise VibenchError(f"{path}: table id {table.id!r} defined twice")
            tables[table.id] = table
        for c in doc.get("claims") or []:
            claims.append({"paper": paper, "claim": str(c.get("claim", "")),
                           "protocol": str(c.get("protocol", ""))})
    return Registry(tables, claims, titles)


@dataclass(frozen=True)
class ReportConfig:
    """Tolerances, the registry -> vibench method map, protocol groups, imbalance variants."""

    tolerance: dict[str, float]
    default_tolerance: float
    warn_factor: float
    vibench_methods: dict[str, str]
    groups: dict[str, list[str]]
    imbalance_variants: list[dict[str, Any]]
    imbalance_protocols: list[str]
    reported_latency: list[dict[str, Any]] = field(default_factory=list)
    retrieval: dict[str, Any] = field(default_factory=dict)
    protocol_names: dict[str, dict[str, str]] = field(default_factory=dict)
    pages: dict[str, dict[str, Any]] = field(default_factory=dict)

    def short_name(self, protocol: str) -> str:
        """The protocol's column-header name ('All-search'); the id when none is configured."""
        return str((self.protocol_names.get(protocol) or {}).get("short", protocol))

    def long_name(self, protocol: str) -> str:
        """The protocol's descriptive name; the id when none is configured."""
        return str((self.protocol_names.get(protocol) or {}).get("long", protocol))

    def site_pages(self) -> dict[str, dict[str, Any]]:
        """Page id -> {title, groups}: the configured pages, else one page per group."""
        if self.pages:
            return self.pages
        return {g: {"title": g, "groups": [g]} for g in self.groups}

    def tol(self, metric: str) -> float:
        """Tolerance in percentage points for `metric`."""
        return self.tolerance.get(metric, self.default_tolerance)


def load_report_config(path: str | Path | None = None) -> ReportConfig:
    """Read ``results/reported/report.yaml``."""
    p = Path(path) if path is not None else REPORTED_DIR / CONFIG_NAME
    doc = _load_yaml(p)
    if not isinstance(doc, dict):
        raise VibenchError(f"{p}: expected a mapping (tolerance, vibench_methods, groups)")
    tol = _req(doc, "tolerance", dict, str(p))
    default = float(_req(tol, "default", (int, float), f"{p} tolerance"))
    per = {str(k): float(v) for k, v in (tol.get("per_metric") or {}).items()}
    groups = {str(k): [str(x) for x in v] for k, v in _req(doc, "groups", dict, str(p)).items()}
    imb = doc.get("imbalance") or {}
    return ReportConfig(per, default, float(tol.get("warn_factor", 3.0)),
                        {str(k): str(v) for k, v in (doc.get("vibench_methods") or {}).items()},
                        groups, list(imb.get("variants") or []),
                        [str(x) for x in imb.get("evaluate_on") or []],
                        list(doc.get("reported_latency") or []), dict(doc.get("retrieval") or {}),
                        {str(k): dict(v) for k, v in (doc.get("protocol_names") or {}).items()},
                        _pages(doc.get("pages"), groups, p))


def _pages(doc: Any, groups: dict[str, list[str]], path: Path) -> dict[str, dict[str, Any]]:
    """Validate the ``pages`` section: every page names known groups."""
    out: dict[str, dict[str, Any]] = {}
    for pid, page in (doc or {}).items():
        if not isinstance(page, dict) or not isinstance(page.get("groups"), list):
            raise VibenchError(f"{path}: pages.{pid} should be a mapping with 'title' and a "
                               "'groups' list")
        for g in page["groups"]:
            if g not in groups:
                raise unknown_name(f"group (in {path}, pages.{pid})", str(g), list(groups))
        out[str(pid)] = {"title": str(page.get("title", pid)),
                         "groups": [str(g) for g in page["groups"]]}
    return out


def find_conflicts(records: pd.DataFrame) -> pd.DataFrame:
    """Groups of reported numbers for the same (method, protocol, variant, metric, re-ranking)
    that disagree. Only rows naming a real method (not ablation variants or statistics) and
    columns with a vibench protocol are compared. One output row per conflicting number."""
    df = records[records["role"].isin(("ours", "copied", "reproduced"))
                 & records["protocol"].notna() & records["value"].notna()].copy()
    df["variant_key"] = df["variant"].fillna("")
    df["rerank_key"] = df["rerank"].astype(str)
    keys = ["method", "protocol", "variant_key", "metric", "rerank_key"]
    out = []
    for key, g in df.groupby(keys, sort=True):
        if g["value"].round(2).nunique() > 1:
            for _, r in g.iterrows():
                out.append({"method": key[0], "protocol": key[1], "variant": key[2] or None,
                            "metric": key[3], "rerank": r["rerank"], "table": r["table"],
                            "row_label": r["row_label"], "column": r["column"], "text": r["text"],
                            "value": r["value"], "reproduced": r["reproduced"],
                            "copied": r["copied"]})
    return pd.DataFrame(out, columns=["method", "protocol", "variant", "metric", "rerank", "table",
                                      "row_label", "column", "text", "value", "reproduced",
                                      "copied"])
