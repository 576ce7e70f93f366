"""``vibench eval`` (score features computed elsewhere on any protocol) and ``vibench score``
(re-score stored raw rankings without a model). See docs/metrics.md. Both read and write through
the result store (vibench.store): ``eval --out DIR`` writes a cell directory's ``metrics/`` and
``rankings/`` below DIR, ``score`` reads a store, a cell directory or such a DIR.

``vibench eval --features FILE --dataset NAME --root PATH --protocols NAMES|GROUP
              [--trials T,..] [--out DIR] [--json] [--device cpu|cuda]``
``vibench score RESULTS_DIR [--json]``
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import click
import numpy as np

from vibench.data import DATASETS, load_dataset
from vibench.errors import VibenchError, unknown_name
from vibench.metrics.features import load_features
from vibench.metrics.pipeline import evaluate_lists
from vibench.metrics.rankings import load_rankings, score_rankings
from vibench.metrics.rerank import resolve_rerank
from vibench.protocols import build_lists, protocol_groups, resolve_protocols
from vibench.store import CellDir, check_cells, find_rankings, finish_metrics_doc, metrics_doc, trial_record

_COLS = ("rank1", "rank5", "rank10", "rank20", "mAP", "mINP")


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


def _pct(x: float) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.2f}"


def _parse_trials(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError as exc:
        raise VibenchError(f"--trials must be comma-separated integers, got {text!r}") from exc


def _select_specs(expr: str, dataset: str) -> list[Any]:
    """Evaluation protocols named by `expr`: groups keep their members on `dataset`; a protocol
    named explicitly must be defined on `dataset`."""
    groups = protocol_groups()
    specs: list[Any] = []
    for token in [t.strip() for t in expr.split(",") if t.strip()]:
        found = resolve_protocols(token, kind="evaluation")
        if token in groups:
            found = [s for s in found if s.dataset == dataset]
        else:
            wrong = [s.name for s in found if s.dataset != dataset]
            if wrong:
                raise VibenchError(f"protocol {', '.join(wrong)} is defined on another dataset than {dataset!r}")
        specs += [s for s in found if s not in specs]
    if not specs:
        raise VibenchError(f"no evaluation protocol of {expr!r} is defined on dataset {dataset!r}")
    return specs


@click.command("eval")
@click.option("--features", "features_path", required=True, type=click.Path(path_type=Path),
              help="npz with 'paths' (N, relative to the dataset root) and 'features' (N x D).")
@click.option("--dataset", required=True, help="sysu, regdb or llcm.")
@click.option("--root", required=True, type=click.Path(path_type=Path), help="The dataset root.")
@click.option("--protocols", "protocols_expr", required=True,
              help="Comma-separated protocol and group names (e.g. sysu, regdb-v2t, mixed).")
@click.option("--trials", "trials_text", default=None, help="Only these trials (e.g. 1 for RegDB split 1).")
@click.option("--out", "out_dir", default=None, type=click.Path(path_type=Path),
              help="Write metrics/<protocol>.json and rankings/<protocol>/trial-<t>.npz here.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@click.option("--device", default="cpu", show_default=True, help="Torch device for the evaluation.")
def eval_cmd(features_path: Path, dataset: str, root: Path, protocols_expr: str, trials_text: str | None,
             out_dir: Path | None, as_json: bool, device: str) -> None:
    """Evaluate features computed elsewhere on every selected protocol and trial."""
    if dataset.strip().lower() not in DATASETS:
        raise unknown_name("dataset", dataset, DATASETS)
    feats = load_features(features_path)
    specs = _select_specs(protocols_expr, dataset.strip().lower())
    only = _parse_trials(trials_text)
    index = load_dataset(dataset, root)
    docs: dict[str, dict[str, Any]] = {}
    rankings: list[tuple[str, int, Any]] = []
    for spec in specs:
        trials = list(spec.trials) if only is None else [t for t in spec.trials if t in only]
        if not trials:
            raise VibenchError(f"protocol {spec.name} has trials {list(spec.trials)}; none of {only} selected")
        doc = metrics_doc(spec, resolve_rerank(spec.rerank))
        for t in trials:
            lists = build_lists(spec, index, t)
            qf = feats.select([r.path for r in lists.query], f"query images of {spec.name} trial {t}")
            gf = feats.select([r.path for r in lists.gallery], f"gallery images of {spec.name} trial {t}")
            res, rk = evaluate_lists(spec, lists, qf, gf, device=device)
            doc["trials"][str(t)] = trial_record(res, lists)
            rankings.append((spec.name, t, rk))
        docs[spec.name] = finish_metrics_doc(doc)
    # every file is written only after every protocol evaluated without error
    if out_dir is not None:
        cd = CellDir(Path(out_dir))
        for name, t, rk in rankings:
            cd.write_rankings(name, t, rk)
        for doc in docs.values():
            cd.write_metrics(doc)
    if as_json:
        click.echo(json.dumps({"features": str(features_path), "dataset": dataset, "protocols": docs}, indent=2))
        return
    rows = [(n, str(len(d["trials"])), *(_pct(d["summary"][c]) for c in _COLS)) for n, d in docs.items()]
    click.echo(_table(("protocol", "trials", "R1", "R5", "R10", "R20", "mAP", "mINP"), rows))


def _compare(stored: dict[str, Any] | None, res: Any) -> str:
    """'ok', 'no metrics' or what differs (CMC bit-exact as float32; mAP/mINP within 1e-12)."""
    if stored is None:
        return "no metrics"
    diffs = []
    cmc = np.asarray(stored.get("cmc", []), dtype=np.float32)
    if cmc.shape != res.cmc.shape or not np.array_equal(cmc, res.cmc):
        diffs.append("cmc")
    for key, val in (("mAP", res.mAP), ("mINP", res.mINP)):
        if key not in stored or not abs(float(stored[key]) - val) <= 1e-12:
            diffs.append(key)
    if int(stored.get("num_valid", -1)) != res.num_valid:
        diffs.append("num_valid")
    return "ok" if not diffs else "MISMATCH " + ",".join(diffs)


@click.command("score")
@click.argument("results_dir", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def score_cmd(ctx: click.Context, results_dir: Path, as_json: bool) -> None:
    """Re-score every rankings/<protocol>/trial-<t>.npz under RESULTS_DIR (no model needed) and
    compare with the stored metrics/<protocol>.json; exit 1 on any mismatch."""
    if not results_dir.is_dir():
        raise VibenchError(f"{results_dir}: no such results directory")
    # damaged cells (vibench.store.verify) are named and their files not scored; the rest go on
    damaged = {c.cell.root: c for c in check_cells(results_dir, deep=False) if c.status in ("damaged", "stray")}
    files = find_rankings(results_dir)
    if not files and not damaged:
        raise VibenchError(f"{results_dir}: no rankings/<protocol>/trial-<t>.npz files found")
    out: list[dict[str, Any]] = []
    metrics_cache: dict[tuple[Path, str], Any] = {}
    for f in files:
        cell = f.cell.root
        row = {"cell": str(cell.relative_to(results_dir)) if cell != results_dir else ".",
               "protocol": f.protocol, "trial": f.trial}
        problems = [str(p) for p in damaged[cell].problems] if cell in damaged else []
        try:
            if problems:
                raise VibenchError(problems[0])
            rk = load_rankings(f.path)
            if rk.meta["protocol"] != f.protocol:
                raise VibenchError(f"{f.path}: holds protocol {rk.meta['protocol']!r} but sits under {f.protocol!r}")
            key = (cell, f.protocol)
            if key not in metrics_cache:
                metrics_cache[key] = f.cell.read_metrics(f.protocol)
        except VibenchError as exc:
            out.append({**row, "status": f"DAMAGED {exc}"})
            continue
        res = score_rankings(rk)
        doc = metrics_cache[key]
        stored = None if doc is None else doc.get("trials", {}).get(str(f.trial))
        out.append({**row, "status": _compare(stored, res), **res.to_dict()})
    scored = {Path(results_dir) / r["cell"] for r in out}
    for root, check in damaged.items():
        if root not in scored:  # e.g. every rankings file of the cell deleted
            out.append({"cell": str(root.relative_to(results_dir)), "protocol": "—", "trial": "—",
                        "status": f"DAMAGED {check.problems[0]}"})
    bad = [r for r in out if r["status"].startswith(("MISMATCH", "DAMAGED"))]
    n_damaged = sum(r["status"].startswith("DAMAGED") for r in out)
    if as_json:
        click.echo(json.dumps({"results_dir": str(results_dir), "rankings": out, "mismatches": len(bad) - n_damaged,
                               "damaged": n_damaged}, indent=2))
    else:
        rows = [(r["cell"], r["protocol"], str(r["trial"]), _pct(r["cmc"][0]),
                 _pct(r["cmc"][min(4, len(r["cmc"]) - 1)]), _pct(r["mAP"]), _pct(r["mINP"]), r["status"])
                if "cmc" in r else (r["cell"], r["protocol"], str(r["trial"]), "—", "—", "—", "—", r["status"])
                for r in out]
        click.echo(_table(("cell", "protocol", "trial", "R1", "R5", "mAP", "mINP", "stored"), rows))
        click.echo(f"{len(out) - n_damaged} rankings re-scored, {len(bad) - n_damaged} mismatches, "
                   f"{n_damaged} damaged")
    if bad:
        ctx.exit(1)
