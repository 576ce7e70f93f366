"""The run matrix: resolve a suite and the --methods/--protocols selection into cells, run them
with the chosen executor, show progress (cells done, current phase, ETA) and print a summary."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import click
from tqdm import tqdm

from vibench.errors import VibenchError
from vibench.protocols import resolve_protocols
from vibench.registry import load_plugin, resolve_methods
from vibench.runner import estimate, executors
from vibench.runner.cells import CellPlan, plan_cells
from vibench.runner.datasources import DataSources
from vibench.runner.runtime import load_method_config
from vibench.runner.runtime import resolve_device as runtime_device
from vibench.runner.suites import get_suite
from vibench.runner.threads import configure_torch, threads_per_job
from vibench.runner.weights import WeightChoices, planned_init


@dataclass
class RunOptions:
    methods: str = "all"
    protocols: str = "all"
    suite: str | None = None
    data_roots: tuple[str, ...] = ()
    config: str = "tiny"
    overrides: tuple[str, ...] = ()
    seeds: tuple[int, ...] = (0,)
    device: str = "auto"
    out: Path = Path("results/store")
    overwrite: str = "missing"
    executor: str = "local"
    gpus: tuple[int, ...] = ()
    slurm_folder: Path | None = None
    slurm_parameters: dict[str, Any] = field(default_factory=dict)
    synthetic_scale: str = "tiny"
    max_trials: int | None = None
    regdb_splits: tuple[int, ...] | None = None
    plugins: tuple[str, ...] = ()
    dry_run: bool = False
    untrained_reference: bool = False
    jobs: int = 1
    threads: int | None = None
    eval_every: int | None = None
    #: extra overrides for some methods: ((method, (key=value, ...)), ...)
    method_overrides: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: paper configs may start from random initialisation (explicit; the rehearsal sets it;
    #: --allow-random-init, vibench.runner.weights)
    allow_random_init: bool = False
    #: evaluate on the first N test identities only
    test_ids: int | None = None
    #: print the training-cost table after the run and write <out>/rehearsal-<device>.json
    show_costs: bool = False
    #: --dry-run cost estimate from this store or costs JSON (default: vibench.runner.estimate)
    estimate_from: Path | None = None
    #: --weights NAME=PATH items and --weights-dir (vibench.runner.weights)
    weights: tuple[str, ...] = ()
    weights_dir: str | None = None
    #: the suite's CPU-only overrides (Suite.cpu_overrides, cpu_method_overrides)
    cpu_overrides: tuple[str, ...] = ()
    cpu_method_overrides: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @classmethod
    def for_suite(cls, name: str, **kw: Any) -> "RunOptions":
        suite = get_suite(name)
        opts = cls(methods=suite.methods, protocols=suite.protocols, suite=name, config=suite.config,
                   overrides=suite.overrides, synthetic_scale=suite.synthetic_scale or "tiny",
                   max_trials=suite.max_trials, regdb_splits=suite.regdb_splits,
                   untrained_reference=suite.untrained_reference, method_overrides=suite.method_overrides,
                   allow_random_init=suite.allow_random_init, test_ids=suite.test_ids,
                   show_costs=suite.show_costs, cpu_overrides=suite.cpu_overrides,
                   cpu_method_overrides=suite.cpu_method_overrides)
        for key, value in kw.items():
            setattr(opts, key, value)
        return opts

    @classmethod
    def from_cli(cls, o: dict[str, Any]) -> "RunOptions":
        opts = cls.for_suite(o["suite"]) if o.get("suite") else cls()
        if o.get("suite") == "paper" and not o.get("data_roots") and not o.get("dry_run"):
            raise VibenchError("the paper suite runs on the real datasets: give --data-root (see README, 'Real data'); "
                               "--dry-run without it estimates the cost from the real datasets' known sizes")
        if o.get("methods"):
            opts.methods = o["methods"]
        if o.get("protocols"):
            opts.protocols = o["protocols"]
        if o.get("config"):
            opts.config = o["config"]
        if o.get("synthetic_scale"):
            opts.synthetic_scale = o["synthetic_scale"]
        if o.get("max_trials") is not None:
            opts.max_trials = o["max_trials"]
        if o.get("regdb_splits"):
            opts.regdb_splits = tuple(_ints(o["regdb_splits"], "--regdb-splits"))
        opts.overrides = tuple(opts.overrides) + tuple(o.get("overrides") or ())
        opts.data_roots = tuple(o.get("data_roots") or ())
        opts.seeds = tuple(_ints(o.get("seeds") or "0", "--seeds"))
        opts.device = o.get("device") or "auto"
        opts.out = Path(o["out"])
        opts.overwrite = o.get("overwrite") or "missing"
        opts.executor = o.get("executor") or "local"
        opts.gpus = tuple(_ints(o["gpus"], "--gpus")) if o.get("gpus") else ()
        opts.slurm_folder = o.get("slurm_folder")
        gpus_per_node = o.get("slurm_gpus_per_node")
        opts.slurm_parameters = executors.slurm_parameters(
            partition=o.get("slurm_partition"), timeout_min=o.get("slurm_timeout_min"),
            cpus_per_task=o.get("slurm_cpus_per_task"), mem_gb=o.get("slurm_mem_gb"),
            gpus_per_node=(0 if opts.device == "cpu" else 1) if gpus_per_node is None else gpus_per_node,
            options=o.get("slurm_options") or ())
        opts.plugins = tuple(v.strip() for v in (o.get("plugins") or "").split(",") if v.strip())
        opts.dry_run = bool(o.get("dry_run"))
        if o.get("estimate_from"):
            opts.estimate_from = Path(o["estimate_from"])
        opts.jobs = 1 if o.get("jobs") is None else int(o["jobs"])
        opts.threads = o.get("threads")
        if opts.jobs < 1 or (opts.threads is not None and opts.threads < 1):
            raise VibenchError(f"--jobs {opts.jobs} / --threads {opts.threads}: expected positive integers (--threads may be left out)")
        if opts.jobs > 1 and (opts.executor == "slurm" or opts.gpus):
            raise VibenchError("--jobs runs several cells at once on a CPU machine; with --gpus the pool "
                               "runs one cell per GPU, and the slurm executor one job per cell")
        if o.get("untrained_reference") is not None:
            opts.untrained_reference = bool(o["untrained_reference"])
        if o.get("eval_every") is not None:
            if int(o["eval_every"]) < 1:
                raise VibenchError(f"--eval-every {o['eval_every']}: expected a positive number of epochs")
            opts.eval_every = int(o["eval_every"])
        opts.weights = tuple(o.get("weights") or ())
        opts.weights_dir = o.get("weights_dir")
        opts.allow_random_init = opts.allow_random_init or bool(o.get("allow_random_init"))
        return opts


def _ints(text: str, flag: str) -> list[int]:
    try:
        return [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise VibenchError(f"{flag} {text!r}: expected comma-separated integers") from None


def data_sources(opts: RunOptions) -> DataSources:
    return DataSources.parse(opts.data_roots, synthetic_scale=opts.synthetic_scale, test_ids=opts.test_ids)


def plan(opts: RunOptions) -> list[CellPlan]:
    """The cells of a request, each with its full identity (config hash, data source). Methods
    with their own overrides (RunOptions.method_overrides) are planned with the common ones
    followed by theirs."""
    for module in opts.plugins:
        load_plugin(module)
    methods = resolve_methods(opts.methods)
    specs = resolve_protocols(opts.protocols)
    extra = {m: tuple(items) for m, items in opts.method_overrides}
    if (opts.cpu_overrides or opts.cpu_method_overrides) and runtime_device(opts.device) == "cpu":
        cpu = dict(opts.cpu_method_overrides)
        extra = {m: extra.get(m, ()) + tuple(opts.cpu_overrides) + tuple(cpu.get(m, ())) for m in methods}
    data = data_sources(opts)
    weights = WeightChoices.parse(opts.weights, opts.weights_dir)
    plans: list[CellPlan] = []
    for method in methods:
        plans += plan_cells([method], specs, seeds=opts.seeds, config=opts.config,
                            overrides=tuple(opts.overrides) + tuple(extra.get(method, ())),
                            max_trials=opts.max_trials, regdb_splits=opts.regdb_splits,
                            untrained_reference=opts.untrained_reference, data=data,
                            weights=weights, allow_random_init=opts.allow_random_init)
    weights.check_used()
    plans = sorted(plans, key=lambda p: p.cell)
    return [replace(p, eval_every=opts.eval_every) for p in plans] if opts.eval_every else plans


def validate_configs(plans: list[CellPlan], *, locate: bool = True) -> None:
    """Resolve and validate every planned cell's config before the first cell starts, so a bad
    key or value (in the file or a --set), a paper config left at random initialisation, or a
    weight file that is missing or damaged (`locate`: look for the files) stops the run with
    nothing computed."""
    seen = set()
    for p in plans:
        key = (p.cell.method, p.config, p.cell.dataset, tuple(p.overrides))
        if key not in seen:
            seen.add(key)
            planned_init(p.cell.method, p.config, load_method_config(*key), p.overrides, p.allow_random_init,
                         locate=locate)


def run_matrix(opts: RunOptions) -> int:
    """Run every planned cell; returns 0, or 1 when any cell failed (reported at the end)."""
    data = data_sources(opts)
    plans = plan(opts)
    if not plans:
        raise VibenchError("the selection is empty: no method x protocol cell to run")
    validate_configs(plans, locate=not opts.dry_run)
    _print_plan(opts, plans)
    if opts.dry_run:
        if opts.config == "paper":
            click.echo(estimate.format_estimate(estimate.estimate_plans(
                plans, data, device=opts.device, source=opts.estimate_from)))
        return 0
    options = {"out": str(opts.out), "data": data.to_dict(), "device": opts.device, "overwrite": opts.overwrite}
    display = Progress(len(plans))
    start = time.perf_counter()
    workers = len(opts.gpus) if len(opts.gpus) > 1 else opts.jobs
    threads = threads_per_job(workers, opts.threads)
    if opts.executor == "slurm":
        outcomes = executors.run_submitit(plans, {**options, "threads": opts.threads},
                                          folder=opts.slurm_folder or opts.out / "slurm",
                                          parameters=opts.slurm_parameters, on_done=display.done)
    elif len(opts.gpus) > 1:
        outcomes = executors.run_gpu_pool(plans, options, opts.gpus, on_done=display.done, threads=threads)
    elif opts.jobs > 1:
        outcomes = executors.run_pool(plans, options, workers=opts.jobs, threads=threads, on_done=display.done)
    else:
        if len(opts.gpus) == 1:
            options["device"] = f"cuda:{opts.gpus[0]}"
        configure_torch(threads)
        outcomes = executors.run_local(plans, options, on_done=display.done, on_phase=display.phase)
    display.close()
    elapsed = time.perf_counter() - start
    print_summary(outcomes, elapsed)
    if opts.show_costs:
        click.echo("")
        click.echo(estimate.format_costs(outcomes))
        if opts.allow_random_init:
            click.echo("(trained from random initialisation, allowed explicitly: a shape/time check, not a result)")
        written = estimate.write_measured_costs(opts.out, runtime_device(options["device"]))
        if written is not None:
            click.echo(f"measured costs per method: {written}")
    return 1 if any(o["status"] == "failed" for o in outcomes) else 0


def _print_plan(opts: RunOptions, plans: list[CellPlan]) -> None:
    suite = f"suite {opts.suite}, " if opts.suite else ""
    click.echo(f"vibench run: {suite}{len(plans)} cells, config {opts.config}, out {opts.out}", err=True)
    if opts.dry_run:
        for p in plans:
            protos = ", ".join(f"{n}[{','.join(map(str, t))}]" for n, t in p.protocols)
            click.echo(f"  {p.cell.cell_id}: {protos}")


class Progress:
    """Cells done / total, the current cell and phase, and the ETA (tqdm on stderr)."""

    def __init__(self, total: int) -> None:
        self.bar = tqdm(total=total, unit="cell", file=sys.stderr, dynamic_ncols=True,
                        disable=None, bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} cells [{elapsed}<{remaining}] {postfix}")
        self.failed = 0

    def phase(self, cell_id: str, phase: str) -> None:
        self.bar.set_postfix_str(f"{cell_id}: {phase}")

    def done(self, outcome: dict[str, Any]) -> None:
        if outcome["status"] == "failed":
            self.failed += 1
        for note in outcome.get("notes") or ():  # what verification found, what was recomputed
            self.bar.write(f"{outcome['status']} {outcome['cell']['cell_id']}: {note}", file=sys.stderr)
        self.bar.update(1)
        self.bar.set_postfix_str(f"{outcome['cell']['cell_id']}: {outcome['status']}")

    def close(self) -> None:
        self.bar.close()


def print_summary(outcomes: list[dict[str, Any]], elapsed: float) -> None:
    """The summary table: one line per (cell, protocol) with R1/mAP/mINP in percent."""
    lines = [("cell", "protocol", "R1", "R10", "mAP", "mINP", "R1/mAP untrained", "status", "time")]
    for o in outcomes:
        cell = o["cell"]["cell_id"]
        if not o["rows"]:
            lines.append((cell, "—", "—", "—", "—", "—", "—", o["status"], f"{o['seconds']:.0f}s"))
        for r in o["rows"]:
            base = r.get("untrained")
            ref = f"{100 * base['rank1']:.2f}/{100 * base['mAP']:.2f}" if base else "—"
            lines.append((cell, r["protocol"], f"{100 * r['rank1']:.2f}", f"{100 * r['rank10']:.2f}",
                          f"{100 * r['mAP']:.2f}", f"{100 * r['mINP']:.2f}", ref, o["status"], f"{o['seconds']:.0f}s"))
    widths = [max(len(str(row[i])) for row in lines) for i in range(len(lines[0]))]
    for i, row in enumerate(lines):
        click.echo("  ".join(str(c).ljust(widths[j]) for j, c in enumerate(row)))
        if i == 0:
            click.echo("  ".join("-" * w for w in widths))
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o["status"]] = counts.get(o["status"], 0) + 1
    click.echo(f"\n{len(outcomes)} cells in {elapsed:.1f} s: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    for o in outcomes:
        if o["status"] == "failed":
            click.echo(f"FAILED {o['cell']['cell_id']}: {o['error']}", err=True)
