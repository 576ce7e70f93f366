"""``vibench methods list [--json]``, ``vibench methods costs`` and ``vibench train``.

``vibench train`` is ``vibench run`` for one method on one dataset (one cell; every RegDB split
unless --split): it trains, extracts the test features, evaluates the selected protocols into
the result store at --out and prints the run's summary table. There is no second evaluation path.
"""
from __future__ import annotations

import datetime
import json
import shlex
import sys
from pathlib import Path

import click
import torch

from vibench.engine.config import load_config
from vibench.engine.fidelity import KINDS, card_rows, read_card
from vibench.engine.latency import NUM_CLASSES, costs_document, device_name, measure_latency, paper_costs, paper_parameter_counts
from vibench.engine.pretrained import without_weights
from vibench.engine.trainer import resolve_device
from vibench.errors import VibenchError, unknown_name
from vibench.io import write_json_atomic
from vibench.protocols import resolve_protocols
from vibench.registry import available_methods, get_method_class, resolve_methods
from vibench.data.synth.scales import SCALES
from vibench.runner.datasources import DATASETS
from vibench.runner.matrix import RunOptions, run_matrix


@click.group("methods")
def methods() -> None:
    """List the registered methods with their parameter counts; show one method's fidelity card."""


@methods.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per method (name, paper, params per dataset).")
@click.option("--latency", is_flag=True, help="Also measure test-time latency of the paper config (slow on CPU).")
@click.option("--device", default="auto", show_default=True, help="Device for --latency.")
def list_cmd(as_json: bool, latency: bool, device: str) -> None:
    """Every method: name, paper, parameters of its `paper` config per dataset (sysu, regdb, llcm)."""
    rows = method_table(latency=latency, device=device)
    if as_json:
        click.echo(json.dumps(rows, indent=2, sort_keys=True))
        return
    click.echo(f"{'method':<10} {'sysu':>12} {'regdb':>12} {'llcm':>12} {'effective':>12}  paper")
    for r in rows:
        if "error" in r:
            click.echo(f"{r['name']:<10} error: {r['error']}")
            continue
        p = r["params"]
        click.echo(f"{r['name']:<10} {p['sysu']:>12,} {p['regdb']:>12,} {p['llcm']:>12,} {r['effective_params']['sysu']:>12,}  {r['paper']}")


@methods.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="The card as JSON (method, summary, items, variants).")
def show_cmd(name: str, as_json: bool) -> None:
    """Print NAME's fidelity card: every component, loss term and recipe item with the paper's
    reference, the code location and its status (as written, from the official code, guessed,
    deviates, with why)."""
    if name not in available_methods():
        raise unknown_name("method", name, available_methods())
    card = read_card(name)
    if as_json:
        click.echo(json.dumps({"method": name, "paper": get_method_class(name).paper, "summary": card.summary(),
                               "counts": card.counts(), "items": card_rows(card),
                               "variants": [{"name": v.name, "config": list(v.config), "what": v.what}
                                            for v in card.variants]}, indent=2))
        return
    click.echo(f"{name}: {get_method_class(name).paper}")
    click.echo(f"fidelity card ({card.source}): {card.summary()}")
    for kind in KINDS:
        rows = [r for r in card_rows(card) if r["kind"] == kind]
        if not rows:
            continue
        click.echo(f"\n{kind}s")
        for r in rows:
            click.echo(f"  [{r['status_text']}] {r['item']}")
            click.echo(f"      paper: {r['paper']}; code: {r['code']}" + (f"; config: {r['config']}" if r["config"] else ""))
            if r["why"]:
                click.echo(f"      why: {r['why']}")
    if card.variants:
        click.echo("\nvariants (not the default)")
        for v in card.variants:
            click.echo(f"  {v.name}: {v.what} ({' '.join(v.config)})")


def method_table(*, latency: bool = False, device: str = "auto") -> list[dict]:
    """The rows of ``vibench methods list --json``: for each method {name, paper, params:
    {sysu, regdb, llcm} (registered parameters of the paper config), effective_params, [latency]}."""
    rows = []
    for name in available_methods():
        cls = get_method_class(name)
        row: dict = {"name": name, "paper": cls.paper}
        try:
            counts = paper_parameter_counts(name)
            row["params"] = counts["params"]
            row["effective_params"] = counts["effective"]
            if latency:
                row["latency"] = _paper_latency(name, device)
        except VibenchError as exc:
            row["error"] = str(exc)
        rows.append(row)
    return rows


def _paper_latency(name: str, device: str) -> dict:
    cfg = load_config(name, "paper", dataset="sysu")
    without_weights(cfg)  # counted/timed only: no weight file needed
    method = get_method_class(name)(cfg, "sysu")
    torch.manual_seed(0)
    model = method.build_model(NUM_CLASSES["sysu"])
    return measure_latency(method, model, resolve_device(device), warmup=3, repeats=10)


@methods.command("costs")
@click.option("--methods", "names", default="all", show_default=True, help="'all' or comma-separated method names.")
@click.option("--config", default="paper", show_default=True, help="Config to measure (paper, tiny or a YAML file).")
@click.option("--dataset", type=click.Choice(sorted(NUM_CLASSES)), default="sysu", show_default=True,
              help="Dataset whose class count and config section apply.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--threads", type=int, default=None, help="CPU compute threads (default: as configured).")
@click.option("--gallery", type=int, default=64, show_default=True,
              help="Gallery images for the per-query latency (at least BIT's K = 50).")
@click.option("--warmup", type=int, default=2, show_default=True)
@click.option("--repeats", type=int, default=5, show_default=True)
@click.option("--note", default="", help="Conditions of the measurement, stored with it (e.g. a busy machine).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the JSON document here (entries of methods not measured now are kept); default: print it.")
def costs_cmd(names: str, config: str, dataset: str, device: str, threads: int | None, gallery: int,
              warmup: int, repeats: int, note: str, out: Path | None) -> None:
    """Parameters, FLOPs and latency per image and per query of each method's config (batch 1,
    fp32 on CPU), with config hash, device, threads, torch version and date."""
    if threads is not None:
        if threads < 1:
            raise VibenchError(f"--threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)
    dev = resolve_device(device)
    entries = {}
    for name in resolve_methods(names):
        click.echo(f"measuring {name} ({config}, {dataset}) on {device} ...", err=True)
        entries[name] = paper_costs(name, dataset=dataset, config=config, device=dev, gallery=gallery,
                                    warmup=warmup, repeats=repeats)
        e = entries[name]
        click.echo(f"  {name}: {e['params']['registered']:,} params, {e['flops']['per_image'] / 1e9:.2f} GFLOPs/image, "
                   f"{e['latency']['ms_per_image']:.1f} ms/image, {e['latency']['ms_per_query']:.1f} ms/query", err=True)
    previous = None
    if out is not None and out.is_file():
        try:
            previous = json.loads(out.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise VibenchError(f"--out {out}: not a readable costs document ({exc})") from exc
    doc = costs_document(entries, device=device_name(dev), threads=torch.get_num_threads(), note=note,
                         command=shlex.join(["vibench", "methods", "costs", "--methods", names, "--config", config,
                                             "--dataset", dataset, "--device", device, "--threads",
                                             str(torch.get_num_threads()), "--gallery", str(gallery),
                                             "--warmup", str(warmup), "--repeats", str(repeats)]),
                         date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                         previous=previous)
    if out is None:
        click.echo(json.dumps(doc, indent=2))
        return
    write_json_atomic(out, doc)
    click.echo(f"wrote {out} ({len(entries)} method(s) measured)")


@click.command("train")
@click.option("--method", "method_name", required=True, help="Registered method name (vibench methods list).")
@click.option("--dataset", required=True, help="sysu, regdb or llcm.")
@click.option("--root", type=click.Path(path_type=Path), default=None, help="Dataset root; default: built-in synthetic data.")
@click.option("--scale", type=click.Choice(list(SCALES)), default="tiny", show_default=True,
              help="Synthetic scale when --root is not given.")
@click.option("--config", "config", default="tiny", show_default=True, help="paper, tiny or a YAML file.")
@click.option("--set", "overrides", multiple=True, help="Config override key.sub=value (repeatable).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/train"), show_default=True,
              help="Result store directory (the format of `vibench run --out`).")
@click.option("--protocols", "protocol_expr", default=None, help="Protocols or groups; default: the dataset's group.")
@click.option("--split", type=int, default=None, help="One training split (RegDB 1..10); default: all.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--overwrite", type=click.Choice(["never", "missing", "always"]), default="missing", show_default=True)
@click.option("--weights", "weights", multiple=True, metavar="BACKBONE=PATH",
              help="Weight file for the backbone BACKBONE (as `vibench run --weights`).")
@click.option("--allow-random-init", is_flag=True, help="Let a paper config train from random initialisation (recorded).")
def train_cmd(method_name: str, dataset: str, root: Path | None, scale: str, config: str, overrides: tuple[str, ...],
              device: str, out: Path, protocol_expr: str | None, split: int | None, seed: int, overwrite: str,
              weights: tuple[str, ...], allow_random_init: bool) -> None:
    """Train METHOD on DATASET, extract features and evaluate every protocol and trial.

    The same pipeline as `vibench run` for one method and dataset (one cell, or one per RegDB
    split), written into the result store at --out.
    """
    if dataset not in DATASETS:
        raise unknown_name("dataset", dataset, DATASETS)
    specs = [s for s in resolve_protocols(protocol_expr or dataset, kind="evaluation") if s.dataset == dataset]
    if not specs:
        raise VibenchError(f"no evaluation protocol of dataset {dataset!r} in {protocol_expr or dataset!r}")
    if split is not None and dataset != "regdb" and split != 0:
        raise VibenchError(f"{dataset} has only split 0, not {split}")
    opts = RunOptions(methods=method_name, protocols=",".join(s.name for s in specs), config=config,
                      overrides=tuple(overrides), seeds=(seed,), device=device, out=out, overwrite=overwrite,
                      synthetic_scale=scale, data_roots=(f"{dataset}={root}",) if root is not None else (),
                      regdb_splits=(split,) if split is not None and dataset == "regdb" else None,
                      weights=tuple(weights), allow_random_init=allow_random_init)
    code = run_matrix(opts)
    if code:
        sys.exit(code)
