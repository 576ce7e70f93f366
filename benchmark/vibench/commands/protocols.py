"""``vibench protocols``: list the declared protocols; show one protocol's materialised lists.

``vibench protocols list [--group G] [--json]``
``vibench protocols show NAME [--root PATH | --dataset-scale tiny] [--trial T] [--seed N] [--json]``

``show`` reads the dataset with ``vibench.data.load_dataset``; without ``--root`` it uses the
built-in synthetic dataset (``vibench.data.synth.ensure_synthetic``, scale ``--dataset-scale``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from vibench.data import load_dataset
from vibench.data.synth import ensure_synthetic
from vibench.errors import VibenchError
from vibench.protocols.build import build_lists, check_trial
from vibench.protocols.catalog import get_protocol, protocol_groups, resolve_protocols
from vibench.protocols.imbalance import plan_reduction


def _row(spec: Any) -> dict[str, Any]:
    return {"name": spec.name, "dataset": spec.dataset, "family": spec.family,
            "version": spec.version, "kind": spec.kind, "trials": list(spec.trials),
            "rule": spec.rule, "cmc": spec.cmc, "sampler": spec.sampler.kind if spec.sampler else None,
            "flags": list(spec.flags), "description": spec.description}


def _sampler_text(spec: Any) -> str:
    if spec.sampler is None:
        return f"training: -{spec.reduction.fraction:.0%} {spec.reduction.modality} per id"
    text = spec.sampler.kind
    if spec.sampler.kind in ("multi-shot", "official"):
        text += f"/{spec.sampler.shots}"
    if spec.sampler.applies_to == "query":
        text += "(query)"
    return text


@click.group("protocols")
def protocols() -> None:
    """List protocols; show materialised query/gallery lists."""


@protocols.command("list")
@click.option("--group", "group", default="all", show_default=True,
              help="A group (sysu, regdb, llcm, mixed, unimodal, imbalance, all) or comma-separated names.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_cmd(group: str, as_json: bool) -> None:
    """Every protocol: name, dataset, family, version, trials, rule, cmc."""
    specs = resolve_protocols(group)
    if as_json:
        click.echo(json.dumps({"protocols": [_row(s) for s in specs],
                               "groups": {k: list(v) for k, v in protocol_groups().items()}}, indent=2))
        return
    header = ("name", "dataset", "family", "v", "trials", "rule", "cmc", "sampler")
    rows = []
    for s in specs:
        trials = f"{s.trials[0]}-{s.trials[-1]}" if len(s.trials) > 1 else (str(s.trials[0]) if s.trials else "-")
        rows.append((s.name, s.dataset, s.family, str(s.version), trials, s.rule or "-", s.cmc or "-",
                     _sampler_text(s)))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def _open_dataset(dataset: str, root: Path | None, scale: str, seed: int) -> tuple[Any, dict[str, Any]]:
    if root is not None:
        return load_dataset(dataset, root), {"root": str(root), "synthetic": False}

    synth_root = ensure_synthetic(dataset, scale, seed)
    return load_dataset(dataset, synth_root), {"root": str(synth_root), "synthetic": True,
                                               "scale": scale, "seed": seed}


@protocols.command("show")
@click.argument("name")
@click.option("--root", type=click.Path(path_type=Path), default=None,
              help="Dataset root in the real layout; without it the synthetic dataset is used.")
@click.option("--dataset-scale", "scale", default="tiny", show_default=True,
              help="Synthetic dataset scale when no --root is given (tiny, small, paper).")
@click.option("--data-seed", "data_seed", default=0, show_default=True, type=int,
              help="Synthetic dataset seed when no --root is given.")
@click.option("--trial", default=None, type=int,
              help="The protocol's own trial id (0-9 SYSU/LLCM, split 1-10 RegDB); default: its first.")
@click.option("--seed", default=0, show_default=True, type=int,
              help="Training-variant (imbalance) seed.")
@click.option("--json", "as_json", is_flag=True, help="Print the full lists as JSON.")
def show_cmd(name: str, root: Path | None, scale: str, data_seed: int, trial: int | None,
             seed: int, as_json: bool) -> None:
    """Materialise NAME's query and gallery lists for one trial (paths relative to the root)."""
    spec = get_protocol(name)
    if spec.is_training:
        if trial is not None:
            raise VibenchError(f"protocol {name!r} is a training variant: it has no trials "
                               f"(it is evaluated with {', '.join(spec.evaluate_with)})")
        index, data = _open_dataset(spec.dataset, root, scale, data_seed)
        train = index.train()
        plan = plan_reduction(spec, train, seed)
        assert spec.reduction is not None
        before = sum(r.modality == spec.reduction.modality for r in train)
        out: dict[str, Any] = {"protocol": spec.to_dict(), "dataset": data, "seed": seed,
                               "train_images": len(train), "reduced_modality_images": before,
                               "removed": [r.to_dict() for r in plan.removed],
                               "num_removed": len(plan.removed), "capped_pids": list(plan.capped_pids)}
        if as_json:
            click.echo(json.dumps(out, indent=2))
        else:
            click.echo(f"{spec.name}: {spec.description}\n  dataset root: {data['root']}\n  removes "
                       f"{len(plan.removed)} of {before} {spec.reduction.modality} training images "
                       f"(seed {seed}); evaluate with {', '.join(spec.evaluate_with)}")
        return
    trial = check_trial(spec, spec.trials[0] if trial is None else trial)
    index, data = _open_dataset(spec.dataset, root, scale, data_seed)
    lists = build_lists(spec, index, trial)
    if as_json:
        out = {**lists.to_dict(), "protocol": spec.to_dict(), "dataset": data}
        click.echo(json.dumps(out, indent=2))
        return
    in_gallery = int((lists.query_gallery_index >= 0).sum())
    click.echo(f"{spec.name} (v{spec.version}, {spec.dataset}): {spec.description}\n"
               f"  dataset root: {data['root']}{' (synthetic)' if data['synthetic'] else ''}\n"
               f"  trial {trial}: {len(lists.query)} queries, {len(lists.gallery)} gallery images, "
               f"{in_gallery} queries also in the gallery\n"
               f"  rule {spec.rule}, cmc {spec.cmc}, max rank {spec.max_rank}\n"
               f"  lists sha256 {lists.sha256}")
    for side, items in (("query", lists.query), ("gallery", lists.gallery)):
        click.echo(f"  {side} (first 5):")
        for r in items[:5]:
            click.echo(f"    {r.path}  pid={r.pid} cam={r.cam} {r.modality}")
