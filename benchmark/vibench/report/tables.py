"""Renderer-neutral tables of the report (``DisplayTable``: Markdown and HTML render the same
objects; CSV/JSON exports come from ``DisplayTable.to_frame``), and the tables that are not
leaderboards: the papers' tables with reproduced columns, conflicts, claims, provenance.

Display conventions: the papers' own tables show the papers' text exactly; every other table
shows one decimal (the exact text in the tooltip, the full value in the exports and the sort key),
"—" when a value is missing or any trial/split is missing. Numbers computed on synthetic data
are never put in these tables (see :mod:`vibench.report.pipeline_check`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from vibench.report.reported import PaperTable, Registry, ReportConfig, find_conflicts, parse_cell
from vibench.report.aggregate import Aggregate, StoreSummary

DASH = "—"
DIGITS = 1  # every number outside the papers' own tables
METRIC_ORDER = ("rank1", "rank5", "rank10", "rank20", "mAP", "mINP")
METRIC_SHORT = {"rank1": "R1", "rank5": "R5", "rank10": "R10", "rank20": "R20", "mAP": "mAP",
                "mINP": "mINP"}
PROVENANCE_PAGE = "provenance.html"
PIPELINE_PAGE = "pipeline-check.html"


@dataclass
class Cell:
    """One displayed cell: text, the number it sorts by, a CSS class, a tooltip, and optional
    links (text, relative href) shown instead of the text."""

    text: str
    value: float | None = None
    cls: str = ""
    title: str = ""
    links: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class DisplayTable:
    """A table as rendered.

    `header` are the export (CSV/JSON) column names; `display` the leaf header labels shown on
    the pages (default: `header`); `groups` the grouped header row as (label, span, tooltip)
    covering every column in order (label "" = no group: the leaf header spans both rows);
    `frozen` the number of leading columns kept visible while scrolling sideways."""

    id: str
    title: str
    header: list[str]
    rows: list[list[Cell]]
    caption: str = ""
    notes: list[str] = field(default_factory=list)
    display: list[str] = field(default_factory=list)
    header_titles: list[str] = field(default_factory=list)
    groups: list[tuple[str, int, str]] = field(default_factory=list)
    frozen: int = 1
    row_ids: list[str] = field(default_factory=list)

    def labels(self) -> list[str]:
        """Leaf header labels as shown."""
        return self.display or self.header

    def flat_labels(self) -> list[str]:
        """'<group> <leaf>' per column (Markdown, which has one header row)."""
        out, j = [], 0
        labels = self.labels()
        for g, span, _ in self.groups or [("", len(labels), "")]:
            for k in range(span):
                out.append(f"{g} {labels[j + k]}".strip())
            j += span
        return out

    def to_frame(self, numeric: bool = True) -> pd.DataFrame:
        """The table for exports: with `numeric`, columns whose cells are all numbers (or
        missing) hold the numbers; otherwise (and always without `numeric`) the cell text."""
        data = {}
        for j, h in enumerate(self.header):
            col = [r[j] for r in self.rows]
            is_num = numeric and any(c.value is not None for c in col) and all(
                c.value is not None or c.text in ("", DASH, "-") for c in col)
            data[h] = [c.value if is_num else c.text for c in col]
        return pd.DataFrame(data, columns=self.header)


def fmt(value: float | None, digits: int = DIGITS) -> str:
    """A number with `digits` decimals, or the dash for a missing value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    return f"{value:.{digits}f}"


def flags_text(rerank: Any, reproduced: bool = False, copied: bool = False) -> str:
    """Short flags: RR (re-ranking, with its kind), † (reproduced by the paper), copied."""
    out = []
    if rerank:
        out.append(f"RR ({rerank})" if isinstance(rerank, str) else "RR")
    if reproduced:
        out.append("†")
    if copied:
        out.append("copied")
    return ", ".join(out)


def provenance_text(a: Aggregate) -> str:
    """One-line provenance of a reproduced number (tooltip)."""
    trials = ",".join(str(t) for t in a.expected)
    return (f"config: {a.config}; init: {init_text(a)}; data: {a.data}; commit: {', '.join(a.commits)}; "
            f"hardware: {', '.join(a.hardware)}; seeds: {', '.join(str(s) for s in a.seeds)}; "
            f"{'splits' if a.dataset == 'regdb' else 'trials'}: {trials}")


def init_text(a: Aggregate) -> str:
    """The backbone initialisation(s) of the cells behind a number (spec ``init``)."""
    return ", ".join(sorted({c.init_label for c in a.sources})) or "not recorded"


def provenance_href(a: Aggregate) -> str:
    """The link from a reproduced number to its provenance row: on the provenance page for
    real data, on the pipeline-check page for synthetic data (which never leaves that page)."""
    return f"{PROVENANCE_PAGE if a.real else PIPELINE_PAGE}#{a.anchor}"


def value_cell(a: Aggregate | None, metric: str, *, untrained: bool = False,
               digits: int = DIGITS) -> Cell:
    """A reproduced value linked to its provenance (dash when absent or incomplete)."""
    if a is None:
        return Cell(DASH, None, "vb missing", "no result in the store")
    v = (a.untrained if untrained else a.values).get(metric)
    if v is None:
        miss = "; ".join(f"seed {s}: {', '.join(map(str, t))}" for s, t in a.missing.items())
        why = (f"incomplete (missing {miss})" if miss else
               "no untrained reference" if untrained else "no value")
        return Cell(DASH, None, "vb missing", f"{why}; {provenance_text(a)}")
    return Cell(fmt(v, digits), v, "vb", provenance_text(a),
                [(fmt(v, digits), provenance_href(a))])


def delta_cell(vb: float | None, paper: float | None, tol: float, warn_factor: float) -> Cell:
    """vibench - paper, coloured: ok within `tol`, warn within warn_factor*tol, else bad."""
    if vb is None or paper is None:
        return Cell("", None, "delta")
    d = vb - paper
    cls = "ok" if abs(d) <= tol else ("warn" if abs(d) <= warn_factor * tol else "bad")
    mark = {"ok": "✓", "warn": "~", "bad": "✗"}[cls]
    return Cell(f"{d:+.2f} {mark}", d, f"delta {cls}", f"tolerance ±{tol:g} points")


# --------------------------------------------------------------------------------------------
# Paper tables with reproduced columns (real data only)
# --------------------------------------------------------------------------------------------

def paper_table(t: PaperTable, store: StoreSummary, cfg: ReportConfig) -> DisplayTable:
    """Table `t` re-rendered: the paper's cells exactly, plus vibench and Δ per protocol column
    where a row names a vibench method that has a result on real data (results on synthetic
    data are never compared with the papers)."""
    mapped = [cfg.vibench_methods.get(r.method) for r in t.rows]
    found = {(m, c.protocol, r.variant, bool(r.rerank)): store.lookup(m, c.protocol, r.variant,
                                                                      bool(r.rerank))
             for r, m in zip(t.rows, mapped) if m for c in t.columns if c.protocol}
    repro = any(a is not None for a in found.values())
    header = list(t.label_columns)
    for c in t.columns:
        header.append(c.label)
        if repro and c.protocol:
            header += [f"{c.label} vibench", f"{c.label} Δ"]
    rows = []
    for r, vb_method in zip(t.rows, mapped):
        row = [Cell(x) for x in r.labels]
        for c, text in zip(t.columns, r.cells):
            pv = parse_cell(text)
            mark = r.marks.get(c.label)
            row.append(Cell(text, pv, "num" + (f" {mark}" if mark else "")))
            if repro and c.protocol:
                if vb_method is None:
                    row += [Cell(""), Cell("")]
                    continue
                vc = value_cell(found[(vb_method, c.protocol, r.variant, bool(r.rerank))],
                                c.metric, digits=2)
                row += [vc, delta_cell(vc.value, pv, cfg.tol(c.metric), cfg.warn_factor)]
        rows.append(row)
    notes = [n for n in (t.protocol_text and f"Protocol: {t.protocol_text}",
                         t.notes and f"Notes: {t.notes}") if n]
    if not repro:
        notes.append("No row of this table has a vibench result on real data yet; only the "
                     "reported numbers are shown.")
    notes += [f"{' | '.join(r.labels)}: {r.note}" for r in t.rows if r.note]
    return DisplayTable(f"table-{t.id}", f"{t.id} — {t.caption}", header, rows,
                        caption=f"{t.paper}, {t.kind}; dataset: {t.dataset or 'n/a'}",
                        notes=notes, frozen=1)


# --------------------------------------------------------------------------------------------
# Conflicts, claims, provenance
# --------------------------------------------------------------------------------------------

def conflicts_table(reg: Registry, cfg: ReportConfig) -> DisplayTable:
    """Every group of reported numbers that disagree (same method/protocol/metric/flags)."""
    df = find_conflicts(reg.records())
    header = ["Method", "Protocol", "Variant", "Metric", "RR", "Table", "Row", "Column",
              "Reported", "Flags"]
    rows = []
    for r in df.to_dict("records"):
        rows.append([Cell(r["method"]),
                     Cell(cfg.short_name(r["protocol"]), None, "", r["protocol"]),
                     Cell(r["variant"] or ""), Cell(METRIC_SHORT.get(r["metric"], r["metric"])),
                     Cell(str(r["rerank"]) if r["rerank"] else ""),
                     Cell(r["table"], None, "", "", [(r["table"], f"paper-tables.html#table-"
                                                                  f"{r['table']}")]),
                     Cell(r["row_label"]), Cell(r["column"]),
                     Cell(r["text"], r["value"], "num"),
                     Cell(flags_text(False, r["reproduced"], r["copied"]))])
    n = df.groupby(["method", "protocol", "variant", "metric", "rerank"], dropna=False).ngroups \
        if len(df) else 0
    return DisplayTable("conflicts", "Conflicting reported numbers", header, rows,
                        caption=f"{n} (method, protocol, metric) groups where the papers' numbers "
                                "differ; re-ranked numbers are compared only with re-ranked ones. "
                                "The leaderboards mark these cells with ⚠.")


def provenance_table(aggs: list[Aggregate], table_id: str = "provenance") -> DisplayTable:
    """One row per reproduced result (real or synthetic data): config name and full hash, backbone
    initialisation, data source, commits, package versions, hardware, seeds, trials and cells."""
    header = ["Id", "Method", "Variant", "Protocol", "Config", "Config hash", "Init", "Data source",
              "Commit", "Packages", "Hardware", "Seeds", "Trials/splits expected", "Missing",
              "Cells"]
    rows, ids = [], []
    for a in aggs:
        miss = "; ".join(f"seed {s}: {', '.join(map(str, t))}" for s, t in a.missing.items())
        hashes = sorted({c.config_hash for c in a.sources})
        sources = sorted({c.data_source for c in a.sources})
        pkgs = sorted({f"{k} {v}" for c in a.sources
                       for k, v in ((c.spec.get("provenance") or {}).get("packages") or {}).items()
                       if v})
        rows.append([Cell(a.anchor), Cell(a.method, None, "vbm"), Cell(a.variant or ""),
                     Cell(a.protocol), Cell(a.config.split(" ")[0]), Cell(", ".join(hashes)),
                     Cell(init_text(a)), Cell(", ".join(sources)), Cell(", ".join(a.commits)), Cell("; ".join(pkgs)),
                     Cell(", ".join(a.hardware)), Cell(", ".join(map(str, a.seeds))),
                     Cell(",".join(map(str, a.expected))), Cell(miss or ""),
                     Cell(str(len(a.cells)), float(len(a.cells)), "num")])
        ids.append(a.anchor)
    return DisplayTable(table_id, "Provenance of reproduced numbers", header, rows,
                        caption="Every reproduced number links to its row here (the row is "
                                "highlighted).", row_ids=ids, frozen=1)


def claims_table(reg: Registry) -> DisplayTable:
    """The papers' numeric claims outside tables (context for the plots)."""
    rows = [[Cell(c["paper"]), Cell(c["claim"]), Cell(c["protocol"])] for c in reg.claims]
    return DisplayTable("claims", "Numeric claims outside tables", ["Paper", "Claim", "Protocol"],
                        rows)
