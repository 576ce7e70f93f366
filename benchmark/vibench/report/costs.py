"""Costs that compare like with like.

* Parameters: each paper's parameter claim next to vibench's count of the *paper* config on the
  claim's dataset (the class count changes the classifier), both registered (every parameter the
  model holds) and effective (the test path) — :func:`vibench.engine.latency.paper_parameter_counts`,
  built on the meta device. Methods without a claim get a row with the vibench counts only.
* Compute: the committed measurement of the paper configs (``results/costs/paper-configs-cpu.json``,
  written by ``vibench methods costs``): FLOPs per test image and per query (2 per
  multiply-accumulate, and the MACs most papers print as "GFLOPs") and CPU latency per image and
  per query, each row labelled with config (name + hash) and device.
* Latency: the papers' stated latencies (their device; precision as stated, else "not stated"),
  vibench's measured latency of real-data runs and the paper-config measurement above, each
  labelled with config, device and precision; the "× fastest" column compares only rows on the
  same device and precision.
Costs measured in runs on synthetic data are shown on the pipeline-check page.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable

from vibench.errors import VibenchError
from vibench.paths import RESULTS_DIR
from vibench.report.reported import Registry, ReportConfig
from vibench.report.tables import Cell, DisplayTable, fmt
from vibench.store.identity import config_label

ParamCounts = dict[str, dict[str, Any]]  # vibench method -> {"params": {ds: n}, "effective": {..}}
DATASET_KEYS = {"SYSU-MM01": "sysu", "RegDB": "regdb", "LLCM": "llcm"}
#: the committed paper-config measurement (``vibench methods costs --out``)
MEASURED_COSTS = RESULTS_DIR / "costs" / "paper-configs-cpu.json"
COSTS_SCHEMA = "vibench-costs/1"


def load_measured_costs(path: Path | None = None) -> dict[str, Any] | None:
    """The costs document at `path` (default :data:`MEASURED_COSTS`); None when the default file
    does not exist (e.g. a wheel install); a VibenchError naming the file when it is not one."""
    p = Path(path) if path is not None else MEASURED_COSTS
    if path is None and not p.is_file():
        return None
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise VibenchError(f"{p}: not a readable costs document ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("schema") != COSTS_SCHEMA or not isinstance(doc.get("methods"), dict):
        raise VibenchError(f"{p}: expected a costs document (schema {COSTS_SCHEMA!r} with 'methods'), "
                           "as written by `vibench methods costs --out`")
    return doc


def _config_label(e: dict[str, Any]) -> str:
    return config_label(str(e.get("config", "?")), str(e.get("config_hash", "")))


def _measured_label(e: dict[str, Any]) -> str:
    m = e.get("measured") or {}
    return f"{m.get('device', '?')}, fp32, batch 1, {str(m.get('date', '?'))[:10]}"


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


def _giga(n: Any) -> float | None:
    return float(n) / 1e9 if isinstance(n, (int, float)) else None


def _number(n: Any) -> float | None:
    return float(n) if isinstance(n, (int, float)) else None


def _num_cell(v: float | None, digits: int, title: str = "") -> Cell:
    return Cell(fmt(v, digits), v, "num", title)


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


def compute_table(cfg: ReportConfig, measured: dict[str, Any] | None) -> DisplayTable:
    """FLOPs and CPU latency of the paper configs (module docstring), one row per method."""
    inv = {v: k for k, v in cfg.vibench_methods.items()}
    claims: dict[str, list[str]] = {}
    for r in cfg.reported_latency:
        claims.setdefault(str(r["method"]), []).append(f"{float(r['ms_per_query']):g} ms/query ({r['device']})")
    rows = []
    for name, e in sorted(((measured or {}).get("methods") or {}).items()):
        paper_name = inv.get(name, name)
        fl, lat, par = e.get("flops") or {}, e.get("latency") or {}, e.get("params") or {}
        k = lat.get("refine_k")
        query_what = f"embed + decoder over K = {k} candidates" if k else "embed + distance + sort"
        rows.append([
            Cell(paper_name, None, "m"), Cell(_config_label(e)), Cell("x".join(map(str, e.get("input_size", [])))),
            _num_cell(_millions(par.get("registered")), 2), _num_cell(_millions(par.get("effective")), 2),
            _num_cell(_giga(fl.get("per_image")), 1), _num_cell(_giga(fl.get("macs_per_image")), 1),
            _num_cell(_giga(fl.get("macs_per_query")), 1, query_what),
            _num_cell(_number(lat.get("ms_per_image")), 0), _num_cell(_number(lat.get("ms_per_query")), 0, query_what),
            Cell(_measured_label(e)), Cell("; ".join(claims.get(paper_name, [])) or "no claim")])
    header = ["Method", "Config", "Input (HxW)", "Registered (M)", "Effective (M)", "GFLOPs / image",
              "GMACs / image", "GMACs / query", "CPU ms / image", "CPU ms / query", "Measured on",
              "Paper's latency claim"]
    note = (measured or {}).get("last_run", {}).get("note")
    notes = ([f"Measurement conditions: {note}"] if note else []) + ([] if measured else [
        "No paper-config measurement yet: run `vibench methods costs --out "
        "results/costs/paper-configs-cpu.json`."])
    return DisplayTable(
        "compute", "Compute per test image and per query: vibench's paper configs", header, rows,
        caption="From results/costs/paper-configs-cpu.json (`vibench methods costs`), randomly "
                "initialised paper configs (costs do not depend on the weights). FLOPs by "
                "torch.utils.flop_counter: 2 per multiply-accumulate of matmuls, convolutions and "
                "attention (element-wise work not counted); GMACs = GFLOPs / 2, the unit most "
                "papers print as 'GFLOPs'. Per query = embed one query, compare with a precomputed "
                "gallery, re-score (BIT: decoder over its K candidates), sort. CPU latencies are "
                "not comparable with the papers' GPU latencies.", notes=notes, frozen=1)


def latency_table(cfg: ReportConfig, stats: list[dict[str, Any]],
                  measured: dict[str, Any] | None = None) -> DisplayTable:
    """Latency per method with config, device and precision; compared only within one device and
    precision. `stats`: vibench model rows (vibench.report.aggregate.model_stats) of real-data
    runs; `measured`: the paper-config costs document (:func:`load_measured_costs`)."""
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
    for name, e in sorted(((measured or {}).get("methods") or {}).items()):
        lat = e.get("latency") or {}
        if not isinstance(lat.get("ms_per_query"), (int, float)):
            continue
        m = e.get("measured") or {}
        entries.append({"method": f"{inv.get(name, name)} (vibench)", "config": _config_label(e),
                        "source": f"vibench methods costs, {str(m.get('date', '?'))[:10]}"
                                  + (f"; {m['note']}" if m.get("note") else ""),
                        "device": str(lat.get("device", m.get("device", "?"))),
                        "precision": str(lat.get("precision", "fp32")), "ms": float(lat["ms_per_query"])})
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
    real = any(s["ms_per_query"] is not None for s in stats)
    notes = [] if real else [
        "No vibench latency from a real-data run yet (costs measured in the synthetic pipeline "
        "runs are on the pipeline-check page)."]
    return DisplayTable("latency", "Latency per query", header, rows,
                        caption="One query = embed one image, compare with a precomputed "
                                "gallery, sort. Latencies are never compared across devices or "
                                "precisions.", notes=notes, frozen=1)
