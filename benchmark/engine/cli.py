"""``vibench methods list [--json]`` and ``vibench train``: thin wrappers over the engine.

``vibench train`` trains one method on one dataset (every RegDB split unless --split), extracts
the test features, evaluates the selected protocols and prints a table; the full method x
protocol matrix with a result store is ``vibench run``.
"""
from __future__ import annotations

import json
from pathlib import Path

import click

from vibench.errors import VibenchError


@click.group("methods")
def methods() -> None:
    """List the registered methods with their parameter counts."""


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


def method_table(*, latency: bool = False, device: str = "auto") -> list[dict]:
    """The rows of ``vibench methods list --json``: for each method {name, paper, params:
    {sysu, regdb, llcm} (registered parameters of the paper config), effective_params, [latency]}."""
    from vibench.engine.latency import paper_parameter_counts
    from vibench.registry import available_methods, get_method_class

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
    import torch

    from vibench.engine.config import load_config
    from vibench.engine.latency import NUM_CLASSES, measure_latency
    from vibench.engine.trainer import resolve_device
    from vibench.registry import get_method_class

    cfg = load_config(name, "paper", dataset="sysu")
    if isinstance(cfg.get("model"), dict):
        cfg["model"]["weights"] = None
    method = get_method_class(name)(cfg, "sysu")
    torch.manual_seed(0)
    model = method.build_model(NUM_CLASSES["sysu"])
    return measure_latency(method, model, resolve_device(device), warmup=3, repeats=10)


@click.command("train")
@click.option("--method", "method_name", required=True, help="Registered method name (vibench methods list).")
@click.option("--dataset", required=True, help="sysu, regdb or llcm.")
@click.option("--root", type=click.Path(path_type=Path), default=None, help="Dataset root; default: built-in synthetic data.")
@click.option("--scale", default="tiny", show_default=True, help="Synthetic scale when --root is not given.")
@click.option("--config", "config", default="tiny", show_default=True, help="paper, tiny or a YAML file.")
@click.option("--set", "overrides", multiple=True, help="Config override key.sub=value (repeatable).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/train"), show_default=True, help="Output directory.")
@click.option("--protocols", "protocol_expr", default=None, help="Protocols or groups; default: the dataset's group.")
@click.option("--split", type=int, default=None, help="One training split (RegDB 1..10); default: all.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bars.")
def train_cmd(method_name: str, dataset: str, root: Path | None, scale: str, config: str, overrides: tuple[str, ...],
              device: str, out: Path, protocol_expr: str | None, split: int | None, seed: int, quiet: bool) -> None:
    """Train METHOD on DATASET, extract features and evaluate every protocol and trial."""
    from vibench.data import load_dataset
    from vibench.engine.config import load_config
    from vibench.engine.evaluation import evaluate_protocols
    from vibench.engine.extract import extract_features
    from vibench.engine.latency import count_parameters
    from vibench.engine.trainer import resolve_device, train
    from vibench.io import write_json_atomic
    from vibench.protocols import resolve_protocols
    from vibench.registry import get_method_class

    get_method_class(method_name)
    cfg = load_config(method_name, config, dataset=dataset, overrides=overrides)  # validated before any work
    dev = resolve_device(device)
    if root is None:
        from vibench.data.synth import ensure_synthetic

        root = ensure_synthetic(dataset, scale=scale, seed=0)
        click.echo(f"using synthetic {dataset} ({scale}) at {root}")
    index = load_dataset(dataset, root)
    specs = [s for s in resolve_protocols(protocol_expr or dataset) if s.dataset == dataset and getattr(s, "kind", "evaluation") == "evaluation"]
    if not specs:
        raise VibenchError(f"no evaluation protocol of dataset {dataset!r} in {protocol_expr or dataset!r}")
    splits = [split] if split is not None else list(index.splits)
    for s in splits:
        if s not in index.splits:
            raise VibenchError(f"{dataset} has no split {s}; splits are {list(index.splits)}")
    summary: dict[str, dict] = {}
    for s in splits:
        workdir = out / method_name / dataset / f"split-{s}" / f"seed-{seed}"
        trained = train(method_name, cfg, index, s, seed=seed, device=dev, workdir=workdir, progress=not quiet,
                        log=None if quiet else click.echo)
        feats = extract_features(trained.method, trained.model, index.test(s), index.root, trained.cfg, dev)
        results = {}
        for spec in specs:
            try:
                results.update(evaluate_protocols(trained, index, s, [spec], device=dev, features=feats))
            except VibenchError as exc:  # e.g. an '-official' protocol without rand_perm_cam.mat
                click.echo(f"skipped {spec.name}: {exc}", err=True)
        record = {
            "method": method_name, "dataset": dataset, "split": s, "seed": seed, "config": cfg,
            "params": count_parameters(trained.model, trained.method), "init": trained.init,
            "train_seconds": trained.train_seconds,
            "protocols": {name: {"summary": r["summary"],
                                 "trials": {str(t): {"cmc": [float(x) for x in res.cmc], "mAP": res.mAP, "mINP": res.mINP}
                                            for t, res in r["trials"].items()}}
                          for name, r in results.items()},
        }
        write_json_atomic(workdir / "results.json", record)
        for name, r in results.items():
            summary.setdefault(name, {}).setdefault("splits", []).append(r["summary"])
    click.echo(f"{'protocol':<28} {'R1':>7} {'R10':>7} {'R20':>7} {'mAP':>7} {'mINP':>7}")
    for name, v in summary.items():
        rows = v["splits"]
        mean = {k: sum(r.get(k, 0.0) for r in rows) / len(rows) for k in ("rank1", "rank10", "rank20", "mAP", "mINP")}
        click.echo(f"{name:<28} " + " ".join(f"{100 * mean[k]:7.2f}" for k in ("rank1", "rank10", "rank20", "mAP", "mINP")))
