"""The report's tables, built with pandas from the registry records and the store aggregates,
then turned into renderer-neutral ``DisplayTable`` objects (Markdown and HTML render the same
objects; CSV/JSON exports come from ``DisplayTable.to_frame``).

Display conventions: reported cells show the paper's text exactly; vibench cells show two
decimals, "—" when any trial/split is missing, and " (syn)" when computed on synthetic data.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from vibench.report.registry import (PaperTable, Registry, ReportConfig, find_conflicts,
                                     parse_cell)
from vibench.report.store import Aggregate, StoreSummary, model_stats

DASH = "—"
METRIC_ORDER = ("rank1", "rank5", "rank10", "rank20", "mAP", "mINP")
METRIC_SHORT = {"rank1": "R1", "rank5": "R5", "rank10": "R10", "rank20": "R20", "mAP": "mAP",
                "mINP": "mINP"}
GROUP_TITLES = {
    "sysu-all-single": "SYSU-MM01 all-search, single-shot",
    "sysu-all-multi": "SYSU-MM01 all-search, multi-shot",
    "sysu-indoor-single": "SYSU-MM01 indoor-search, single-shot",
    "sysu-indoor-multi": "SYSU-MM01 indoor-search, multi-shot",
    "regdb": "RegDB (mean over the 10 splits)", "llcm": "LLCM",
    "mixed": "Mixed-modal (MixER settings)", "unimodal": "Uni-modal (I→I, V→V)",
    "imbalance": "Training-set imbalance (BIT Table 7)",
}


@dataclass
class Cell:
    """One displayed cell: text, the number it sorts by, a CSS class and a tooltip."""

    text: str
    value: float | None = None
    cls: str = ""
    title: str = ""


@dataclass
class DisplayTable:
    """A table as rendered: header, rows of cells, caption and notes."""

    id: str
    title: str
    header: list[str]
    rows: list[list[Cell]]
    caption: str = ""
    notes: list[str] = field(default_factory=list)

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


def fmt(value: float | None, digits: int = 2) -> str:
    """A percentage with `digits` decimals, or the dash for a missing value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    return f"{value:.{digits}f}"


def flags_text(rerank: Any, reproduced: bool, copied: bool) -> str:
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
    """One-line provenance of a reproduced number (tooltip and Markdown note)."""
    trials = ",".join(str(t) for t in a.expected)
    return (f"config: {a.config}; data: {a.data}; commit: {', '.join(a.commits)}; hardware: {', '.join(a.hardware)}; "
            f"seeds: {', '.join(str(s) for s in a.seeds)}; "
            f"{'splits' if a.dataset == 'regdb' else 'trials'}: {trials}")


def vibench_cell(a: Aggregate | None, metric: str) -> Cell:
    """The displayed reproduced value (dash when absent or incomplete)."""
    if a is None:
        return Cell(DASH, None, "vb missing", "no result in the store")
    v = a.values.get(metric)
    if v is None:
        miss = "; ".join(f"seed {s}: {', '.join(map(str, t))}" for s, t in a.missing.items())
        return Cell(DASH, None, "vb missing", f"incomplete (missing {miss or 'values'}); "
                                               + provenance_text(a))
    text = fmt(v) + (" (syn)" if a.synthetic else "")
    return Cell(text, v, "vb syn" if a.synthetic else "vb", provenance_text(a))


def delta_cell(vb: float | None, paper: float | None, tol: float, warn_factor: float) -> Cell:
    """vibench - paper, coloured: ok within `tol`, warn within warn_factor*tol, else bad."""
    if vb is None or paper is None:
        return Cell("", None, "delta")
    d = vb - paper
    cls = "ok" if abs(d) <= tol else ("warn" if abs(d) <= warn_factor * tol else "bad")
    mark = {"ok": "✓", "warn": "~", "bad": "✗"}[cls]
    return Cell(f"{d:+.2f} {mark}", d, f"delta {cls}", f"tolerance ±{tol:g} points")


# --------------------------------------------------------------------------------------------
# Leaderboards
# --------------------------------------------------------------------------------------------

def _lb_columns(records: pd.DataFrame, aggs: list[Aggregate], protocols: list[str]
                ) -> list[tuple[str, str]]:
    present = set(zip(records["protocol"], records["metric"]))
    for a in aggs:
        present |= {(a.protocol, m) for m in METRIC_ORDER if a.values.get(m) is not None}
        if not a.complete:
            present |= {(a.protocol, "rank1"), (a.protocol, "mAP")}
    return [(p, m) for p in protocols for m in METRIC_ORDER if (p, m) in present]


def leaderboard(group: str, reg: Registry, store: StoreSummary, cfg: ReportConfig
                ) -> DisplayTable:
    """Reported rows (one per method x table x flags) and vibench rows for one protocol group."""
    records = reg.records()
    imbalance = group == "imbalance"
    protocols = cfg.imbalance_protocols if imbalance else cfg.groups[group]
    variants = set(cfg.groups.get("imbalance", []))
    rec = records[records["role"].isin(("ours", "copied", "reproduced"))
                  & records["protocol"].isin(protocols) & records["value"].notna()]
    if imbalance:
        with_variant = set(rec.loc[rec["variant"].isin(variants), "table"])
        rec = rec[rec["table"].isin(with_variant)]
        aggs = [a for a in store.aggregates if a.protocol in protocols
                and (a.variant in variants or a.variant is None)]
    else:
        rec = rec[rec["variant"].isna()]
        aggs = [a for a in store.aggregates if a.protocol in protocols and a.variant is None]
    columns = _lb_columns(rec, aggs, protocols)
    multi = len({p for p, _ in columns}) > 1
    header = ["Method", "Source", "Flags", "Config", "Data"] + (["Variant"] if imbalance else [])
    header += [(f"{p} " if multi else "") + METRIC_SHORT[m] for p, m in columns]
    rows: list[list[Cell]] = []
    rec = rec.assign(variant_key=rec["variant"].fillna("original"),
                     rerank_key=rec["rerank"].astype(str))
    keys = ["method", "table", "rerank_key", "variant_key"]
    text = rec.pivot_table(index=keys, columns=["protocol", "metric"], values="text",
                           aggfunc="first")
    vals = rec.pivot_table(index=keys, columns=["protocol", "metric"], values="value",
                           aggfunc="first")
    meta = rec.groupby(keys)[["rerank", "reproduced", "copied"]].first().to_dict("index")
    text_d = text.to_dict("index")
    merged: dict[tuple[str, ...], list[Cell]] = {}
    vals_d = vals.to_dict("index")
    for idx in text.index:
        method, table, _, variant = idx
        m = meta[idx]
        row = [Cell(method), Cell(table, None, "src"),
               Cell(flags_text(m["rerank"], bool(m["reproduced"]), bool(m["copied"]))),
               Cell("paper"), Cell("paper")]
        if imbalance:
            row.append(Cell(variant))
        for p, metric in columns:
            t = text_d[idx].get((p, metric))
            v = vals_d[idx].get((p, metric))
            if t is None or (isinstance(t, float) and math.isnan(t)):
                row.append(Cell(DASH))
            else:
                row.append(Cell(str(t), None if v is None or math.isnan(v) else float(v), "num"))
        same = merged.get(tuple(c.text for j, c in enumerate(row) if j != 1))
        if same is not None:  # identical numbers in several tables: one row, sources joined
            same[1].text += f", {table}"
            continue
        merged[tuple(c.text for j, c in enumerate(row) if j != 1)] = row
        rows.append(row)
    # one row per (method, variant, rerank, config, data): numbers made under another config or
    # on other data are never merged into one row
    by_key: dict[tuple[str, str | None, bool, str, str], dict[str, Aggregate]] = {}
    for a in aggs:
        by_key.setdefault((a.method, a.variant, a.rerank, a.config, a.data), {})[a.protocol] = a
    for (method, variant, rerank, config, data), per_proto in sorted(by_key.items(),
                                                                     key=lambda kv: str(kv[0])):
        syn = any(a.synthetic for a in per_proto.values())
        row = [Cell(method, None, "vbm"), Cell("vibench", None, "src"),
               Cell("RR" if rerank else ""), Cell(config), Cell(data, None, "syn" if syn else "")]
        if imbalance:
            row.append(Cell(variant or "original"))
        for p, metric in columns:
            row.append(vibench_cell(per_proto.get(p), metric))
        rows.append(row)
    first = len(header) - len(columns)
    rows.sort(key=lambda r: (-(r[first].value if r[first].value is not None else -1e9)
                             if columns else 0, r[0].text, r[1].text))
    return DisplayTable(f"lb-{group}", GROUP_TITLES.get(group, group), header, rows,
                        caption="Sortable: click a column header. Source = paper table id or "
                                "vibench. Flags: RR = re-ranking, † = reproduced by that paper's "
                                "authors, copied = copied from the cited paper.")


# --------------------------------------------------------------------------------------------
# Paper tables with reproduced columns
# --------------------------------------------------------------------------------------------

def paper_table(t: PaperTable, store: StoreSummary, cfg: ReportConfig) -> DisplayTable:
    """Table `t` re-rendered: the paper's cells, plus vibench and Δ per protocol column where
    the table has rows that name a vibench method."""
    mapped = [cfg.vibench_methods.get(r.method) for r in t.rows]
    repro = any(m is not None for m in mapped) and any(c.protocol for c in t.columns)
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
                a = store.lookup(vb_method, c.protocol, r.variant, bool(r.rerank))
                vc = vibench_cell(a, c.metric)
                row += [vc, delta_cell(vc.value, pv, cfg.tol(c.metric), cfg.warn_factor)]
        rows.append(row)
    notes = [n for n in (t.protocol_text and f"Protocol: {t.protocol_text}",
                         t.notes and f"Notes: {t.notes}") if n]
    if not repro:
        notes.append("No row of this table maps to a vibench method with a vibench protocol; "
                     "only the reported numbers are shown.")
    row_notes = [f"{' | '.join(r.labels)}: {r.note}" for r in t.rows if r.note]
    notes += row_notes
    return DisplayTable(f"table-{t.id}", f"{t.id} — {t.caption}", header, rows,
                        caption=f"{t.paper}, {t.kind}; dataset: {t.dataset or 'n/a'}", notes=notes)


# --------------------------------------------------------------------------------------------
# Models, conflicts, provenance
# --------------------------------------------------------------------------------------------

def models_table(reg: Registry, store: StoreSummary, cfg: ReportConfig) -> DisplayTable:
    """Parameters, FLOPs and latency per method and device; latency relative to the fastest
    method on the same device only."""
    rows_df = pd.DataFrame(model_stats(store))
    entries: list[dict[str, Any]] = []
    if not rows_df.empty:
        for r in rows_df.to_dict("records"):
            entries.append({**r, "source": f"vibench (config {r['config']}; data {r['data']})"})
    recs = reg.records()
    params = recs[(recs["metric"] == "params") & recs["value"].notna()]
    for r in params.to_dict("records"):
        entries.append({"method": r["method"], "device": "n/a", "source": r["table"],
                        "params_registered_m": r["value"], "params_effective_m": None,
                        "gflops": None, "ms_per_query": None, "params_text": r["text"]})
    for r in cfg.reported_latency:
        entries.append({"method": str(r["method"]), "device": str(r["device"]),
                        "source": str(r.get("source", "paper text")), "params_registered_m": None,
                        "params_effective_m": None, "gflops": None,
                        "ms_per_query": float(r["ms_per_query"])})
    df = pd.DataFrame(entries, columns=["method", "device", "source", "params_registered_m",
                                        "params_effective_m", "gflops", "ms_per_query"])
    fastest = df.groupby("device")["ms_per_query"].min()
    header = ["Method", "Source", "Device", "Params registered (M)", "Params effective (M)",
              "GFLOPs", "Latency (ms/query)", "× fastest on device"]
    rows = []
    for e in entries:
        ms = e["ms_per_query"]
        best = fastest.get(e["device"])
        rel = Cell(fmt(ms / best) + "×", ms / best, "num") if ms and best and not math.isnan(
            best) else Cell(DASH)
        preg = e.get("params_text") or fmt(e["params_registered_m"])
        rows.append([Cell(e["method"], None, "vbm" if e["source"].startswith("vibench") else ""),
                     Cell(e["source"]), Cell(e["device"]),
                     Cell(preg, e["params_registered_m"], "num"),
                     Cell(fmt(e["params_effective_m"]), e["params_effective_m"], "num"),
                     Cell(fmt(e["gflops"]), e["gflops"], "num"),
                     Cell(fmt(ms), ms, "num"), rel])
    rows.sort(key=lambda r: (r[2].text, r[0].text, r[1].text))
    return DisplayTable("models", "Parameters, FLOPs and latency", header, rows,
                        caption="Latencies are compared only within one device (last column).",
                        notes=["Reported parameter counts are the papers' (TMPA counts registered "
                               "parameters, see methods.md §0.2); vibench reports both."])


def conflicts_table(reg: Registry) -> DisplayTable:
    """Every group of reported numbers that disagree (same method/protocol/metric/flags)."""
    df = find_conflicts(reg.records())
    header = ["Method", "Protocol", "Variant", "Metric", "RR", "Table", "Row", "Column",
              "Reported", "Flags"]
    rows = []
    for r in df.to_dict("records"):
        rows.append([Cell(r["method"]), Cell(r["protocol"]), Cell(r["variant"] or ""),
                     Cell(r["metric"]), Cell(str(r["rerank"]) if r["rerank"] else ""),
                     Cell(r["table"]), Cell(r["row_label"]), Cell(r["column"]),
                     Cell(r["text"], r["value"], "num"),
                     Cell(flags_text(False, r["reproduced"], r["copied"]))])
    n = df.groupby(["method", "protocol", "variant", "metric", "rerank"], dropna=False).ngroups \
        if len(df) else 0
    return DisplayTable("conflicts", "Conflicting reported numbers", header, rows,
                        caption=f"{n} (method, protocol, metric) groups where the papers' numbers "
                                "differ; re-ranked numbers are compared only with re-ranked ones.")


def provenance_table(store: StoreSummary) -> DisplayTable:
    """One row per reproduced (method, variant, protocol, config, data): commit, hardware, seeds,
    trials."""
    header = ["Method", "Variant", "Protocol", "Config", "Data", "Commit", "Hardware", "Seeds",
              "Trials/splits expected", "Missing", "Cells"]
    rows = []
    for a in store.aggregates:
        miss = "; ".join(f"seed {s}: {', '.join(map(str, t))}" for s, t in a.missing.items())
        rows.append([Cell(a.method, None, "vbm"), Cell(a.variant or ""), Cell(a.protocol),
                     Cell(a.config), Cell(a.data, None, "syn" if a.synthetic else ""),
                     Cell(", ".join(a.commits)), Cell(", ".join(a.hardware)),
                     Cell(", ".join(map(str, a.seeds))),
                     Cell(",".join(map(str, a.expected))), Cell(miss or ""),
                     Cell(str(len(a.cells)), float(len(a.cells)), "num")])
    notes = [f"Incomplete cell (no DONE, not used): {p.name}" for p in store.incomplete]
    notes += store.store_notes
    return DisplayTable("provenance", "Provenance of reproduced numbers", header, rows,
                        caption="Every vibench number above comes from these cells.", notes=notes)


def claims_table(reg: Registry) -> DisplayTable:
    """The papers' numeric claims outside tables (context for the plots)."""
    rows = [[Cell(c["paper"]), Cell(c["claim"]), Cell(c["protocol"])] for c in reg.claims]
    return DisplayTable("claims", "Numeric claims outside tables", ["Paper", "Claim", "Protocol"],
                        rows)
