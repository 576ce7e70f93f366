"""``vibench report``: read the registry and the result store, write the tables, and (with
``site=True``) the static site.

Always written (the repository keeps these in ``reports/``)::

    report.md            status matrix, leaderboards, costs, provenance (real data only)
    paper-tables.md      the papers' tables (reproduced columns from real data only)
    pipeline-check.md    results on synthetic data: trained vs untrained
    methods.md           the methods' fidelity cards (paper vs implementation, item by item)
    data/*.csv, *.json   every table, and the registry in long form (data/reported.csv)

With ``site=True`` also (``vibench report --site DIR``; binary, never committed)::

    index.html           overview: headline leaderboard, reproduction status, pages
    methods.html         the methods' fidelity cards (also methods.md)
    <page>.html          one page per protocol family (report.yaml ``pages``)
    costs.html, plots.html, paper-tables.html, pipeline-check.html, provenance.html
    plots/*.png, grids/*.jpg
    rankings-archive.tar.gz   every published cell's spec, metrics and raw rankings
                              (``vibench score`` re-scores them)

Numbers computed on synthetic data appear only in ``pipeline-check.*`` (and the archive).
"""
from __future__ import annotations

import datetime as dt
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vibench.io import write_bytes_atomic, write_text_atomic
from vibench.provenance import git_state, package_versions
from vibench.report import grids, plots
from vibench.report.aggregate import StoreSummary, load_store, model_stats
from vibench.report.cards import CARDS_PAGE, INTRO as CARDS_INTRO, CardSection, card_sections
from vibench.report.costs import (ParamCounts, compute_table, latency_table, load_measured_costs,
                                  paper_config_counts, params_table)
from vibench.report.html import Figure, Section, render_page
from vibench.report.leaderboard import GROUP_TITLES, leaderboard, status_matrix
from vibench.report.markdown import render_document
from vibench.report.pipeline_check import DOES_NOT_SHOW, SHOWS, pipeline_costs_table, pipeline_table
from vibench.report.selection import selection_table
from vibench.report.reported import Registry, ReportConfig, load_registry, load_report_config
from vibench.report.tables import DisplayTable, claims_table, conflicts_table, paper_table, provenance_table

ARCHIVE = "rankings-archive.tar.gz"
ARCHIVE_FILES = ("spec.json", "DONE", "model.json")
INTRO = ("Reported numbers are the papers' own (results/reported/); reproduced numbers are "
         "vibench runs on the real datasets, means over the protocol's gallery trials (SYSU-MM01, "
         "LLCM) or the ten RegDB splits; '—' = not reported, or a trial or split missing.")


@dataclass
class ReportOutputs:
    """What was written (paths relative to the output folder) and the notes produced."""

    out: Path
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RenderInfo:
    """When and by which code the pages were rendered (page footers, provenance page)."""

    date: str
    commit: str
    packages: str

    @classmethod
    def now(cls) -> "RenderInfo":
        g = git_state()
        commit = (g.get("commit") or "unknown")[:12] + ("+dirty" if g.get("dirty") else "")
        pk = package_versions()
        return cls(dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), commit,
                   ", ".join(f"{k} {v}" for k, v in pk.items() if v))

    def lines(self) -> list[str]:
        return [f"Rendered {self.date} by vibench at commit {self.commit}.",
                f"Packages: {self.packages}.",
                "Static page: nothing is loaded from the network."]


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


def _points(reg: Registry, store: StoreSummary, cfg: ReportConfig, counts: ParamCounts
            ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Points for accuracy-vs-parameters and accuracy-vs-latency: the papers' numbers and
    vibench results on real data only."""
    recs = reg.records()
    params_pts, lat_pts = [], []
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
    main = recs[recs["role"].isin(("ours", "copied", "reproduced")) & recs["variant"].isna()
                & ~recs["rerank"].astype(bool) & (recs["metric"] == "rank1")
                & (recs["protocol"] == "sysu-all-single")].dropna(subset=["value"])
    for r in cfg.reported_latency:
        m = main[main["method"] == r["method"]].sort_values(
            "role", key=lambda s: s.map({"ours": 0, "reproduced": 1, "copied": 2}))
        if len(m):
            lat_pts.append({"method": r["method"], "source": "paper text",
                            "device": str(r["device"]), "config": "paper",
                            "precision": str(r.get("precision", "not stated")),
                            "protocol": "sysu-all-single", "ms_per_query": float(r["ms_per_query"]),
                            "rank1": float(m["value"].iloc[0])})
    real_stats = [s for s in model_stats(store) if not s["synthetic"]]
    for s in real_stats:
        for a in store.real:
            if ((a.method, a.config, a.data) != (s["method"], s["config"], s["data"])
                    or a.variant is not None or a.rerank or a.values.get("rank1") is None):
                continue
            src = f"vibench ({a.config}; {a.data})"
            pm = s["params_registered_m"]
            if pm is not None:
                params_pts.append({"method": a.method, "source": src, "protocol": a.protocol,
                                   "params_m": pm, "rank1": a.values["rank1"]})
            if s["ms_per_query"] is not None:
                lat_pts.append({"method": a.method, "source": src, "device": s["device"],
                                "config": a.config, "precision": s.get("precision") or "n/a",
                                "protocol": a.protocol, "ms_per_query": s["ms_per_query"],
                                "rank1": a.values["rank1"]})
    return params_pts, lat_pts


def write_archive(store: StoreSummary, path: Path) -> int:
    """A deterministic tar.gz of every completed cell's spec.json, DONE, model.json, metrics/
    and rankings/ (no weights, no features) under ``rankings-archive/cells/<cell>/``; extract
    it and run ``vibench score rankings-archive`` to re-score every stored trial. Returns the
    number of files."""
    buf = io.BytesIO()
    n = 0
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=9) as tar:
        for cell in sorted(store.cells, key=lambda c: c.path.name):
            files = [cell.path / f for f in ARCHIVE_FILES if (cell.path / f).is_file()]
            for sub in ("metrics", "rankings"):
                if (cell.path / sub).is_dir():
                    files += sorted(p for p in (cell.path / sub).rglob("*") if p.is_file())
            for f in files:
                data = f.read_bytes()
                info = tarfile.TarInfo(f"rankings-archive/cells/{cell.path.name}/"
                                       f"{f.relative_to(cell.path).as_posix()}")
                info.size, info.mtime, info.mode = len(data), 0, 0o644
                tar.addfile(info, io.BytesIO(data))
                n += 1
    write_bytes_atomic(path, buf.getvalue())
    return n


def build_report(results: str | Path | None, out_dir: str | Path,
                 registry_dir: str | Path | None = None, config: str | Path | None = None,
                 *, site: bool = False, plots_enabled: bool = True,
                 param_counts: ParamCounts | None = None,
                 render_info: RenderInfo | None = None,
                 costs_file: str | Path | None = None) -> ReportOutputs:
    """Render the tables (and with `site` the static site) described in the module docstring.
    `param_counts` (vibench method -> paper-config counts) is computed when not given;
    `costs_file`: the paper-config costs document (default results/costs/paper-configs-cpu.json
    when it exists)."""
    reg = load_registry(registry_dir)
    cfg = load_report_config(config if config is not None else (
        Path(registry_dir) / "report.yaml" if registry_dir is not None else None))
    store = load_store(results)
    out = ReportOutputs(Path(out_dir))
    info = render_info or RenderInfo.now()
    counts = (param_counts if param_counts is not None
              else paper_config_counts(sorted(set(cfg.vibench_methods.values()))))
    stats = model_stats(store)

    board_groups = [g for g in cfg.groups if g != "imbalance"] + (
        ["imbalance"] if "imbalance" in cfg.groups else [])
    boards = {g: leaderboard(g, reg, store, cfg) for g in board_groups}
    status = status_matrix(reg, store, cfg)
    params = params_table(reg, cfg, counts)
    measured_costs = load_measured_costs(Path(costs_file) if costs_file is not None else None)
    compute = compute_table(cfg, measured_costs)
    latency = latency_table(cfg, [s for s in stats if not s["synthetic"]], measured_costs)
    conflicts = conflicts_table(reg, cfg)
    prov = provenance_table(store.real)
    claims = claims_table(reg)
    ptables = [paper_table(t, store, cfg) for t in reg.tables.values()]
    pipe = pipeline_table(store, cfg)
    pipe_costs = pipeline_costs_table([s for s in stats if s["synthetic"]], cfg)
    pipe_prov = provenance_table(store.synthetic, "pipeline-provenance")
    selection = selection_table([c for c in store.cells if c.data_kind == "real"], cfg)
    pipe_selection = selection_table([c for c in store.cells if c.data_kind != "real"], cfg,
                                     "pipeline-selection")

    for g, b in boards.items():
        _export(out, b, f"leaderboard-{g}")
    for t, stem in ((status, "status"), (params, "params"), (compute, "compute"), (latency, "latency"),
                    (conflicts, "conflicts"), (prov, "provenance"), (pipe, "pipeline-check"),
                    (pipe_costs, "pipeline-costs"), (pipe_prov, "pipeline-provenance"),
                    (selection, "selection"), (pipe_selection, "pipeline-selection")):
        _export(out, t, stem)
    for t in ptables:
        _export(out, t, f"paper-{t.id[6:]}", numeric=False)  # the papers' exact text
    _write(out, "data/reported.csv", reg.records().to_csv(index=False))
    if not store.aggregates:
        out.notes.append("no results in the store yet: only reported numbers are shown")
    out.notes += store.store_notes + store.unverified_notes  # damaged (left out), stray, unverified
    if store.aggregates and not store.real:
        out.notes.append("every result in the store is on synthetic data: it is shown on the "
                         "pipeline-check page only")

    by_paper: dict[str, list[DisplayTable]] = {}
    for t, d in zip(reg.tables.values(), ptables):
        by_paper.setdefault(t.paper, []).append(d)
    tol = (f"Δ = vibench − paper in points (real-data results only); ✓ within "
           f"±{cfg.default_tolerance:g}, ~ within ±{cfg.default_tolerance * cfg.warn_factor:g}, "
           "✗ beyond (results/reported/report.yaml).")
    md_sections = ([("Reproduction status", [status])]
                   + [("Leaderboards", list(boards.values())),
                      ("Costs", [params, compute, latency]), ("Checkpoint selection", [selection]),
                      ("Provenance", [prov]),
                      ("Conflicts between papers", [conflicts]),
                      ("Claims outside tables", [claims])])
    _write(out, "report.md", render_document("vibench leaderboards", [INTRO], md_sections))
    _write(out, "paper-tables.md", render_document(
        "The papers' tables, reported vs reproduced", [INTRO, tol],
        [(f"{p}: {reg.titles.get(p, p)}", ts) for p, ts in by_paper.items()]))
    _write(out, "pipeline-check.md", render_document(
        "Pipeline check (synthetic data)", [*SHOWS, *(f"Does not show: {x}" for x in DOES_NOT_SHOW)],
        [("Trained vs untrained", [pipe]), ("Costs in the pipeline runs", [pipe_costs]),
         ("Checkpoint selection", [pipe_selection]), ("Provenance", [pipe_prov])]))
    cards = card_sections(sorted(set(cfg.vibench_methods.values())))
    for c in cards:
        if c.table is not None:
            _export(out, c.table, f"card-{c.method}", numeric=False)
        else:
            out.notes.append(f"fidelity card of {c.method} not rendered: {c.error}")
    _write(out, "methods.md", render_document(
        "Methods: fidelity cards", [CARDS_INTRO],
        [(f"{c.method}: {c.summary}", [c.table] if c.table is not None else []) for c in cards]))
    if site:
        _site(out, reg, store, cfg, info, boards, status, params, latency, conflicts, prov,
              claims, by_paper, tol, pipe, pipe_costs, pipe_prov, counts, plots_enabled, compute, cards,
              (selection, pipe_selection))
    return out


def _site(out: ReportOutputs, reg: Registry, store: StoreSummary, cfg: ReportConfig,
          info: RenderInfo, boards: dict[str, DisplayTable], status: DisplayTable,
          params: DisplayTable, latency: DisplayTable, conflicts: DisplayTable,
          prov: DisplayTable, claims: DisplayTable, by_paper: dict[str, list[DisplayTable]],
          tol: str, pipe: DisplayTable, pipe_costs: DisplayTable, pipe_prov: DisplayTable,
          counts: ParamCounts, plots_enabled: bool, compute: DisplayTable, cards: list[CardSection],
          selections: tuple[DisplayTable, DisplayTable]) -> None:
    """The HTML pages, plots, grids and the rankings archive."""
    pages = cfg.site_pages()
    nav = ([("index.html", "Overview")] + [(f"{p}.html", v["title"]) for p, v in pages.items()]
           + [(CARDS_PAGE, "Methods"), ("costs.html", "Costs"), ("plots.html", "Plots"),
              ("paper-tables.html", "Paper tables"), ("pipeline-check.html", "Pipeline check"),
              ("provenance.html", "Provenance")])
    footer = info.lines()

    def page(name: str, title: str, sections: list[Section], **kw: Any) -> None:
        _write(out, name, render_page(title, current=name, nav=nav, sections=sections,
                                      footer=footer, **kw))

    figs: list[Figure] = []
    pipe_figs: list[Figure] = []
    grid_notes: list[str] = []
    if plots_enabled:
        pdir, gdir = out.out / "plots", out.out / "grids"
        params_pts, lat_pts = _points(reg, store, cfg, counts)
        recs = reg.records()
        made = (plots.accuracy_vs_latency(lat_pts, pdir) + plots.accuracy_vs_params(params_pts, pdir)
                + plots.cmc_facets(store.real, recs, cfg.vibench_methods, pdir)
                + plots.imbalance_plot(recs, store, cfg, pdir))
        figs = [Figure(f"plots/{p.name}", alt) for p, alt in made]
        pmade = plots.cmc_facets(store.synthetic, recs, cfg.vibench_methods, pdir,
                                 prefix="pipeline-cmc", untrained=True)
        pipe_figs = [Figure(f"plots/{p.name}", alt) for p, alt in pmade]
        rcfg = cfg.retrieval
        args = (list(rcfg.get("protocols") or []), int(rcfg.get("queries", 4)),
                int(rcfg.get("top_k", 10)), int(rcfg.get("max_grids", 4)))
        real_cells = [c for c in store.cells if c.data_kind == "real"]
        syn_cells = [c for c in store.cells if c.data_kind != "real"]
        g_real, n_real = grids.build_grids(real_cells, gdir, *args)
        g_syn, n_syn = grids.build_grids(syn_cells, gdir, *args)
        figs += [Figure(f"grids/{p.name}", alt) for p, alt in g_real]
        pipe_figs += [Figure(f"grids/{p.name}", alt) for p, alt in g_syn]
        grid_notes = n_real + n_syn
        out.notes += grid_notes
        out.files += [f.path for f in figs + pipe_figs]
    if store.cells:
        n = write_archive(store, out.out / ARCHIVE)
        out.files.append(ARCHIVE)
        archive_text = (f"{ARCHIVE} ({n} files): every cell's spec.json, metrics and raw "
                        "rankings. To re-score every number: tar xzf "
                        f"{ARCHIVE} && vibench score rankings-archive")
    else:
        archive_text = "No result store was given, so there is no rankings archive."

    first = next(iter(boards.values()))
    page("index.html", "Visible-infrared re-identification: reported and reproduced", [
        Section("", tables=[first]),
        Section("Reproduction status", "status", tables=[status]),
        Section("Checkpoint selection", "selection-sec", tables=[selections[0]]),
        Section("Pages", "pages", cards=[
            (f"{p}.html", v["title"], ", ".join(GROUP_TITLES.get(g, g) for g in v["groups"]))
            for p, v in pages.items()] + [
            (CARDS_PAGE, "Methods", "fidelity cards: each component vs its paper"),
            ("costs.html", "Costs", "parameters, FLOPs (paper configs) and latency with device"),
            ("plots.html", "Plots", "accuracy vs latency and parameters, CMC, retrieval"),
            ("paper-tables.html", "Paper tables", "all 30 tables as published, conflicts"),
            ("pipeline-check.html", "Pipeline check", "synthetic-data runs: trained vs untrained"),
            ("provenance.html", "Provenance", "commit, config, data, packages per number")]),
    ], intro=["The papers' numbers and vibench's reproductions on real data, one row per method "
              "and setting. Synthetic-data runs are only on the pipeline-check page."],
        vb_switch=bool(store.real))
    for pid, v in pages.items():
        page(f"{pid}.html", v["title"],
             [Section("", tables=[boards[g] for g in v["groups"] if g in boards])],
             intro=[INTRO], vb_switch=bool(store.real))
    page(CARDS_PAGE, "Methods: fidelity cards",
         [Section(f"{c.method}", f"method-{c.method}",
                  paragraphs=[c.error] if c.error else [],
                  bullets=[f"Variant {v}" for v in c.variants],
                  tables=[c.table] if c.table is not None else []) for c in cards],
         intro=[CARDS_INTRO])
    page("costs.html", "Costs: parameters, FLOPs and latency",
         [Section("Parameters", "parameters", tables=[params]),
          Section("Compute and CPU latency of the paper configs", "compute-sec", tables=[compute]),
          Section("Latency", "latency-sec", tables=[latency])])
    page("plots.html", "Plots", [Section("", figures=figs, paragraphs=[
        "Papers' numbers and vibench results on real data only. Latency plots: one per device, "
        "config and precision. CMC: one panel per method, the paper's R1/R5/R10/R20 as "
        "crosses. Retrieval examples: query (blue) and its top-10, green = same identity, "
        "red = different."] + ([] if figs else ["No plot yet: no result on real data (or "
                                                "plots were disabled)."]) + grid_notes)])
    page("paper-tables.html", "The papers' tables, reported vs reproduced",
         [Section(f"{p}: {reg.titles.get(p, p)}", f"paper-{p}", tables=ts)
          for p, ts in by_paper.items()]
         + [Section("Conflicts between papers", "conflicts-sec", tables=[conflicts]),
            Section("Claims outside tables", "claims-sec", tables=[claims])],
         intro=[INTRO, tol])
    page("pipeline-check.html", "Pipeline check: runs on synthetic data", [
        Section("What this shows", "shows", bullets=list(SHOWS)),
        Section("What this does not show", "not-shown", bullets=list(DOES_NOT_SHOW)),
        Section("Trained vs untrained", "trained", tables=[pipe], figures=pipe_figs),
        Section("Costs in the pipeline runs", "costs", tables=[pipe_costs]),
        Section("Checkpoint selection", "selection-sec", tables=[selections[1]]),
        Section("Provenance", "provenance", tables=[pipe_prov])],
        banner="Every number on this page was computed on synthetic data. None of them is a "
               "reproduction of a paper, and none is ranked or compared with the papers.")
    page("provenance.html", "Provenance", [
        Section("", tables=[prov], paragraphs=[archive_text])], intro=footer[:2])
