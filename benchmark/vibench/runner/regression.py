"""The regression check: what is exact is checked exactly, what is statistical against bands.

A baseline (``results/baselines/ci.json``, schema 2, written by ``vibench baseline``) has three
parts, checked by ``vibench check`` in this order (docs/testing.md, "The regression check"):

* ``exact``: everything deterministic by construction, equal bit for bit on any machine:
  the synthetic datasets the suite trains on (record manifest and a sha256 over every image
  file's bytes), the sha256 of every protocol list the suite evaluates, and the metrics of a
  committed reference features file (``<baseline stem>-reference/<dataset>.npz``) scored on
  every protocol of the suite through the runner's own evaluation path.
* ``rescore``: after the suite has run, every stored raw ranking re-scores to exactly the stored
  metrics (no model needed; machine independent).
* ``bands``: trained-model metrics. Training rounds differently on other CPUs (SIMD width,
  thread count, BLAS/oneDNN kernels) and a few hundred SGD steps amplify that, so these are
  checked against a band measured from real variation: the suite run under several seeds and
  CPU kernel paths (``vibench baseline``). Per metric the band is
  ``centre +- max(k * spread, floor)`` with centre the mean, spread the sample standard
  deviation of the calibration runs, ``k`` = :data:`BAND_K` and a per-metric floor
  (:data:`BAND_FLOORS`).

A metric fails when it is outside its band (or differs at all, for the exact part) or missing.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from vibench.data import load_dataset
from vibench.data.synth import ensure_synthetic
from vibench.errors import VibenchError, unknown_name
from vibench.io import read_json, save_npz_atomic, sha256_file, write_json_atomic
from vibench.metrics.features import load_features
from vibench.metrics.pipeline import evaluate_lists
from vibench.metrics.rankings import load_rankings, score_rankings
from vibench.protocols import get_protocol, resolve_protocols
from vibench.protocols.build import build_lists
from vibench.provenance import provenance
from vibench.runner.matrix import RunOptions, plan
from vibench.runner.suites import get_suite
from vibench.store.read import iter_completed_cells

SCHEMA_VERSION = 2
SUMMARY_METRICS = ("rank1", "rank5", "rank10", "rank20", "mAP", "mINP")
#: the metrics checked against bands (rank-5/10/20 saturate on tiny galleries and add nothing)
BANDED_METRICS = ("rank1", "mAP", "mINP")
#: band half-width = max(BAND_K * spread, floor): with n calibration runs, a new run from the
#: same distribution falls outside mean +- 4 sd with probability below 1% for n >= 6 (Student t)
BAND_K = 4.0
BAND_FLOORS = {"rank1": 0.02, "mAP": 0.01, "mINP": 0.01}
#: the mean over every banded protocol's mAP: a regression that moves every protocol a little
#: (a loss term disabled) is seen here first; its spread is smaller than any single protocol's
MEAN_KEY = "mean-over-protocols"
#: what one calibration run may change: environment variables read when torch starts
KERNEL_PATHS: dict[str, dict[str, str]] = {
    "native": {},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "scalar": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"},
    "threads1": {"OMP_NUM_THREADS": "1"},
}
RUN_META = "calibration-run.json"


# ---- rows --------------------------------------------------------------------------------

@dataclass(frozen=True)
class CheckRow:
    """One checked value: `part` is exact | rescore | band; `expected` is the exact value or the
    band's centre; `lo`/`hi` the band (equal to `expected` for exact rows)."""

    part: str
    key: str
    expected: Any
    got: Any
    lo: float | None = None
    hi: float | None = None
    note: str = ""

    @property
    def status(self) -> str:
        if self.expected is None:
            return "new"
        if self.got is None:
            return "MISSING"
        if self.part == "band":
            return "ok" if self.lo <= self.got <= self.hi else "FAIL"  # type: ignore[operator]
        return "ok" if self.got == self.expected else "FAIL"

    @property
    def failed(self) -> bool:
        return self.status in ("FAIL", "MISSING")


def format_rows(rows: Sequence[CheckRow], *, verbose: bool = False) -> str:
    """A table of the band rows (percent) and one line per exact group; failures always shown."""
    lines: list[str] = []
    by_part: dict[str, list[CheckRow]] = {}
    for r in rows:
        by_part.setdefault(r.part, []).append(r)
    for part in ("exact", "rescore"):
        group = by_part.get(part, [])
        if not group:
            continue
        bad = [r for r in group if r.failed]
        lines.append(f"{part}: {len(group) - len(bad)} of {len(group)} values identical")
        for r in (group if verbose else bad):
            lines.append(f"  {r.status:7s} {r.key}: expected {_short(r.expected)}, got {_short(r.got)}"
                         + (f" ({r.note})" if r.note else ""))
    band = by_part.get("band", [])
    if band:
        table = [("metric", "centre", "band", "got", "status")]
        for r in band:
            if verbose or r.failed or r.key.startswith(MEAN_KEY) or r.key.endswith("/mAP"):
                rng = "—" if r.lo is None else f"[{100 * r.lo:.2f}, {100 * r.hi:.2f}]"
                table.append((r.key, _pct(r.expected), rng, _pct(r.got), r.status))
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        lines.append("bands (percent; mAP rows and failures shown, --verbose for all):")
        for i, row in enumerate(table):
            lines.append("  " + "  ".join(c.ljust(widths[j]) if j == 0 else c.rjust(widths[j]) for j, c in enumerate(row)))
            if i == 0:
                lines.append("  " + "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _pct(v: Any) -> str:
    return "—" if v is None else f"{100 * float(v):.2f}"


def _short(v: Any) -> str:
    text = json.dumps(v) if not isinstance(v, str) else v
    return text if len(text) <= 70 else text[:67] + "..."


# ---- the selection a baseline covers ------------------------------------------------------

@dataclass(frozen=True)
class Selection:
    """What a baseline covers: the suite's cells (methods x protocols, tiny config, synthetic)."""

    suite: str
    methods: str
    protocols: str
    config: str
    synthetic_scale: str
    regdb_splits: tuple[int, ...] | None
    max_trials: int | None
    overrides: tuple[str, ...] = ()

    @classmethod
    def for_suite(cls, suite: str = "ci", *, methods: str | None = None, protocols: str | None = None,
                  overrides: Sequence[str] = ()) -> "Selection":
        s = get_suite(suite)
        if s.synthetic_scale is None:
            raise VibenchError(f"suite {suite!r} runs on real data; a regression baseline needs a synthetic suite (ci, smoke)")
        return cls(suite, methods or s.methods, protocols or s.protocols, s.config, s.synthetic_scale,
                   s.regdb_splits, s.max_trials, tuple(s.overrides) + tuple(overrides))

    def to_dict(self) -> dict[str, Any]:
        return {"suite": self.suite, "methods": self.methods, "protocols": self.protocols, "config": self.config,
                "synthetic_scale": self.synthetic_scale,
                "regdb_splits": None if self.regdb_splits is None else list(self.regdb_splits),
                "max_trials": self.max_trials, "overrides": list(self.overrides)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Selection":
        splits = d.get("regdb_splits")
        return cls(d["suite"], d["methods"], d["protocols"], d["config"], d["synthetic_scale"],
                   None if splits is None else tuple(int(s) for s in splits), d.get("max_trials"),
                   tuple(d.get("overrides", ())))

    def run_args(self, *, seed: int, out: Path, device: str = "cpu") -> list[str]:
        """`vibench run` arguments that compute this selection with one seed."""
        args = ["run", "--suite", self.suite, "--methods", self.methods, "--protocols", self.protocols,
                "--config", self.config, "--synthetic-scale", self.synthetic_scale, "--seeds", str(seed),
                "--out", str(out), "--device", device, "--no-untrained-reference"]
        if self.regdb_splits is not None:
            args += ["--regdb-splits", ",".join(map(str, self.regdb_splits))]
        if self.max_trials is not None:
            args += ["--max-trials", str(self.max_trials)]
        for item in self.overrides:
            args += ["--set", item]
        return args

    def run_options(self, *, out: Path, device: str = "cpu") -> Any:
        """The in-process equivalent of `run_args` (seed 0), for `vibench check`."""
        return RunOptions.for_suite(self.suite, methods=self.methods, protocols=self.protocols, config=self.config,
                                    synthetic_scale=self.synthetic_scale, regdb_splits=self.regdb_splits,
                                    max_trials=self.max_trials, overrides=self.overrides, out=out, device=device,
                                    untrained_reference=False)

    def config_hashes(self) -> dict[str, str]:
        """cell key -> resolved-config hash of every cell the selection plans (current code)."""
        return {cell_key(p.cell): p.cell.config_hash for p in plan(self.run_options(out=Path(".")))}

    def specs(self) -> list[Any]:
        """The evaluation protocols the selection's cells evaluate (training variants expanded)."""
        out: dict[str, Any] = {}
        for spec in resolve_protocols(self.protocols):
            names = spec.evaluate_with if spec.kind == "training" else (spec.name,)
            for name in names:
                out.setdefault(name, get_protocol(name))
        return list(out.values())

    def trials(self, spec: Any) -> tuple[int, ...]:
        trials = tuple(spec.trials)
        if spec.dataset == "regdb" and self.regdb_splits is not None:
            return tuple(t for t in trials if t in self.regdb_splits)
        if self.max_trials is not None and spec.dataset != "regdb":
            return trials[: self.max_trials]
        return trials


# ---- exact part -------------------------------------------------------------------------

def _dataset(name: str, scale: str) -> Any:
    """The built-in synthetic dataset's index (the exact fingerprint and the reference scoring
    walk every protocol of the selection: each tree is read once per process)."""
    return _load_index(name, str(ensure_synthetic(name, scale=scale, seed=0)))


@functools.lru_cache(maxsize=None)
def _load_index(name: str, root: str) -> Any:
    return load_dataset(name, root)


def content_sha256(root: Path, relpaths: Iterable[str]) -> str:
    """sha256 over (path, sha256 of the file's bytes) for every listed file, in sorted order."""
    h = hashlib.sha256()
    for rel in sorted(relpaths):
        h.update(f"{rel}\0{sha256_file(root / rel)}\n".encode())
    return h.hexdigest()


def reference_dir(baseline_path: Path) -> Path:
    """Where a baseline's reference features live: ``<dir>/<stem>-reference/``."""
    return baseline_path.parent / f"{baseline_path.stem}-reference"


def make_reference_features(index: Any, *, dim: int = 64, nonzero: int = 16, seed: int = 0) -> dict[str, np.ndarray]:
    """Reference features whose distances every machine computes identically.

    Each image gets a vector with exactly `nonzero` entries of +-1 (the rest 0): a quarter of
    them come from its identity's pattern, the rest are drawn per image. Its L2 norm is sqrt(nonzero) =
    4, so the normalised entries are +-1/4 and every dot product is a multiple of 1/16 whatever
    the summation order or SIMD width: the ranking (ties broken by gallery index) and so every
    metric are exact on any CPU or GPU. Identity patterns make the metrics non-trivial.
    """
    if math.isqrt(nonzero) ** 2 != nonzero or nonzero > dim:
        raise ValueError("nonzero must be a perfect square <= dim")
    rng = np.random.default_rng(seed)
    records = sorted({r.path: r for s in index.splits for r in index.test(s)}.values(), key=lambda r: r.path)
    pids = sorted({r.pid for r in records})
    shared = nonzero // 4
    patterns = {p: (rng.permutation(dim)[:shared], rng.choice([-1.0, 1.0], shared)) for p in pids}
    feats = np.zeros((len(records), dim), dtype=np.float32)
    for i, r in enumerate(records):
        pos, sign = patterns[r.pid]
        feats[i, pos] = sign
        free = np.setdiff1d(np.arange(dim), pos)
        extra = rng.choice(free, nonzero - shared, replace=False)
        feats[i, extra] = rng.choice([-1.0, 1.0], len(extra))
    return {"paths": np.array([r.path for r in records]), "features": feats}


def write_reference_features(selection: Selection, folder: Path) -> dict[str, str]:
    """Write one reference features file per dataset of the selection; returns dataset -> sha256."""
    out: dict[str, str] = {}
    for ds in sorted({s.dataset for s in selection.specs()}):
        arrays = make_reference_features(_dataset(ds, selection.synthetic_scale))
        path = folder / f"{ds}.npz"
        save_npz_atomic(path, **arrays)
        out[ds] = sha256_file(path)
    return out


def score_reference(selection: Selection, folder: Path, *, rule_override: str | None = None) -> dict[str, Any]:
    """Metrics of the reference features on every (protocol, trial) of the selection, through
    the runner's evaluation path (`evaluate_lists`). `rule_override` is for the tests only."""
    out: dict[str, Any] = {}
    for spec in selection.specs():
        path = folder / f"{spec.dataset}.npz"
        if not path.is_file():
            raise VibenchError(f"{path}: the baseline's reference features for {spec.dataset} are missing "
                               "(re-create them with `vibench baseline`)")
        feats = load_features(path)
        used = replace(spec, rule=rule_override) if rule_override else spec
        for trial in selection.trials(spec):
            lists = build_lists(spec, _dataset(spec.dataset, selection.synthetic_scale), trial)
            res, _ = evaluate_lists(used, lists, feats.select([r.path for r in lists.query], "query images"),
                                    feats.select([r.path for r in lists.gallery], "gallery images"))
            out[f"{spec.name}/trial-{trial}"] = {"cmc": [float(x) for x in res.cmc], "mAP": float(res.mAP),
                                                 "mINP": float(res.mINP), "num_valid": int(res.num_valid)}
    return out


def exact_fingerprint(selection: Selection, reference: Path) -> dict[str, Any]:
    """Everything deterministic by construction that the selection depends on (module docstring)."""
    data: dict[str, Any] = {}
    lists: dict[str, str] = {}
    for spec in selection.specs():
        index = _dataset(spec.dataset, selection.synthetic_scale)
        if spec.dataset not in data:
            files = [r.path for s in index.splits for r in (*index.train(s), *index.test(s))]
            data[spec.dataset] = {"manifest": index.manifest_hash(), "content": content_sha256(Path(index.root), set(files))}
        for trial in selection.trials(spec):
            lists[f"{spec.name}/trial-{trial}"] = build_lists(spec, index, trial).sha256
    ref_files = {p.stem: sha256_file(p) for p in sorted(reference.glob("*.npz"))}
    return {"synthetic_data": data, "protocol_lists": lists, "reference_files": ref_files,
            "reference_metrics": score_reference(selection, reference)}


def check_exact(expected: Mapping[str, Any], got: Mapping[str, Any]) -> list[CheckRow]:
    """One row per leaf value of the exact fingerprint (nested keys joined by '/')."""
    e, g = _flatten(expected), _flatten(got)
    return [CheckRow("exact", k, e.get(k), g.get(k)) for k in sorted(set(e) | set(g))]


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "/"))
        else:
            out[key] = v
    return out


# ---- re-scoring -------------------------------------------------------------------------

def check_rescore(store: Path) -> list[CheckRow]:
    """Every stored raw ranking of a result store re-scores to exactly its stored metrics."""
    rows: list[CheckRow] = []
    for cell in iter_completed_cells(store):
        for protocol, doc in sorted(cell.metrics.items()):
            for trial, stored in sorted(doc.get("trials", {}).items()):
                key = f"{cell.path.name}/{protocol}/trial-{trial}"
                rpath = cell.path / "rankings" / protocol / f"trial-{trial}.npz"
                if not rpath.is_file():
                    rows.append(CheckRow("rescore", key, "rankings file", None, note=f"{rpath} is missing"))
                    continue
                res = score_rankings(load_rankings(rpath))
                want = {"cmc": [float(x) for x in stored["cmc"]], "mAP": float(stored["mAP"]), "mINP": float(stored["mINP"])}
                got = {"cmc": [float(x) for x in res.cmc], "mAP": float(res.mAP), "mINP": float(res.mINP)}
                rows.append(CheckRow("rescore", key, want, got))
    return rows


# ---- bands ------------------------------------------------------------------------------

def cell_key(cell: Any) -> str:
    """A cell's key in a baseline: method/dataset/variant/split<k> (no seed: bands pool seeds;
    config and data are checked through the recorded config hashes and the exact part)."""
    return f"{cell.method}/{cell.dataset}/{cell.variant or 'standard'}/split{cell.split}"


def store_values(store: Path) -> tuple[dict[str, float], dict[str, str]]:
    """(banded metric key -> value, cell key -> config hash) of every completed cell of a store;
    keys ``<cell key>/<protocol>/<metric>``."""
    values: dict[str, float] = {}
    hashes: dict[str, str] = {}
    for cell in iter_completed_cells(store):
        ck = cell_key(cell)
        hashes[ck] = cell.config_hash
        for protocol, doc in cell.metrics.items():
            for metric in BANDED_METRICS:
                v = doc.get("summary", {}).get(metric)
                if v is not None:
                    values[f"{ck}/{protocol}/{metric}"] = float(v)
    return values, hashes


def with_mean(values: Mapping[str, float], map_keys: Sequence[str]) -> dict[str, float]:
    """`values` plus ``mean-over-protocols/mAP``, the mean of the `map_keys` (all of them must be
    present: a partial store has no mean)."""
    out = dict(values)
    if map_keys and all(k in values for k in map_keys):
        out[f"{MEAN_KEY}/mAP"] = float(np.mean([values[k] for k in sorted(map_keys)]))
    return out


def band(values: Sequence[float], metric: str, *, k: float = BAND_K) -> dict[str, Any]:
    """centre, spread and band of one metric's calibration values (module docstring rule)."""
    arr = np.asarray(values, dtype=np.float64)
    centre = float(arr.mean())
    spread = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    half = max(k * spread, BAND_FLOORS.get(metric, BAND_FLOORS["mAP"]))
    return {"centre": centre, "spread": spread, "lo": centre - half, "hi": centre + half, "n": int(arr.size),
            "min": float(arr.min()), "max": float(arr.max())}


def make_bands(runs: Sequence[Mapping[str, float]]) -> dict[str, Any]:
    """Bands for every key present in all calibration runs, and for their mean mAP."""
    if len(runs) < 2:
        raise VibenchError("a calibration needs at least two runs (seeds x kernel paths)")
    keys = set(runs[0]).intersection(*runs[1:]) - {f"{MEAN_KEY}/mAP"}
    map_keys = sorted(k for k in keys if k.endswith("/mAP"))
    runs = [with_mean(r, map_keys) for r in runs]
    keys |= {f"{MEAN_KEY}/mAP"}
    return {k: band([r[k] for r in runs], k.rsplit("/", 1)[-1]) for k in sorted(keys)}


def check_bands(bands: Mapping[str, Mapping[str, Any]], got: Mapping[str, float]) -> list[CheckRow]:
    rows = [CheckRow("band", k, b["centre"], got.get(k), b["lo"], b["hi"]) for k, b in sorted(bands.items())]
    rows += [CheckRow("band", k, None, v) for k, v in sorted(got.items()) if k not in bands]
    return rows


# ---- calibration ------------------------------------------------------------------------

@dataclass(frozen=True)
class CalibrationRun:
    name: str
    seed: int
    kernel: str
    env: dict[str, str]
    seconds: float


def parse_kernels(text: str) -> list[str]:
    names = [k.strip() for k in text.split(",") if k.strip()]
    for k in names:
        if k not in KERNEL_PATHS:
            raise unknown_name("kernel path", k, KERNEL_PATHS)
    return names


def run_calibration(selection: Selection, work: Path, *, seeds: Sequence[int], kernels: Sequence[str],
                    threads: int | None = None, echo: Any = print) -> list[Path]:
    """Run the selection once per (seed, kernel path), each in a fresh `vibench run` process
    (the kernel variables are read when torch starts); completed runs in `work` are reused."""
    stores: list[Path] = []
    for seed in seeds:
        for kernel in kernels:
            name = f"{kernel}-s{seed}"
            out = work / name
            stores.append(out)
            if (out / RUN_META).is_file():
                echo(f"calibration run {name}: done earlier, reused")
                continue
            env = dict(os.environ)
            env.setdefault("OMP_NUM_THREADS", str(threads or _cpus()))
            env.update(KERNEL_PATHS[kernel])
            echo(f"calibration run {name}: vibench {' '.join(selection.run_args(seed=seed, out=out))}")
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "vibench.cli", *selection.run_args(seed=seed, out=out)],
                                  env=env, check=False)
            if proc.returncode != 0:
                raise VibenchError(f"calibration run {name} failed (exit {proc.returncode}); see {out}/cells/*/error.txt")
            meta = CalibrationRun(name, seed, kernel, {**KERNEL_PATHS[kernel], "OMP_NUM_THREADS": env["OMP_NUM_THREADS"]},
                                  round(time.perf_counter() - start, 1))
            write_json_atomic(out / RUN_META, meta.__dict__)
    return stores


def finished_runs(work: Path) -> list[Path]:
    """The calibration runs of `work` that finished (each holds a calibration-run.json)."""
    runs = sorted(p.parent for p in Path(work).glob(f"*/{RUN_META}"))
    if not runs:
        raise VibenchError(f"{work}: no finished calibration run (no */{RUN_META})")
    return runs


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def build_baseline(selection: Selection, stores: Sequence[Path], reference: Path) -> dict[str, Any]:
    """The schema-2 baseline from calibration stores (each holding a calibration-run.json)."""
    runs, metas, run_hashes = [], [], {}
    for store in stores:
        meta_path = store / RUN_META
        if not meta_path.is_file():
            raise VibenchError(f"{store}: not a calibration run (no {RUN_META})")
        values, cell_hashes = store_values(store)
        if not values:
            raise VibenchError(f"{store} holds no completed cells")
        for ck, h in cell_hashes.items():
            if run_hashes.setdefault(ck, h) != h:
                raise VibenchError(f"{store}: cell {ck} has config hash {h}, other runs {run_hashes[ck]}: "
                                   "calibration runs must share one config")
        runs.append(values)
        metas.append({**read_json(meta_path), "values": values})
    bands = make_bands(runs)
    prov = provenance()
    return {
        "schema_version": SCHEMA_VERSION,
        "selection": selection.to_dict(),
        "exact": exact_fingerprint(selection, reference),
        "config_hashes": selection.config_hashes(),
        "bands": {
            "rule": {"k": BAND_K, "floors": BAND_FLOORS, "metrics": list(BANDED_METRICS),
                     "text": "fail when a metric is outside centre +- max(k x spread, floor); centre = mean and "
                             "spread = sample standard deviation of the calibration runs"},
            "calibration": {"runs": metas, "run_config_hashes": run_hashes, "hardware": prov.get("hardware"), "commit": prov.get("git", {}).get("commit"),
                            "date": time.strftime("%Y-%m-%d"), "packages": prov.get("packages")},
            "metrics": bands,
        },
    }


# ---- loading and checking -----------------------------------------------------------------

def load_baseline(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise VibenchError(f"baseline {path} does not exist (create it with `vibench baseline --out {path}`)")
    try:
        data = read_json(path)
    except ValueError as exc:
        raise VibenchError(f"baseline {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        found = data.get("schema_version") if isinstance(data, dict) else type(data).__name__
        raise VibenchError(f"baseline {path}: schema_version {found!r}, expected {SCHEMA_VERSION} (a baseline with "
                           "flat tolerances, schema 1, is no longer read: re-create it with `vibench baseline`)")
    for key in ("selection", "exact", "bands", "config_hashes"):
        if key not in data:
            raise VibenchError(f"baseline {path}: missing key {key!r}")
    return data


def check_store(baseline: Mapping[str, Any], store: Path) -> list[CheckRow]:
    """The rescore and band rows of a result store against a baseline (the exact part is
    `check_exact` of `exact_fingerprint`)."""
    values, hashes = store_values(store)
    bands = baseline["bands"]["metrics"]
    values = with_mean(values, [k for k in bands if k.endswith("/mAP") and not k.startswith(MEAN_KEY)])
    rows = [CheckRow("exact", f"config_hash/{ck}", h, hashes.get(ck),
                     note="the suite's config changed since the baseline: re-calibrate")
            for ck, h in sorted(baseline["config_hashes"].items())]
    rows += check_rescore(store)
    rows += check_bands(bands, values)
    return rows


def leave_one_out(baseline: Mapping[str, Any]) -> list[tuple[str, str, float, float, float]]:
    """For each calibration run, the metrics that fall outside the bands made from the other
    runs: (run, key, value, lo, hi). Empty when the band rule holds out of sample."""
    runs = baseline["bands"]["calibration"]["runs"]
    out = []
    for i, run in enumerate(runs):
        others = make_bands([r["values"] for j, r in enumerate(runs) if j != i])
        values = with_mean(run["values"], [k for k in others if k.endswith("/mAP") and not k.startswith(MEAN_KEY)])
        for key, b in others.items():
            v = values.get(key)
            if v is not None and not b["lo"] <= v <= b["hi"]:
                out.append((run["name"], key, v, b["lo"], b["hi"]))
    return out
