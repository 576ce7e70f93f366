"""``vibench report``: read the registry and the result store, write every output.

Outputs under ``out/``::

    index.html            leaderboards per protocol group, models, conflicts, provenance, plots,
                          retrieval grids
    paper-tables.html     every paper table: reported | vibench | Δ (coloured by tolerance)
    report.md             the leaderboards, models, provenance and conflicts in Markdown
    paper-tables.md       the paper tables in Markdown
    data/*.csv, data/*.json   every leaderboard, the models table, the conflicts, the paper
                          tables, and the registry records in long form
    plots/*.png, grids/*.png
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vibench.io import write_text_atomic
from vibench.report import grids, plots
from vibench.report.html import Figure, render_page
from vibench.report.markdown import render_document
from vibench.report.registry import Registry, ReportConfig, load_registry, load_report_config
from vibench.report.store import StoreSummary, load_store, model_stats
from vibench.report.tables import (DisplayTable, claims_table, conflicts_table, leaderboard,
                                   models_table, paper_table, provenance_table)

INTRO = ("Reported numbers are the papers' own text (results/reported/, transcribed from "
         "paper_tables.md). vibench numbers are means over the protocol's gallery trials "
         "(SYSU-MM01, LLCM) or over the ten RegDB split cells; '—' marks a result with any "
         "trial or split missing — never a partial average. Every vibench row names its config "
         "(name and resolved-config hash) and data source; rows that differ in either are never "
         "merged. '(syn)' marks numbers computed on synthetic data.")


@dataclass
class ReportOutputs:
    """What was written (paths relative to the output folder) and the notes produced."""

    out: Path
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _write(out: ReportOutputs, rel: str, text: str) -> None:
    write_text_atomic(out.out / rel, text)
    out.files.append(rel)


def _export(out: ReportOutputs, t: DisplayTable, stem: str, *, numeric: bool = True) -> None:
    df = t.to_frame(numeric)
    _write(out, f"data/{stem}.csv", df.to_csv(index=False))
    _write(out, f"data/{stem}.json", json.dumps(
        {"id": t.id, "title": t.title, "columns": t.header,
         "rows": json.loads(df.to_json(orient="records", force_ascii=False))},
        indent=1, ensure_ascii=False) + "\n")


def _points(reg: Registry, store: StoreSummary, cfg: ReportConfig
            ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Points for accuracy-vs-parameters and accuracy-vs-latency (reported and vibench)."""
    recs = reg.records()
    params_pts, lat_pts = [], []
    # reported: a table with a params column gives (params, rank-1) per row
    for tid in sorted(set(recs.loc[recs["metric"] == "params", "table"])):
        t = recs[recs["table"] == tid]
        for _, g in t.groupby("row"):
            p = g[g["metric"] == "params"]["value"].dropna()
            r1 = g[(g["metric"] == "rank1") & g["protocol"].notna()].dropna(subset=["value"])
            if len(p) and len(r1):
                params_pts.append({"method": g["method"].iloc[0], "source": f"paper {tid}",
                                   "protocol": r1["protocol"].iloc[0],
                                   "params_m": float(p.iloc[0]),
                                   "rank1": float(r1["value"].iloc[0])})
    main = recs[(recs["role"] == "ours") & recs["variant"].isna()
                & ~recs["rerank"].astype(bool) & (recs["metric"] == "rank1")]
    for r in cfg.reported_latency:
        m = main[(main["method"] == r["method"]) & (main["protocol"] == "sysu-all-single")]
        if not len(m):
            m = recs[(recs["method"] == r["method"]) & (recs["protocol"] == "sysu-all-single")
                     & (recs["metric"] == "rank1") & ~recs["rerank"].astype(bool)
                     & recs["variant"].isna()]
        if len(m.dropna(subset=["value"])):
            lat_pts.append({"method": r["method"], "source": "paper text",
                            "device": str(r["device"]), "protocol": "sysu-all-single",
                            "ms_per_query": float(r["ms_per_query"]),
                            "rank1": float(m.dropna(subset=["value"])["value"].iloc[0])})
    for s in model_stats(store):
        for a in store.aggregates:
            if ((a.method, a.config, a.data) != (s["method"], s["config"], s["data"])
                    or a.variant is not None or a.rerank):
                continue
            r1 = a.values.get("rank1")
            if r1 is None:
                continue
            src = f"vibench ({a.config}; {a.data})"
            pm = s["params_effective_m"] or s["params_registered_m"]
            if pm is not None:
                params_pts.append({"method": a.method, "source": src, "protocol": a.protocol,
                                   "params_m": pm, "rank1": r1})
            if s["ms_per_query"] is not None:
                lat_pts.append({"method": a.method, "source": src, "device": s["device"],
                                "protocol": a.protocol, "ms_per_query": s["ms_per_query"],
                                "rank1": r1})
    return params_pts, lat_pts


def build_report(results: str | Path | None, out_dir: str | Path,
                 registry_dir: str | Path | None = None, config: str | Path | None = None,
                 *, plots_enabled: bool = True) -> ReportOutputs:
    """Render every page and export (see module docstring)."""
    reg = load_registry(registry_dir)
    cfg = load_report_config(config if config is not None else (
        Path(registry_dir) / "report.yaml" if registry_dir is not None else None))
    store = load_store(results)
    out = ReportOutputs(Path(out_dir))

    boards = [leaderboard(g, reg, store, cfg) for g in cfg.groups if g != "imbalance"]
    if "imbalance" in cfg.groups:
        boards.append(leaderboard("imbalance", reg, store, cfg))
    models = models_table(reg, store, cfg)
    conflicts = conflicts_table(reg)
    prov = provenance_table(store)
    claims = claims_table(reg)
    ptables = [paper_table(t, store, cfg) for t in reg.tables.values()]

    for b in boards:
        _export(out, b, f"leaderboard-{b.id[3:]}")
    _export(out, models, "models")
    _export(out, conflicts, "conflicts")
    _export(out, prov, "provenance")
    for t in ptables:
        _export(out, t, f"paper-{t.id[6:]}", numeric=False)  # the papers' exact text
    recs = reg.records()
    _write(out, "data/reported.csv", recs.to_csv(index=False))

    figures: list[Figure] = []
    grid_figs: list[Figure] = []
    if plots_enabled:
        pdir, gdir = out.out / "plots", out.out / "grids"
        params_pts, lat_pts = _points(reg, store, cfg)
        made = (plots.accuracy_vs_params(params_pts, pdir)
                + plots.accuracy_vs_latency(lat_pts, pdir)
                + plots.cmc_curves(store, recs, cfg.vibench_methods, pdir)
                + plots.imbalance_plot(recs, store, cfg, pdir))
        figures = [Figure(f"plots/{p.name}", alt) for p, alt in made]
        rcfg = cfg.retrieval
        gfigs, gnotes = grids.build_grids(store, gdir, list(rcfg.get("protocols") or []),
                                          int(rcfg.get("queries", 4)), int(rcfg.get("top_k", 10)))
        grid_figs = [Figure(f"grids/{p.name}", alt) for p, alt in gfigs]
        out.notes += gnotes
        out.files += [f.path for f in figures + grid_figs]
    if not store.aggregates:
        out.notes.append("no results in the store yet: only reported numbers are shown")
    out.notes += store.store_notes + store.unverified_notes  # damaged (left out), stray, unverified

    synthetic = any(a.synthetic for a in store.aggregates)
    nav = [("index.html", "Leaderboards"), ("paper-tables.html", "Paper tables")]
    index_sections = [("Leaderboards", boards), ("Parameters, FLOPs, latency", [models]),
                      ("Provenance", [prov]), ("Conflicts between papers", [conflicts]),
                      ("Claims outside tables", [claims])]
    _write(out, "index.html", render_page(
        "vibench leaderboards", intro=[INTRO], sections=index_sections, nav=nav,
        figures=figures, grids=grid_figs, grid_notes=[n for n in out.notes if "skipped" in n],
        synthetic=synthetic))
    by_paper: dict[str, list[DisplayTable]] = {}
    for t, d in zip(reg.tables.values(), ptables):
        by_paper.setdefault(t.paper, []).append(d)
    tol = f"Δ = vibench − paper in points; ✓ within ±{cfg.default_tolerance:g}, ~ within " \
          f"±{cfg.default_tolerance * cfg.warn_factor:g}, ✗ beyond (results/reported/report.yaml)."
    _write(out, "paper-tables.html", render_page(
        "The papers' tables, reported vs reproduced", intro=[INTRO, tol],
        sections=[(f"{p}: {reg.titles.get(p, p)}", ts) for p, ts in by_paper.items()],
        nav=nav, synthetic=synthetic))
    _write(out, "report.md", render_document(
        "vibench leaderboards", [INTRO], index_sections,
        images=[(f.alt, f.path) for f in figures + grid_figs]))
    _write(out, "paper-tables.md", render_document(
        "The papers' tables, reported vs reproduced", [INTRO, tol],
        [(f"{p}: {reg.titles.get(p, p)}", ts) for p, ts in by_paper.items()]))
    return out
