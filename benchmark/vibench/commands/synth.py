"""`vibench data synth`: write a synthetic dataset in the real on-disk layout."""
from __future__ import annotations

import time
from pathlib import Path

import click

from vibench.data.synth.scales import DATASETS, SCALES, check_dataset, get_scale
from vibench.data.synth.writer import generate, read_marker


@click.command("synth")
@click.option("--dataset", required=True, help=f"One of {', '.join(DATASETS)}.")
@click.option("--root", required=True, type=click.Path(path_type=Path),
              help="Folder to create (new or empty); the tree is renamed into place when complete.")
@click.option("--scale", default="tiny", show_default=True, help=f"One of {', '.join(SCALES)}.")
@click.option("--seed", default=0, show_default=True, type=int, help="Same seed, same bytes.")
@click.option("--workers", default=1, show_default=True, type=int,
              help="Rendering processes (the output does not depend on it).")
@click.option("--overwrite", is_flag=True, help="Replace an existing non-empty root.")
def synth(dataset: str, root: Path, scale: str, seed: int, workers: int, overwrite: bool) -> None:
    """Generate a synthetic SYSU-MM01, RegDB or LLCM tree of procedural pedestrians."""
    get_scale(check_dataset(dataset), scale)
    started = time.perf_counter()
    out = generate(dataset, root, scale, seed, workers=workers, overwrite=overwrite)
    seconds = time.perf_counter() - started
    counts = (read_marker(out) or {}).get("summary", {})
    click.echo(f"wrote synthetic {dataset} ({scale}, seed {seed}) to {out} in {seconds:.1f} s: "
               f"{counts.get('ids')} ids, {counts.get('visible')} visible + "
               f"{counts.get('infrared')} infrared images")
    for camera, n in sorted(counts.get("per_camera", {}).items()):
        click.echo(f"  {camera}: {n}")
