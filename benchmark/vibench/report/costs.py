"""Costs that compare like with like.

* Parameters: each paper's parameter claim next to vibench's count of the *paper* config on the
  claim's dataset (the class count changes the classifier), both registered (every parameter the
  model holds) and effective (the test path) — :func:`vibench.engine.latency.paper_parameter_counts`,
  built on the meta device. Methods without a claim get a row with the vibench counts only.
* Latency: the papers' stated latencies (their device; precision as stated, else "not stated")
  and vibench's measured latency of real-data runs, each labelled with config, device and
  precision; the "× fastest" column compares only rows on the same device and precision.
Costs measured in runs on synthetic data are shown on the pipeline-check page.
"""
from __future__ import annotations

import math
from typing import Any, Callable

from vibench.errors import VibenchError
from vibench.report.reported import Registry, ReportConfig
from vibench.report.tables import Cell, DisplayTable, fmt

ParamCounts = dict[str, dict[str, Any]]  # vibench method -> {"params": {ds: n}, "effective": {..}}
DATASET_KEYS = {"SYSU-MM01": "sysu", "RegDB": "regdb", "LLCM": "llcm"}


def paper_config_counts(methods: list[str],
                        count: Callable[[str], dict[str, Any]] | None = None) -> ParamCounts:
    """Registered and effective parameters of each method's paper config per dataset; a method
    whose config cannot be built is left out (its row then says so)."""
    if count is None:
        # lazy: it imports torch; the report package is otherwise torch-free
        from vibench.engine.latency import paper_parameter_counts as count
    out: ParamCounts = {}
    for m in methods:
        try:
            out[m] = count(m)
        except VibenchError:
            continue
    return out


def _millions(n: Any) -> float | None:
    return float(n) / 1e6 if isinstance(n, (int, float)) else None


def params_table(reg: Registry, cfg: ReportConfig, counts: ParamCounts) -> DisplayTable:
    """Paper claims vs vibench's paper-config counts (module docstring)."""
    recs = reg.records()
    claims = recs[(recs["metric"] == "params") & recs["value"].notna()
                  & recs["role"].isin(("ours", "copied", "reproduced"))]
    rows = []
    claimed = set()
    for r in claims.to_dict("records"):
        ds = DATASET_KEYS.get(str(r["dataset"]), "sysu")
        rows.append(_params_row(r["method"], f"{r['text']} ({r['table']})", r["value"], ds,
                                cfg, counts, r["table"]))
        claimed.add(r["method"])
    for paper_name in cfg.vibench_methods:
        if paper_name not in claimed:
            rows.append(_params_row(paper_name, "no claim", None, "sysu", cfg, counts, None))
    header = ["Method", "Paper's claim", "Claim (M)", "Dataset", "vibench registered (M)",
              "vibench effective (M)"]
    return DisplayTable(
        "params", "Parameters: the papers' claims vs vibench's paper config", header, rows,
        caption="vibench counts are of the `paper` config (methods/vibench_methods/configs/<method>/paper.yaml) "
                "with the claim's dataset's class count, built without weights on the meta "
                "device. Registered = every parameter the model holds (the papers' convention "
                "where stated); effective = the modules that run when embedding a test image.",
        frozen=1)


def _params_row(method: str, claim: str, value: float | None, ds: str, cfg: ReportConfig,
                counts: ParamCounts, table: str | None) -> list[Cell]:
    vb = cfg.vibench_methods.get(method)
    c = counts.get(vb or "")
    reg = _millions((c or {}).get("params", {}).get(ds))
    eff = _millions((c or {}).get("effective", {}).get(ds))
    why = "" if c else ("no vibench implementation" if vb is None else "config not built")
    links = [(claim, f"paper-tables.html#table-{table}")] if table else []
    return [Cell(method, None, "m"), Cell(claim, None, "", "", links),
            Cell(fmt(value), value, "num"), Cell(ds),
            Cell(fmt(reg), reg, "num", why), Cell(fmt(eff), eff, "num", why)]


def latency_table(cfg: ReportConfig, stats: list[dict[str, Any]]) -> DisplayTable:
    """Latency per method with config, device and precision; compared only within one device and
    precision. `stats`: vibench model rows (vibench.report.aggregate.model_stats) of real-data runs."""
    entries: list[dict[str, Any]] = []
    for r in cfg.reported_latency:
        entries.append({"method": str(r["method"]), "source": str(r.get("source", "paper text")),
                        "config": "paper (as published)", "device": str(r["device"]),
                        "precision": str(r.get("precision", "not stated")),
                        "ms": float(r["ms_per_query"])})
    inv = {v: k for k, v in cfg.vibench_methods.items()}
    for s in stats:
        if s["ms_per_query"] is None:
            continue
        entries.append({"method": f"{inv.get(s['method'], s['method'])} (vibench)",
                        "source": f"vibench, data {s['data']}", "config": s["config"],
                        "device": s["device"], "precision": s.get("precision") or "not recorded",
                        "ms": s["ms_per_query"]})
    fastest: dict[tuple[str, str], float] = {}
    for e in entries:
        k = (e["device"], e["precision"])
        fastest[k] = min(fastest.get(k, math.inf), e["ms"])
    rows = []
    for e in sorted(entries, key=lambda e: (e["device"], e["precision"], e["ms"])):
        rel = e["ms"] / fastest[(e["device"], e["precision"])]
        rows.append([Cell(e["method"], None, "m"), Cell(e["config"]), Cell(e["device"]),
                     Cell(e["precision"]), Cell(fmt(e["ms"], 2), e["ms"], "num"),
                     Cell(fmt(rel, 2) + "×", rel, "num"), Cell(e["source"])])
    header = ["Method", "Config", "Device", "Precision", "Latency (ms/query)",
              "× fastest (same device, precision)", "Source"]
    measured = any(s["ms_per_query"] is not None for s in stats)
    notes = [] if measured else [
        "No vibench latency from a real-data run yet (costs measured in the synthetic pipeline "
        "runs are on the pipeline-check page)."]
    return DisplayTable("latency", "Latency per query", header, rows,
                        caption="One query = embed one image, compare with a precomputed "
                                "gallery, sort. Latencies are never compared across devices or "
                                "precisions.", notes=notes, frozen=1)
