"""`vibench run`, `vibench suites`, `vibench check`, `vibench baseline`."""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from vibench.errors import VibenchError
from vibench.paths import RESULTS_DIR

DEFAULT_OUT = RESULTS_DIR / "store"
DEFAULT_BASELINE = RESULTS_DIR / "baselines" / "ci.json"


def _split_csv(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


@click.command("run")
@click.option("--methods", "methods", default=None, help="'all' or comma-separated method names.")
@click.option("--protocols", "protocols", default=None, help="A group (sysu, regdb, llcm, mixed, unimodal, imbalance, all) or comma-separated protocol names.")
@click.option("--suite", type=click.Choice(["smoke", "ci", "paper"]), default=None, help="A named selection; --methods/--protocols narrow or replace it.")
@click.option("--data-root", "data_roots", multiple=True, help="DIR holding SYSU-MM01/, RegDB/, LLCM/, or NAME=PATH; repeatable. Default: built-in synthetic data.")
@click.option("--config", default=None, help="Method config: tiny | paper (default: the suite's, else tiny).")
@click.option("--set", "overrides", multiple=True, help="Config override key.sub=value (repeatable).")
@click.option("--seeds", default="0", show_default=True, help="Comma-separated training seeds.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_OUT, show_default=True, help="Result store directory.")
@click.option("--overwrite", type=click.Choice(["never", "missing", "always"]), default="missing", show_default=True,
              help="never: skip any completed cell; missing: compute only what is missing (adding a protocol only evaluates); always: recompute from scratch.")
@click.option("--executor", type=click.Choice(["local", "slurm"]), default="local", show_default=True)
@click.option("--gpus", default=None, help="local executor: comma-separated GPU ids, one cell per GPU at a time.")
@click.option("--slurm-folder", type=click.Path(path_type=Path), default=None, help="slurm executor: submitit log folder (default <out>/slurm).")
@click.option("--slurm-partition", default=None)
@click.option("--slurm-timeout-min", type=int, default=24 * 60, show_default=True)
@click.option("--synthetic-scale", type=click.Choice(["tiny", "small", "paper"]), default=None, help="Scale of the built-in synthetic data (default: the suite's, else tiny).")
@click.option("--max-trials", type=int, default=None, help="Evaluate only the first N gallery trials of SYSU/LLCM protocols.")
@click.option("--regdb-splits", default=None, help="Comma-separated RegDB splits to run (default: the suite's, else all 10).")
@click.option("--plugins", default=None, help="Comma-separated modules to import that register extra methods.")
@click.option("--untrained-reference/--no-untrained-reference", default=None,
              help="Also evaluate each cell's untrained model (same seed) as a learnability reference (default: on for the smoke suite).")
@click.option("--dry-run", is_flag=True, help="Print the planned cells and exit.")
def run_cmd(**opts: Any) -> None:
    """Train, extract and evaluate every selected method on every selected protocol.

    Completed cells are skipped; an interrupted run resumes where it stopped. Example:
    vibench run --methods all --protocols mixed
    """
    from vibench.runner.matrix import RunOptions, run_matrix

    code = run_matrix(RunOptions.from_cli(opts))
    if code:
        sys.exit(code)


@click.command("suites")
def suites_cmd() -> None:
    """Print what each suite covers."""
    from vibench.runner.suites import SUITES

    for suite in SUITES.values():
        click.echo(suite.describe())
        click.echo("")


@click.command("check")
@click.option("--baseline", type=click.Path(path_type=Path), default=DEFAULT_BASELINE, show_default=True)
@click.option("--tolerance", default=None, help="Absolute tolerance in fractions: 0.03, or default=0.03,mAP=0.05 (default: the baseline's).")
@click.option("--results", type=click.Path(path_type=Path), default=None, help="Compare this result store instead of running the ci suite.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Where to run the ci suite (default: a temporary directory).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu", show_default=True)
def check_cmd(baseline: Path, tolerance: str | None, results: Path | None, out: Path | None, device: str) -> None:
    """Regression check: run the ci suite (or read --results) and compare with a baseline."""
    from vibench.runner.check import compare, flatten_results, format_rows, load_baseline, parse_tolerance

    base = load_baseline(baseline)
    tol = parse_tolerance(tolerance, base.get("tolerance"))
    if results is None:
        results = _run_ci_suite(out, device)
    elif not Path(results).is_dir():
        raise VibenchError(f"--results {results}: not a directory")
    rows = compare(base, flatten_results(results), tol)
    click.echo(format_rows(rows))
    bad = [r for r in rows if r.status in ("FAIL", "MISSING")]
    click.echo(f"\n{len(rows) - len(bad)} passed, {len(bad)} failed")
    if bad:
        sys.exit(1)


@click.command("baseline")
@click.option("--out", "path", type=click.Path(path_type=Path), default=DEFAULT_BASELINE, show_default=True)
@click.option("--results", type=click.Path(path_type=Path), default=None, help="Use this result store instead of running the ci suite.")
@click.option("--tolerance", default=None, help="Tolerance stored in the baseline (default 0.03).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu", show_default=True)
def baseline_cmd(path: Path, results: Path | None, tolerance: str | None, device: str) -> None:
    """Refresh the committed regression baseline (explicitly; `vibench check` never writes it)."""
    from vibench.runner.check import parse_tolerance, write_baseline

    if results is None:
        results = _run_ci_suite(None, device)
    data = write_baseline(path, results, "ci", parse_tolerance(tolerance))
    click.echo(f"wrote {path} ({len(data['metrics'])} metrics)")


def _run_ci_suite(out: Path | None, device: str) -> Path:
    from vibench.runner.matrix import RunOptions, run_matrix

    target = Path(out) if out else Path(tempfile.mkdtemp(prefix="vibench-ci-"))
    start = time.perf_counter()
    code = run_matrix(RunOptions.for_suite("ci", out=target, device=device))
    click.echo(f"ci suite ran in {time.perf_counter() - start:.1f} s -> {target}")
    if code:
        raise VibenchError(f"the ci suite had failing cells (see {target}/cells/*/error.txt)")
    return target
