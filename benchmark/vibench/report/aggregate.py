"""Aggregate a vibench result store (read through vibench.store) for the reports.

Aggregation rule (issue 7): SYSU-MM01 and LLCM numbers are the mean over the protocol's gallery
trials inside the cell; RegDB numbers are the mean over the ten split cells 1..10 (both with
vibench.store.summarize_trials). When any trial or split is missing the value is None (rendered
"—"), never a partial average. With several seeds, the value is the mean over seeds, and None if
any seed is incomplete. Cells made under another config (name or resolved hash) or another data
source are never averaged together: each (method, variant, protocol, rerank, config, data) is its
own aggregate, and the report shows config and data on every row. Values are in percent (the
store holds fractions).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vibench.io import sha256_bytes
from vibench.protocols import get_protocol
from vibench.store import StoredCell, check_store_root, mean_cmc, scan_store, summarize_trials

METRIC_KEYS = ("rank1", "rank5", "rank10", "rank20", "mAP", "mINP")

@dataclass
class Aggregate:
    """One (method, variant, protocol, rerank, config, data) result with its provenance."""

    method: str
    variant: str | None
    protocol: str
    dataset: str
    rerank: bool
    config: str  # config label: name and resolved-hash prefix ("tiny 1a2b3c4d")
    data: str  # data-source label ("synthetic tiny s0", "real 1a2b3c4d")
    values: dict[str, float | None]
    cmc: list[float] | None
    expected: tuple[int, ...]
    present: dict[int, tuple[int, ...]]  # seed -> trials/splits present
    seeds: tuple[int, ...]
    data_kinds: tuple[str, ...]
    commits: tuple[str, ...]
    hardware: tuple[str, ...]
    cells: tuple[Path, ...]
    untrained: dict[str, float | None] = field(default_factory=dict)  # same rule, untrained model
    sources: tuple[StoredCell, ...] = ()  # the cells the numbers come from (provenance)

    @property
    def real(self) -> bool:
        """Every cell used was computed on a real dataset tree (the only numbers ranked)."""
        return bool(self.data_kinds) and all(k == "real" for k in self.data_kinds)

    @property
    def anchor(self) -> str:
        """A stable id of this result on the provenance page (``provenance.html#<anchor>``)."""
        key = "|".join([self.method, str(self.variant), self.protocol, str(self.rerank),
                        self.config, self.data])
        return "p-" + sha256_bytes(key.encode("utf-8"))[:12]

    @property
    def complete(self) -> bool:
        return all(set(self.expected) <= set(p) for p in self.present.values())

    @property
    def synthetic(self) -> bool:
        return any(k != "real" for k in self.data_kinds)

    def present_values(self, *, untrained: bool = False) -> tuple[dict[str, float], tuple[int, ...]]:
        """For an incomplete result: the mean (as for a complete one) over the trials/splits that
        every seed has, with those trials; ({}, ()) when there are none or a record is missing.
        Used only on the pipeline-check page (a smoke run evaluates RegDB split 1 of 10);
        leaderboards never show an incomplete result."""
        if not self.present:
            return {}, ()
        common = tuple(sorted(set.intersection(*(set(p) for p in self.present.values()))))
        per_seed = []
        for seed in self.seeds:
            recs: dict[str, Any] = {}
            for c in self.sources:
                doc = c.metrics.get(self.protocol) or {}
                trials = ((doc.get("untrained") or {}).get("trials") or {}) if untrained else doc.get("trials", {})
                for t in common:
                    if c.seed == seed and (self.dataset != "regdb" or t == c.split) and str(t) in trials:
                        recs[str(t)] = trials[str(t)]
            if not common or len(recs) != len(common):
                return {}, ()
            per_seed.append(summarize_trials(recs))
        return {k: float(np.mean([p[k] for p in per_seed])) * 100.0 for k in METRIC_KEYS}, common

    @property
    def missing(self) -> dict[int, tuple[int, ...]]:
        return {s: tuple(t for t in self.expected if t not in p) for s, p in self.present.items()
                if not set(self.expected) <= set(p)}


@dataclass
class StoreSummary:
    """Everything the report needs from a result store."""

    root: Path | None
    cells: list[StoredCell] = field(default_factory=list)
    aggregates: list[Aggregate] = field(default_factory=list)
    incomplete: list[Path] = field(default_factory=list)
    #: damaged cells and stray entries, one line each (vibench.store.StoreScan.notes)
    store_notes: list[str] = field(default_factory=list)
    #: cells written before manifests (read unverified)
    unverified_notes: list[str] = field(default_factory=list)

    @property
    def real(self) -> list[Aggregate]:
        """Results on real data: the only vibench numbers ranked or compared with the papers."""
        return [a for a in self.aggregates if a.real]

    @property
    def synthetic(self) -> list[Aggregate]:
        """Results on synthetic (or unknown) data: shown on the pipeline-check page only."""
        return [a for a in self.aggregates if not a.real]

    def lookup(self, method: str, protocol: str, variant: str | None = None,
               rerank: bool = False, *, real_only: bool = True) -> Aggregate | None:
        """The aggregate a paper table compares with when several configs or data sources
        exist: complete before incomplete, real before synthetic data, the `paper` config
        first, then by labels (deterministic). With `real_only` (the default) results on
        synthetic data are never returned. None when the store has no such result."""
        found = [a for a in self.aggregates
                 if (a.method, a.protocol, a.variant, a.rerank) == (method, protocol, variant, rerank)
                 and (a.real or not real_only)]
        found.sort(key=lambda a: (not a.complete, a.synthetic, not a.config.startswith("paper "),
                                  a.config, a.data))
        return found[0] if found else None


def expected_trials(protocol: str) -> tuple[int, ...]:
    """The trials (SYSU/LLCM gallery draws) or splits (RegDB) a complete result needs."""
    return tuple(int(t) for t in get_protocol(protocol).trials)


def aggregate(cells: list[StoredCell]) -> list[Aggregate]:
    """Per (method, variant, protocol, rerank, config, data): the mean as in the module docstring."""
    # key -> seed -> trial -> (trial record, cell)
    table: dict[tuple, dict[int, dict[int, tuple[dict[str, Any], StoredCell]]]] = {}
    for c in cells:
        for proto, doc in c.metrics.items():
            key = (c.method, c.variant, proto, str(doc.get("dataset", c.dataset)),
                   bool(doc.get("rerank")), c.config_label, c.data_label)
            slot = table.setdefault(key, {}).setdefault(c.seed, {})
            for t, tr in doc["trials"].items():
                trial = int(t)
                if key[3] == "regdb" and trial != c.split:
                    continue  # a RegDB split cell evaluates its own split only
                slot[trial] = (tr, c)
    out = []
    for (method, variant, proto, dataset, rerank, config, data), seeds in sorted(
            table.items(), key=lambda kv: tuple(str(x) for x in kv[0])):
        expected = expected_trials(proto)
        present = {s: tuple(sorted(tr)) for s, tr in seeds.items()}
        complete = all(set(expected) <= set(p) for p in present.values())
        values: dict[str, float | None] = {k: None for k in METRIC_KEYS}
        untrained: dict[str, float | None] = {}
        cmc = None
        if complete:
            untrained = _untrained_values(seeds, expected, proto)
            per_seed = [summarize_trials({str(t): trials[t][0] for t in expected})
                        for trials in seeds.values()]
            curves = [mean_cmc({str(t): trials[t][0] for t in expected}) for trials in seeds.values()]
            for k in METRIC_KEYS:
                v = float(np.mean([p[k] for p in per_seed])) * 100.0
                values[k] = None if math.isnan(v) else v
            n = min(len(c) for c in curves)
            cmc = [float(x) * 100.0 for x in np.mean([c[:n] for c in curves], axis=0)]
        used = [rec for trials in seeds.values() for (_, rec) in trials.values()]
        out.append(Aggregate(
            method, variant, proto, dataset, rerank, config, data, values, cmc, expected, present,
            tuple(sorted(seeds)), tuple(sorted({r.data_kind for r in used})),
            tuple(sorted({(r.commit or "unknown")[:12] + ("+dirty" if r.dirty else "")
                          for r in used})),
            tuple(sorted({r.hardware for r in used})), tuple(sorted({r.path for r in used})),
            untrained, tuple({r.path: r for r in used}[p] for p in sorted({r.path for r in used}))))
    return out


def _untrained_values(seeds: dict[int, dict[int, tuple[dict[str, Any], StoredCell]]],
                      expected: tuple[int, ...], protocol: str) -> dict[str, float | None]:
    """The untrained reference (metrics ``untrained.trials``, written with
    ``--untrained-reference``) under the same rule as the trained values: the mean over the
    expected trials/splits and seeds, or {} when any of them lacks the reference."""
    per_seed = []
    for trials in seeds.values():
        ref: dict[str, Any] = {}
        for t in expected:
            cell = trials[t][1]
            un = (cell.metrics[protocol].get("untrained") or {}).get("trials") or {}
            if str(t) not in un:
                return {}
            ref[str(t)] = un[str(t)]
        per_seed.append(summarize_trials(ref))
    return {k: float(np.mean([p[k] for p in per_seed])) * 100.0 for k in METRIC_KEYS}


def load_store(root: str | Path | None) -> StoreSummary:
    """Every completed cell of store `root`; cells without DONE are listed as incomplete and not
    used. A missing root (no results yet) gives an empty summary; a root that exists but has no
    ``cells/`` folder is an error (probably the wrong folder)."""
    if root is None:
        return StoreSummary(None)
    root = Path(root)
    if not root.exists():
        return StoreSummary(root)
    check_store_root(root)
    scan = scan_store(root)  # damaged cells are named and left out, never rendered as numbers
    summary = StoreSummary(root, cells=scan.cells, incomplete=scan.incomplete, store_notes=scan.notes(),
                           unverified_notes=scan.unverified_note())
    summary.aggregates = aggregate(summary.cells)
    return summary


def model_stats(summary: StoreSummary) -> list[dict[str, Any]]:
    """One row per (method, config, data, device) from the cells' model.json: params
    (registered/effective, millions), FLOPs (G), latency (ms per query) and the device."""
    rows: dict[tuple[str, str, str, str], dict[str, Any]] = {}
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
        key = (c.method, c.config_label, c.data_label, device)
        row = rows.setdefault(key, {
            "method": c.method, "device": device, "config": c.config_label, "data": c.data_label,
            "params_registered_m": _millions(params.get("registered")),
            "params_effective_m": _millions(params.get("effective")),
            "gflops": None if not isinstance(flops, (int, float)) else float(flops) / 1e9,
            "latencies": [], "synthetic": False, "hardware": c.hardware,
            "precision": lat.get("precision")})
        if isinstance(lat.get("ms_per_query"), (int, float)):
            row["latencies"].append(float(lat["ms_per_query"]))
        row["synthetic"] = row["synthetic"] or c.data_kind != "real"
    out = []
    for row in rows.values():
        lats = row.pop("latencies")
        row["ms_per_query"] = float(np.median(lats)) if lats else None
        out.append(row)
    return sorted(out, key=lambda r: (r["device"], r["method"], r["config"], r["data"]))


def _millions(x: Any) -> float | None:
    return float(x) / 1e6 if isinstance(x, (int, float)) else None
