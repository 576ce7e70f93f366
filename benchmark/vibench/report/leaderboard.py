"""Leaderboards (one per protocol group) and the reproduction status matrix.

A leaderboard has one row per method and setting (method, training variant, re-ranking):
the papers that report the same setting are merged into that row with every source table
linked. Where they disagree (a conflict group of :func:`vibench.report.reported.find_conflicts`)
the cell shows the number of the method's own paper (else a table whose authors ran it, else the
first copy) and is flagged ⚠ with every reported value in its tooltip. vibench rows hold results
on real data only, one row per (method, variant, re-ranking, config, data source); results on
synthetic data are on the pipeline-check page and never ranked. The rank column ranks every row
by the first metric column (competition ranking: ties share a rank).
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from vibench.report.reported import Registry, ReportConfig, find_conflicts
from vibench.report.aggregate import Aggregate, StoreSummary
from vibench.report.cards import CARDS_PAGE
from vibench.report.tables import (DASH, METRIC_ORDER, METRIC_SHORT, Cell, DisplayTable,
                                   flags_text, fmt, value_cell)

GROUP_TITLES = {
    "sysu-all-single": "SYSU-MM01 all-search, single-shot",
    "sysu-all-multi": "SYSU-MM01 all-search, multi-shot",
    "sysu-indoor-single": "SYSU-MM01 indoor-search, single-shot",
    "sysu-indoor-multi": "SYSU-MM01 indoor-search, multi-shot",
    "regdb": "RegDB (mean over the 10 splits)", "llcm": "LLCM",
    "mixed": "Mixed-modal (MixER settings)", "unimodal": "Uni-modal (IR→IR, RGB→RGB)",
    "imbalance": "Training-set imbalance (BIT Table 7)",
}
ROLE_ORDER = {"ours": 0, "reproduced": 1, "copied": 2}
TABLE_PAGE = "paper-tables.html"


def _columns(records: pd.DataFrame, aggs: list[Aggregate], protocols: list[str]
             ) -> list[tuple[str, str]]:
    present = set(zip(records["protocol"], records["metric"]))
    for a in aggs:
        present |= {(a.protocol, m) for m in METRIC_ORDER if a.values.get(m) is not None}
        if not a.complete:
            present |= {(a.protocol, "rank1"), (a.protocol, "mAP")}
    return [(p, m) for p in protocols for m in METRIC_ORDER if (p, m) in present]


def _conflict_keys(records: pd.DataFrame) -> set[tuple[str, str, str, str, str]]:
    df = find_conflicts(records)
    return {(r["method"], r["protocol"], r["variant"] or "", r["metric"], str(r["rerank"]))
            for r in df.to_dict("records")}


def _source_links(g: pd.DataFrame) -> list[tuple[str, str]]:
    out = []
    for table, role in (g.sort_values("table_order")[["table", "role"]].drop_duplicates("table")
                        .itertuples(index=False)):
        mark = {"reproduced": "†", "copied": " (copied)"}.get(role, "")
        out.append((f"{table}{mark}", f"{TABLE_PAGE}#table-{table}"))
    return out


def _reported_rows(rec: pd.DataFrame, columns: list[tuple[str, str]], imbalance: bool,
                   conflicts: set[tuple[str, str, str, str, str]]) -> list[list[Cell]]:
    rows = []
    for (method, variant, rr), g in rec.groupby(["method", "variant_key", "rerank_key"],
                                                sort=True):
        rerank = g["rerank"].iloc[0]
        row = [Cell(""), Cell(method + (" (RR)" if rerank else ""), None, "m")]
        if imbalance:
            row.append(Cell(variant))
        for p, metric in columns:
            cands = g[(g["protocol"] == p) & (g["metric"] == metric)]
            if not len(cands):
                row.append(Cell(DASH))
                continue
            cands = cands.sort_values(["role_order", "table_order"])
            best = cands.iloc[0]
            shown = "; ".join(f"{t}: {x}" for t, x in zip(cands["table"], cands["text"]))
            key = (method, p, "" if variant == "original" else variant, metric, rr)
            if key in conflicts:
                row.append(Cell(f"{fmt(best['value'])} ⚠", float(best["value"]), "num conflict",
                                f"papers disagree: {shown} (see Conflicts on the paper-tables "
                                f"page)"))
            else:
                row.append(Cell(fmt(best["value"]), float(best["value"]), "num", shown))
        row += [Cell(flags_text(rerank)), Cell("", None, "src", "", _source_links(g)),
                Cell("as published"), Cell("paper")]
        rows.append(row)
    return rows


def leaderboard(group: str, reg: Registry, store: StoreSummary, cfg: ReportConfig
                ) -> DisplayTable:
    """The ranked leaderboard of one protocol group (module docstring)."""
    records = reg.records()
    imbalance = group == "imbalance"
    protocols = cfg.imbalance_protocols if imbalance else cfg.groups[group]
    variants = set(cfg.groups.get("imbalance", []))
    rec = records[records["role"].isin(tuple(ROLE_ORDER))
                  & records["protocol"].isin(protocols) & records["value"].notna()]
    aggs = [a for a in store.real if a.protocol in protocols]
    if imbalance:
        rec = rec[rec["table"].isin(set(rec.loc[rec["variant"].isin(variants), "table"]))]
        aggs = [a for a in aggs if a.variant in variants or a.variant is None]
    else:
        rec = rec[rec["variant"].isna()]
        aggs = [a for a in aggs if a.variant is None]
    order = {t: i for i, t in enumerate(reg.tables)}
    rec = rec.assign(variant_key=rec["variant"].fillna("original"),
                     rerank_key=rec["rerank"].astype(str),
                     role_order=rec["role"].map(ROLE_ORDER),
                     table_order=rec["table"].map(order))
    columns = _columns(rec, aggs, protocols)
    lead = ["Rank", "Method"] + (["Variant"] if imbalance else [])
    tail = ["Setting", "Source", "Config", "Data"]
    rows = _reported_rows(rec, columns, imbalance, _conflict_keys(records))
    inv = {v: k for k, v in cfg.vibench_methods.items()}
    by_key: dict[tuple[str, str | None, bool, str, str], dict[str, Aggregate]] = {}
    for a in aggs:
        by_key.setdefault((a.method, a.variant, a.rerank, a.config, a.data), {})[a.protocol] = a
    for (method, variant, rerank, config, data), per_proto in sorted(by_key.items(),
                                                                     key=lambda kv: str(kv[0])):
        row = [Cell(""), Cell(f"{inv.get(method, method)} (vibench{', RR' if rerank else ''})",
                              None, "m vbm")]
        if imbalance:
            row.append(Cell(variant or "original"))
        row += [value_cell(per_proto.get(p), metric) for p, metric in columns]
        row += [Cell("RR" if rerank else ""), Cell("vibench", None, "src"), Cell(config),
                Cell(data)]
        rows.append(row)
    _rank(rows, len(lead) if columns else None)
    header = lead + [f"{p} {METRIC_SHORT[m]}" for p, m in columns] + tail
    display = ["#"] + lead[1:] + [METRIC_SHORT[m] for _, m in columns] + tail
    titles = [""] * len(lead) + [f"{p} · {m}" for p, m in columns] + [""] * len(tail)
    groups = [("", len(lead), "")]
    for p in protocols:
        span = sum(1 for q, _ in columns if q == p)
        if span:
            groups.append((cfg.short_name(p), span, f"{cfg.long_name(p)} (protocol id {p})"))
    groups.append(("", len(tail), ""))
    first = f"{cfg.short_name(columns[0][0])} {METRIC_SHORT[columns[0][1]]}" if columns else ""
    return DisplayTable(
        f"lb-{group}", GROUP_TITLES.get(group, group), header, rows,
        caption=f"Ranked by {first}. ⚠ = papers disagree (hover). Source: † = run by that "
                "paper's authors; copied = from the cited paper. vibench rows: real data only, "
                "each number links to its provenance.",
        display=display, header_titles=titles, groups=groups, frozen=2)


def _rank(rows: list[list[Cell]], col: int | None) -> None:
    """Sort `rows` by column `col` (descending, missing last) and fill the rank cell."""
    def key(r: list[Cell]) -> tuple[Any, ...]:
        v = r[col].value if col is not None else None
        return (v is None, -(v or 0.0), r[1].text)
    rows.sort(key=key)
    for r in rows:
        v = r[col].value if col is not None else None
        if v is None:
            r[0] = Cell(DASH, None, "rank")
        else:
            n = 1 + sum(1 for o in rows if o[col].value is not None and o[col].value > v)
            r[0] = Cell(str(n), float(n), "rank")


STATUS_TEXT = {"real": "reproduced", "synthetic": "pipeline", "incomplete": "incomplete",
               "none": "not run"}
STATUS_TIP = {"real": "reproduced on real data", "synthetic": "pipeline-checked on synthetic "
              "data only", "incomplete": "run incomplete", "none": "not run"}


def status_matrix(reg: Registry, store: StoreSummary, cfg: ReportConfig) -> DisplayTable:
    """Method x protocol: reported by a paper, reproduced on real data, pipeline-checked on
    synthetic data, incomplete, or not run."""
    records = reg.records()
    rep = records[records["role"].isin(tuple(ROLE_ORDER)) & records["value"].notna()
                  & records["variant"].isna() & records["protocol"].notna()]
    reported = set(zip(rep["method"], rep["protocol"]))
    families = [(v["title"], [p for g in v["groups"] if g != "imbalance"
                              for p in cfg.groups[g]]) for v in cfg.site_pages().values()]
    families = [(title, ps) for title, ps in families if ps]
    protocols = [p for _, ps in families for p in ps]
    rows = []
    for paper_name, method in cfg.vibench_methods.items():
        row = [Cell(paper_name, None, "m", f"vibench method {method}: its fidelity card",
                    [(paper_name, f"{CARDS_PAGE}#card-{method}")])]
        for p in protocols:
            aggs = [a for a in store.aggregates if (a.method, a.protocol, a.variant, a.rerank)
                    == (method, p, None, False)]
            run = ("real" if any(a.real and a.complete for a in aggs) else
                   "synthetic" if any(a.complete for a in aggs) else
                   "incomplete" if aggs else "none")
            has = (paper_name, p) in reported
            text = " · ".join(x for x in ("paper" if has else "",
                                          "" if run == "none" else STATUS_TEXT[run]) if x)
            tip = (f"{paper_name} on {cfg.long_name(p)} ({p}): "
                   f"{'reported by a paper' if has else 'no paper number'}; "
                   f"{STATUS_TIP[run]}")
            row.append(Cell(text or DASH, None, f"st st-{run}", tip))
        rows.append(row)
    header = ["Method"] + protocols
    display = ["Method"] + [cfg.short_name(p) for p in protocols]
    titles = [""] + [f"{cfg.long_name(p)} (protocol id {p})" for p in protocols]
    grp = [("", 1, "")] + [(title, len(ps), "") for title, ps in families]
    return DisplayTable(
        "status", "Reproduction status", header, rows,
        caption="paper = a paper reports this method on this protocol; reproduced = vibench "
                "result on real data (complete); pipeline = only a run on synthetic data "
                "(checks the pipeline, not the method); not run = no result.",
        display=display, header_titles=titles, groups=grp, frozen=1)
