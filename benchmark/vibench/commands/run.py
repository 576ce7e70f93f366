"""`vibench run`, `vibench suites`, `vibench check`, `vibench baseline`."""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from vibench.errors import VibenchError
from vibench.io import write_json_atomic
from vibench.paths import RESULTS_DIR
from vibench.data.synth.scales import SCALES
from vibench.runner.suites import SUITES

DEFAULT_OUT = RESULTS_DIR / "store"
DEFAULT_BASELINE = RESULTS_DIR / "baselines" / "ci.json"


def _split_csv(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


@click.command("run")
@click.option("--methods", "methods", default=None, help="'all' or comma-separated method names.")
@click.option("--protocols", "protocols", default=None, help="A group (sysu, regdb, llcm, mixed, unimodal, imbalance, all) or comma-separated protocol names.")
@click.option("--suite", type=click.Choice(list(SUITES)), default=None, help="A named selection; --methods/--protocols narrow or replace it.")
@click.option("--data-root", "data_roots", multiple=True, help="DIR holding SYSU-MM01/, RegDB/, LLCM/, or NAME=PATH; repeatable. Default: built-in synthetic data.")
@click.option("--config", default=None, help="Method config: tiny | paper (default: the suite's, else tiny).")
@click.option("--set", "overrides", multiple=True, help="Config override key.sub=value (repeatable).")
@click.option("--weights", "weights", multiple=True, metavar="BACKBONE=PATH",
              help="Weight file for the methods whose backbone (model.backbone / model.size) is BACKBONE; "
                   "repeatable, e.g. --weights resnet50=A.pth --weights vit_base=B.pth. Checked against the "
                   "known sha256 under model.init: imagenet (docs/training.md, 'Backbone initialisation').")
@click.option("--weights-dir", "weights_dir", type=click.Path(path_type=Path), default=None,
              help="Folder holding the ImageNet files under their published names (used for every model.init: imagenet "
                   "backbone; default: the torch hub cache $TORCH_HOME/hub/checkpoints, fetched on first use).")
@click.option("--allow-random-init", is_flag=True,
              help="Let paper configs train from random initialisation (refused otherwise; recorded in the results).")
@click.option("--seeds", default="0", show_default=True, help="Comma-separated training seeds.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_OUT, show_default=True, help="Result store directory.")
@click.option("--overwrite", type=click.Choice(["never", "missing", "always"]), default="missing", show_default=True,
              help="never: skip any completed cell; missing: compute only what is missing (adding a protocol only evaluates); always: recompute from scratch.")
@click.option("--executor", type=click.Choice(["local", "slurm"]), default="local", show_default=True)
@click.option("--gpus", default=None, help="local executor: comma-separated GPU ids, one cell per GPU at a time.")
@click.option("--slurm-folder", type=click.Path(path_type=Path), default=None, help="slurm executor: submitit log folder (default <out>/slurm).")
@click.option("--slurm-partition", default=None, help="slurm executor: partition (default: the cluster's default partition).")
@click.option("--slurm-timeout-min", type=int, default=24 * 60, show_default=True, help="slurm executor: time limit of each job.")
@click.option("--slurm-cpus-per-task", type=int, default=8, show_default=True,
              help="slurm executor: CPUs of each job (its compute threads, unless --threads).")
@click.option("--slurm-gpus-per-node", type=int, default=None, help="slurm executor: GPUs of each job (default: 0 with --device cpu, else 1).")
@click.option("--slurm-mem-gb", type=float, default=None, help="slurm executor: memory of each job (default: the partition's default).")
@click.option("--slurm-option", "slurm_options", multiple=True, help="slurm executor: extra sbatch option KEY=VALUE, e.g. account=myproject (repeatable).")
@click.option("--synthetic-scale", type=click.Choice(list(SCALES)), default=None, help="Scale of the built-in synthetic data (default: the suite's, else tiny).")
@click.option("--max-trials", type=int, default=None, help="Evaluate only the first N gallery trials of SYSU/LLCM protocols.")
@click.option("--regdb-splits", default=None, help="Comma-separated RegDB splits to run (default: the suite's, else all 10).")
@click.option("--plugins", default=None, help="Comma-separated modules to import that register extra methods.")
@click.option("--untrained-reference/--no-untrained-reference", default=None,
              help="Also evaluate each cell's untrained model (same seed) as a learnability reference (default: on for the smoke suite).")
@click.option("--jobs", type=int, default=1, show_default=True,
              help="CPU: run N cells at once (processes), the compute threads divided among them.")
@click.option("--threads", type=int, default=None,
              help="Compute threads in all (default: the CPUs this process may use: affinity, cgroup quota, SLURM_CPUS_PER_TASK).")
@click.option("--eval-every", type=int, default=None,
              help="Also evaluate every N epochs during training and store the curve (curve.json); "
                   "results still come from the last epoch (docs/training.md#checkpoint-selection).")
@click.option("--dry-run", is_flag=True, help="Print the planned cells and exit; with paper configs also each cell's epochs, iterations and estimated time.")
@click.option("--estimate-from", type=click.Path(path_type=Path), default=None,
              help="--dry-run: measured seconds per iteration from this rehearsal store or costs JSON "
                   "(default: the default store's rehearsal cells, else results/costs/rehearsal-<device>.json).")
def run_cmd(**opts: Any) -> None:
    """Train, extract and evaluate every selected method on every selected protocol.

    Completed cells are skipped; an interrupted run resumes where it stopped. Example:
    vibench run --methods all --protocols mixed
    """
    # lazy: the runner imports torch; `vibench suites` and --help stay torch-free
    from vibench.runner.matrix import RunOptions, run_matrix

    code = run_matrix(RunOptions.from_cli(opts))
    if code:
        click.get_current_context().exit(code)


@click.command("suites")
def suites_cmd() -> None:
    """Print what each suite covers."""
    for suite in SUITES.values():
        click.echo(suite.describe())
        click.echo("")


@click.command("check")
@click.option("--baseline", type=click.Path(path_type=Path), default=DEFAULT_BASELINE, show_default=True)
@click.option("--results", type=click.Path(path_type=Path), default=None, help="Check this result store instead of running the baseline's suite.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Where to run the suite (default: a temporary directory).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--exact-only", is_flag=True, help="Check only the exact part (data, protocol lists, reference features); no training.")
@click.option("--verbose", is_flag=True, help="List every checked value, not only failures and mAP bands.")
def check_cmd(baseline: Path, results: Path | None, out: Path | None, device: str, exact_only: bool, verbose: bool) -> None:
    """Regression check against a calibrated baseline: exact parts bit for bit (synthetic data,
    protocol lists, reference features, re-scored rankings), trained metrics against bands."""
    # lazy: the runner imports torch; `vibench suites` and --help stay torch-free
    from vibench.runner import regression as rg

    base = rg.load_baseline(baseline)
    selection = rg.Selection.from_dict(base["selection"])
    rows = rg.check_exact(base["exact"], rg.exact_fingerprint(selection, rg.reference_dir(baseline)))
    if not exact_only:
        if results is None:
            results = _run_selection(selection, out, device)
        elif not Path(results).is_dir():
            raise VibenchError(f"--results {results}: not a directory")
        rows += rg.check_store(base, Path(results))
    click.echo(rg.format_rows(rows, verbose=verbose))
    bad = [r for r in rows if r.failed]
    click.echo(f"\n{len(rows) - len(bad)} passed, {len(bad)} failed")
    if bad:
        sys.exit(1)


@click.command("baseline")
@click.option("--out", "path", type=click.Path(path_type=Path), default=DEFAULT_BASELINE, show_default=True)
@click.option("--work", type=click.Path(path_type=Path), default=None,
              help="Folder for the calibration runs (kept; finished runs are reused). Default: a temporary directory.")
@click.option("--seeds", default="0,1,2", show_default=True, help="Training seeds of the calibration.")
@click.option("--kernels", default=",".join(("native", "avx2", "scalar", "threads1")), show_default=True,
              help="CPU kernel paths of the calibration (see docs/testing.md).")
@click.option("--suite", default="ci", show_default=True, help="The synthetic suite the baseline covers.")
@click.option("--methods", default=None, help="Replace the suite's methods (a baseline for your own method).")
@click.option("--protocols", default=None, help="Replace the suite's protocols.")
@click.option("--set", "overrides", multiple=True, help="Config override key.sub=value (repeatable).")
@click.option("--finished-only", is_flag=True,
              help="Start no run: build the baseline from the calibration runs already finished in --work.")
def baseline_cmd(path: Path, work: Path | None, seeds: str, kernels: str, suite: str, methods: str | None,
                 protocols: str | None, overrides: tuple[str, ...], finished_only: bool) -> None:
    """Calibrate and write a regression baseline: the suite under every seed x CPU kernel path,
    bands from their spread, and the exact fingerprints (`vibench check` never writes it)."""
    # lazy: the runner imports torch; `vibench suites` and --help stay torch-free
    from vibench.runner import regression as rg
    # lazy: the runner imports torch; `vibench suites` and --help stay torch-free
    from vibench.runner.matrix import _ints

    selection = rg.Selection.for_suite(suite, methods=methods, protocols=protocols, overrides=overrides)
    if finished_only:
        if work is None:
            raise VibenchError("--finished-only needs --work (the folder holding the finished calibration runs)")
        stores = rg.finished_runs(Path(work))
    else:
        work = Path(work) if work else Path(tempfile.mkdtemp(prefix="vibench-calibration-"))
        stores = rg.run_calibration(selection, work, seeds=_ints(seeds, "--seeds"),
                                    kernels=rg.parse_kernels(kernels), echo=click.echo)
    reference = rg.reference_dir(path)
    rg.write_reference_features(selection, reference)
    data = rg.build_baseline(selection, stores, reference)
    write_json_atomic(path, data)
    bands = data["bands"]["metrics"]
    click.echo(f"wrote {path}: {len(data['exact']['protocol_lists'])} protocol lists, "
               f"{len(data['exact']['reference_metrics'])} reference scores, {len(bands)} bands from {len(stores)} runs "
               f"(reference features in {reference})")
    mean = bands.get(f"{rg.MEAN_KEY}/mAP")
    if mean:
        click.echo(f"mean mAP band: {100 * mean['centre']:.2f} +- {100 * (mean['hi'] - mean['centre']):.2f} points "
                   f"(spread {100 * mean['spread']:.2f})")


def _run_selection(selection: Any, out: Path | None, device: str) -> Path:
    # lazy: the runner imports torch; `vibench suites` and --help stay torch-free
    from vibench.runner.matrix import run_matrix

    target = Path(out) if out else Path(tempfile.mkdtemp(prefix="vibench-ci-"))
    start = time.perf_counter()
    code = run_matrix(selection.run_options(out=target, device=device))
    click.echo(f"{selection.suite} suite ran in {time.perf_counter() - start:.1f} s -> {target}")
    if code:
        raise VibenchError(f"the {selection.suite} suite had failing cells (see {target}/cells/*/error.txt)")
    return target
