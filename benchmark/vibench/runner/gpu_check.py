"""The GPU check (``scripts/gpu-check.sh``, docs/gpu-check.md): one command that exercises on a
fresh GPU machine every part of vibench that only a GPU runs, within a time budget, prints a
summary and writes one JSON document.

Parts, each run in its own child process (a crash or an out-of-memory error of one part does not
take the others with it; peak memory is the part's own), in this order (the bounded parts first,
the rehearsal last with the time that is left; cells it completes are reported even when it is
stopped):

* ``preflight``: which of the packages the GPU path imports are present; the GPUs.
* ``parity``: the same inputs evaluated on CPU and on the device give identical metrics: one
  distance matrix of the SYSU multi-shot size (3803 x 3010); integer-valued features whose
  distances are exact in any summation order (ties included); float features (reported, not
  asserted: the device's matmul sums in another order, so near-ties may swap).
* ``latency``: BIT vs PMT per-query latency of their paper configs (the BIT paper: 14 vs 10 ms on
  an L20), in the config's precision (bf16 autocast on CUDA) and in fp32; BIT also without its
  score cache (:data:`LATENCY_VARIANTS`).
* ``throughput``: test-time images per second and peak memory of every method's paper config.
* ``evaluate``: ``vibench.evaluate`` on the SYSU multi-shot size, on the device.
* ``evaluate_big``: ``evaluate_features`` on a 100,000 x 100,000 gallery, on the device.
* ``executor``: the local multi-GPU executor (``--gpus``) on every GPU present, a tiny suite of
  two cells per GPU; which GPU ran which cell, read from the store.
* ``rehearsal``: ``vibench run --suite rehearsal`` on the device (bf16, channels_last as the
  paper configs set them); its per-cell figures read back from the store.

Sizes come from a :class:`Scale` (``full`` on the GPU, ``quick`` for the CPU tests). Imports of
this module: torch, numpy and vibench (its GPU path needs numpy, pyyaml, pillow, filelock, tqdm,
timm, torchvision; the rehearsal and executor parts run the CLI, which needs click); never pandas,
jinja2, matplotlib, scipy or submitit (tests/runner/test_gpu_check.py checks this).
"""
from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from vibench.engine.latency import (NUM_CLASSES, device_name, measure_query_latency, paper_method)
from vibench.errors import VibenchError, unknown_name
from vibench.io import write_json_atomic
from vibench.metrics.evaluate import evaluate, evaluate_features
from vibench.metrics.stats import EvalResult
from vibench.store.layout import read_json_file
from vibench.store.read import scan_store

SCHEMA = "vibench-gpu-check/1"
PARTS = ("preflight", "parity", "latency", "throughput", "evaluate", "evaluate_big", "executor", "rehearsal")
#: packages the GPU path imports (module name -> distribution); checked by the preflight
GPU_PATH_MODULES = {"numpy": "numpy", "yaml": "pyyaml", "PIL": "pillow", "filelock": "filelock",
                    "tqdm": "tqdm", "timm": "timm", "torchvision": "torchvision", "click": "click"}
#: dependencies of vibench that the GPU path never imports (report, plots, Slurm)
NOT_ON_GPU_PATH = ("pandas", "jinja2", "matplotlib", "scipy", "submitit")
#: the BIT paper's per-query latencies (ms, one NVIDIA L20; results/reported/report.yaml)
PAPER_LATENCY_MS = {"bit": 14.0, "pmt": 10.0}
#: extra latency rows: name -> (method, config overrides). BIT's score cache hashes every
#: candidate's tokens on the CPU, which a one-off query never profits from; without it the
#: measurement is the decoder's own cost.
LATENCY_VARIANTS = {"bit-nocache": ("bit", ("bit.refine.cache_pairs=0",))}


@dataclass(frozen=True)
class Scale:
    """Problem sizes and repetitions of every part."""

    name: str
    config: str                      # method config of latency/throughput
    parity_shape: tuple[int, int]    # (queries, gallery) of the parity checks
    sysu_multi: tuple[int, int]      # evaluate timing: distance matrix size
    big_gallery: tuple[int, int]     # evaluate timing: features problem size
    latency_gallery: int
    latency_repeats: int
    throughput_batch: int
    throughput_repeats: int
    executor_cells_per_gpu: int


SCALES = {
    "full": Scale("full", "paper", (3803, 3010), (3803, 3010), (100_000, 100_000), 301, 20, 64, 10, 2),
    "quick": Scale("quick", "tiny", (120, 90), (120, 90), (400, 300), 60, 2, 4, 2, 1),
}
#: seconds each part is given at most (full scale); parts start in PARTS order while time is
#: left, the bounded parts first and the rehearsal (the longest, partial results kept) last
PART_BUDGET_S = {"preflight": 30, "parity": 60, "latency": 75, "throughput": 60, "evaluate": 45,
                 "evaluate_big": 90, "executor": 90, "rehearsal": 330}
#: a part is started only with at least this much of the deadline left
MIN_START_S = 20


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------

def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def reset_peak(dev: torch.device) -> None:
    """Start a peak-memory window (CUDA: allocator peak; CPU: nothing to reset)."""
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)


def peak_memory(dev: torch.device) -> dict[str, Any]:
    """Peak memory since :func:`reset_peak`: CUDA peak allocated, else this process's peak RSS
    (which covers the whole process life, so it is labelled as such)."""
    if dev.type == "cuda":
        return {"peak_allocated_mib": torch.cuda.max_memory_allocated(dev) / 2**20, "kind": "cuda peak allocated"}
    return {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "kind": "cpu peak RSS of the process"}


def _timed(fn: Callable[[], Any], dev: torch.device, repeats: int) -> tuple[Any, list[float]]:
    """(last result, wall seconds of each of `repeats` calls), CUDA synchronised around each."""
    out, times = None, []
    for _ in range(repeats):
        _sync(dev)
        t0 = time.perf_counter()
        out = fn()
        _sync(dev)
        times.append(time.perf_counter() - t0)
    return out, times


def check_device(device: str) -> torch.device:
    """The torch device, or a VibenchError naming why it cannot be used (parts then skip)."""
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise VibenchError("CUDA is not available on this machine (torch.cuda.is_available() is False)")
    return dev


# --------------------------------------------------------------------------------------------
# preflight
# --------------------------------------------------------------------------------------------

def preflight() -> dict[str, Any]:
    """Packages of the GPU path present or missing, and the GPUs torch sees."""
    present = {dist: importlib.util.find_spec(mod) is not None for mod, dist in GPU_PATH_MODULES.items()}
    gpus = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            gpus.append({"index": i, "name": p.name, "memory_gib": round(p.total_memory / 2**30, 1),
                         "capability": f"{p.major}.{p.minor}"})
    missing = sorted(d for d, ok in present.items() if not ok)
    return {"status": "fail" if missing else "pass",
            "reason": f"missing packages: {', '.join(missing)}" if missing else "",
            "packages": present, "gpus": gpus, "cuda_available": torch.cuda.is_available(),
            "torch": torch.__version__, "cuda": torch.version.cuda,
            "bf16_supported": bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())}


# --------------------------------------------------------------------------------------------
# parity: CPU vs device
# --------------------------------------------------------------------------------------------

def compare_results(a: EvalResult, b: EvalResult) -> dict[str, Any]:
    """Largest absolute difference of every metric between two evaluations, and whether they are
    identical (every CMC value, mAP, mINP, per-query AP and the counts bit for bit)."""
    diffs = {
        "cmc": float(np.max(np.abs(a.cmc.astype(np.float64) - b.cmc.astype(np.float64)))) if a.cmc.shape == b.cmc.shape else float("inf"),
        "mAP": abs(a.mAP - b.mAP),
        "mINP": abs(a.mINP - b.mINP),
        "num_valid": abs(a.num_valid - b.num_valid),
    }
    if a.ap.shape == b.ap.shape:
        differing = int(np.sum(~((a.ap == b.ap) | (np.isnan(a.ap) & np.isnan(b.ap)))))
    else:
        differing = max(len(a.ap), len(b.ap))
    identical = (a.cmc.tobytes() == b.cmc.tobytes() and a.mAP == b.mAP and a.mINP == b.mINP
                 and a.num_valid == b.num_valid and a.num_query == b.num_query
                 and a.num_gallery == b.num_gallery and differing == 0)
    return {"identical": identical, "max_abs_diff": diffs, "queries_with_different_ap": differing,
            "cpu": {"rank1": float(a.cmc[0]), "mAP": a.mAP, "mINP": a.mINP},
            "device": {"rank1": float(b.cmc[0]), "mAP": b.mAP, "mINP": b.mINP}}


def labels_problem(nq: int, ng: int, seed: int = 0, n_ids: int = 96) -> dict[str, np.ndarray]:
    """SYSU-like labels (the metrics benchmark's layout): query cams 3/6, gallery cams 1/2/4/5,
    every identity in the gallery."""
    rng = np.random.default_rng(seed)
    ids = min(n_ids, ng)
    return {"q_pids": rng.integers(0, ids, nq), "g_pids": np.sort(np.resize(np.arange(ids), ng)),
            "q_camids": rng.choice([3, 6], nq), "g_camids": rng.choice([1, 2, 4, 5], ng)}


def parity(device: str, scale: Scale, reference: str = "cpu") -> dict[str, Any]:
    """Metrics of the same inputs on `reference` (CPU) and on `device`; status fail unless the
    asserted checks are identical (docs/gpu-check.md#parity)."""
    dev = check_device(device)
    nq, ng = scale.parity_shape
    lab = labels_problem(nq, ng)
    rng = np.random.default_rng(1)
    checks: dict[str, Any] = {}

    d = rng.random((nq, ng))  # float64, the metrics benchmark's worst case
    r_ref = evaluate(d, **lab, rule="sysu", cmc="unique", device=reference)
    r_dev = evaluate(torch.from_numpy(d).to(dev), **lab, rule="sysu", cmc="unique", device=dev)
    checks["distmat"] = {"asserted": True, "what": f"one float64 distance matrix {nq} x {ng}, rule sysu",
                         **compare_results(r_ref, r_dev)}

    dim = 256
    qf = torch.from_numpy(rng.integers(-8, 9, (nq, dim))).float()
    gf = torch.from_numpy(rng.integers(-8, 9, (ng, dim))).float()
    r_ref = evaluate_features(qf, gf, **lab, normalize=False, device=reference)
    r_dev = evaluate_features(qf.to(dev), gf.to(dev), **lab, normalize=False, device=dev)
    checks["integer_features"] = {
        "asserted": True,
        "what": f"integer-valued features {nq}/{ng} x {dim} (exact dot products, many ties), distances on each device",
        **compare_results(r_ref, r_dev)}

    qf = torch.randn(nq, 2048, generator=torch.Generator().manual_seed(2))
    gf = torch.randn(ng, 2048, generator=torch.Generator().manual_seed(3))
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        r_ref = evaluate_features(qf, gf, **lab, device=reference)
        r_dev = evaluate_features(qf.to(dev), gf.to(dev), **lab, device=dev)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
    checks["float_features"] = {
        "asserted": False,
        "what": f"float features {nq}/{ng} x 2048, cosine distances on each device (fp32, TF32 off): "
                "summation order differs, so near-ties may swap; reported only",
        **compare_results(r_ref, r_dev)}

    failed = [k for k, c in checks.items() if c["asserted"] and not c["identical"]]
    return {"status": "fail" if failed else "pass",
            "reason": f"metrics differ between {reference} and {device}: {', '.join(failed)}" if failed else "",
            "reference": reference, "device": device_name(dev), "checks": checks}


# --------------------------------------------------------------------------------------------
# latency: BIT vs PMT per query
# --------------------------------------------------------------------------------------------

def query_latency(methods: Sequence[str], device: str, scale: Scale,
                  precisions: Sequence[str] = ("config", "fp32"),
                  variants: Mapping[str, tuple[str, tuple[str, ...]]] = LATENCY_VARIANTS) -> dict[str, Any]:
    """Per-query latency (vibench.engine.latency.measure_query_latency) of each method's config
    at `scale`, once in the config's precision (bf16 autocast on CUDA when ``amp``) and once in
    fp32, and of each variant (a method with config overrides); with the paper's numbers and the
    ratio of the first two methods."""
    dev = check_device(device)
    if dev.type != "cuda":
        precisions = ("fp32",)  # autocast is used on CUDA only: one measurement
    rows: dict[str, Any] = {}
    jobs = [(name, name, ()) for name in methods] + [(label, m, tuple(o)) for label, (m, o) in variants.items()]
    for label, name, overrides in jobs:
        method, digest = paper_method(name, "sysu", scale.config, overrides)
        torch.manual_seed(0)
        model = method.build_model(NUM_CLASSES["sysu"])
        for prec in precisions:
            if prec == "fp32":
                method.cfg["amp"] = False
            res = measure_query_latency(method, model, dev, gallery=scale.latency_gallery,
                                        warmup=max(1, scale.latency_repeats // 4),
                                        repeats=scale.latency_repeats)
            rows.setdefault(label, {"config": scale.config, "config_hash": digest[:8],
                                    "overrides": list(overrides)})[res["precision"]] = {
                k: res[k] for k in ("ms_per_query", "ms_per_query_min", "gallery", "refine_k", "repeats")}
        del model
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    out: dict[str, Any] = {"status": "pass", "reason": "", "device": device_name(dev), "methods": rows,
                           "paper": {"ms_per_query": dict(PAPER_LATENCY_MS), "device": "NVIDIA L20"}}
    if len(methods) >= 2:
        a, b = methods[0], methods[1]
        out["ratio"] = {p: rows[a][p]["ms_per_query"] / rows[b][p]["ms_per_query"]
                        for p in rows[a] if isinstance(rows[a][p], dict) and p in rows[b]}
        out["ratio_of"] = f"{a} / {b}"
    return out


# --------------------------------------------------------------------------------------------
# throughput and peak memory per method
# --------------------------------------------------------------------------------------------

def throughput(methods: Sequence[str], device: str, scale: Scale) -> dict[str, Any]:
    """Test-time images per second (Method.embed on batches of ``scale.throughput_batch``, the
    config's precision and memory format) and peak memory of each method's config."""
    dev = check_device(device)
    rows: dict[str, Any] = {}
    for name in methods:
        try:
            rows[name] = _method_throughput(name, dev, scale)
        except (VibenchError, RuntimeError) as exc:  # one method failing (e.g. out of memory) is reported
            rows[name] = {"error": f"{type(exc).__name__}: {exc}"}
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    bad = [n for n, r in rows.items() if "error" in r]
    return {"status": "fail" if bad else "pass", "reason": f"failed: {', '.join(bad)}" if bad else "",
            "device": device_name(dev), "batch": scale.throughput_batch, "methods": rows}


def _method_throughput(name: str, dev: torch.device, scale: Scale) -> dict[str, Any]:
    method, digest = paper_method(name, "sysu", scale.config)
    reset_peak(dev)
    torch.manual_seed(0)
    model = method.build_model(NUM_CLASSES["sysu"]).to(dev).eval()
    amp = dev.type == "cuda" and bool(method.cfg.get("amp", True))
    channels_last = dev.type == "cuda" and bool(method.cfg.get("channels_last", True))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    h, w = method.cfg["input"]["size"]
    x = torch.randn(scale.throughput_batch, 3, h, w, device=dev)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp):
        _timed(lambda: method.embed(model, x, "infrared"), dev, 2)  # warm-up
        _, times = _timed(lambda: method.embed(model, x, "infrared"), dev, scale.throughput_repeats)
    med = float(np.median(times))
    return {"config": scale.config, "config_hash": digest[:8], "input_size": [h, w],
            "precision": "bf16-autocast" if amp else "fp32", "channels_last": channels_last,
            "images_per_second": scale.throughput_batch / med, "ms_per_batch": 1000 * med,
            **peak_memory(dev)}


# --------------------------------------------------------------------------------------------
# evaluate on the device
# --------------------------------------------------------------------------------------------

def features_problem(nq: int, ng: int, dim: int = 64, seed: int = 0) -> dict[str, torch.Tensor]:
    """Clustered features with identities (the metrics benchmark's 100k x 100k problem)."""
    g = torch.Generator().manual_seed(seed)
    ids = max(1, ng // 10)
    centers = torch.randn(ids, dim, generator=g)
    gp = torch.arange(ng) % ids
    qp = torch.randint(0, ids, (nq,), generator=g)
    return {"query_features": centers[qp] + 1.5 * torch.randn(nq, dim, generator=g),
            "gallery_features": centers[gp] + 1.5 * torch.randn(ng, dim, generator=g),
            "q_pids": qp, "g_pids": gp, "q_camids": torch.randint(1, 7, (nq,), generator=g),
            "g_camids": torch.randint(1, 7, (ng,), generator=g)}


def evaluate_timing(device: str, scale: Scale) -> dict[str, Any]:
    """Seconds of ``vibench.evaluate`` on a SYSU multi-shot-size float64 matrix already on the
    device (best of 3 after one warm-up) and peak memory."""
    dev = check_device(device)
    nq, ng = scale.sysu_multi
    lab = labels_problem(nq, ng)
    d = torch.from_numpy(np.random.default_rng(0).random((nq, ng))).to(dev)
    evaluate(d, **lab, rule="sysu", cmc="unique", device=dev)
    reset_peak(dev)
    res, times = _timed(lambda: evaluate(d, **lab, rule="sysu", cmc="unique", device=dev), dev, 3)
    return {"status": "pass", "reason": "", "device": device_name(dev), "shape": [nq, ng],
            "seconds_best": min(times), "seconds": times, "mAP": res.mAP, **peak_memory(dev)}


def evaluate_big_timing(device: str, scale: Scale) -> dict[str, Any]:
    """Seconds of ``evaluate_features`` on the big gallery (features on the device; once)."""
    dev = check_device(device)
    bq, bg = scale.big_gallery
    prob = features_problem(bq, bg)
    prob["query_features"] = prob["query_features"].to(dev)
    prob["gallery_features"] = prob["gallery_features"].to(dev)
    reset_peak(dev)
    res, times = _timed(lambda: evaluate_features(**prob, rule="sysu", device=dev), dev, 1)
    return {"status": "pass", "reason": "", "device": device_name(dev), "shape": [bq, bg],
            "dim": int(prob["query_features"].shape[1]), "seconds": times[0],
            "num_valid": res.num_valid, "mAP": res.mAP, **peak_memory(dev)}


# --------------------------------------------------------------------------------------------
# rehearsal and executor: through the CLI, figures read back from the store
# --------------------------------------------------------------------------------------------

def cli_command(args: Sequence[str]) -> list[str]:
    """The vibench CLI as a child process of this interpreter (no console script needed)."""
    return [sys.executable, "-m", "vibench.cli", *args]


def rehearsal_args(device: str, out: Path) -> list[str]:
    """``vibench run --suite rehearsal`` on `device` into store `out` (the paper configs decide
    bf16 autocast and channels_last; both on for CUDA unless a config turns them off)."""
    return ["run", "--suite", "rehearsal", "--device", device, "--out", str(out), "--overwrite", "always"]


def training_figures(training: Mapping[str, Any]) -> dict[str, Any]:
    """The figures of a cell's training record (timings.json "training", written by the trainer:
    seconds per iteration overall and without the first iteration, images per second, peak
    memory {kind, bytes, scope}) in the check's units."""
    peak = training.get("peak_memory") or {}
    spi = training.get("steady_seconds_per_iteration") or training.get("seconds_per_iteration")
    return {"seconds_per_iteration": spi,
            "seconds_per_iteration_kind": "steady (first iteration excluded)" if training.get("steady_seconds_per_iteration") else "mean",
            "images_per_second": training.get("images_per_s"),
            "peak_memory_mib": peak["bytes"] / 2**20 if isinstance(peak.get("bytes"), (int, float)) else None,
            "peak_memory_kind": peak.get("kind"), "init": training.get("init")}


def rehearsal_figures(store: Path) -> list[dict[str, Any]]:
    """One row per cell of a rehearsal store: identity, device and the figures of its training
    record (:func:`training_figures`); a completed cell without one and a failed cell (its
    error.txt) are named as such."""
    rows = []
    scan = scan_store(Path(store))
    for cell in scan.cells:
        row: dict[str, Any] = {"method": cell.method, "dataset": cell.dataset, "config": cell.config_label,
                               "device": cell.spec.get("device"), "cell": cell.path.name}
        timings = cell.path / "timings.json"
        training = (read_json_file(timings, "timings") or {}).get("training") if timings.is_file() else None
        if isinstance(training, Mapping):
            row.update(training_figures(training))
        else:
            row["missing"] = "no training record in timings.json"
        rows.append(row)
    for path in scan.incomplete:
        err = path / "error.txt"
        rows.append({"cell": path.name, "failed": err.read_text(encoding="utf-8")[-400:] if err.is_file() else "incomplete"})
    return rows


def executor_args(gpus: Sequence[int], out: Path, cells_per_gpu: int = 2, device: str = "cuda") -> list[str]:
    """A tiny suite over `gpus`: AGW's tiny config on one SYSU protocol (first gallery trial),
    ``cells_per_gpu`` seeds per GPU, so the pool has to give every GPU work."""
    if not gpus:
        raise VibenchError("the multi-GPU executor check needs at least one GPU index")
    seeds = ",".join(str(s) for s in range(cells_per_gpu * len(gpus)))
    return ["run", "--methods", "agw", "--protocols", "sysu-all-single", "--config", "tiny",
            "--seeds", seeds, "--max-trials", "1", "--device", device, "--gpus", ",".join(map(str, gpus)),
            "--out", str(out), "--overwrite", "always"]


def executor_outcome(store: Path, expected_cells: int, gpus: Sequence[int]) -> dict[str, Any]:
    """Which device each completed cell of the executor store ran on (spec.json ``device``);
    pass when every expected cell completed and every GPU ran at least one."""
    scan = scan_store(Path(store))
    by_cell = {c.path.name: str(c.spec.get("device")) for c in scan.cells}
    used = sorted(set(by_cell.values()))
    idle = [g for g in gpus if f"cuda:{g}" not in used]
    problems = []
    if len(by_cell) != expected_cells:
        problems.append(f"{len(by_cell)} of {expected_cells} cells completed")
    if idle:
        problems.append(f"GPU(s) {idle} ran no cell")
    return {"status": "fail" if problems else "pass", "reason": "; ".join(problems),
            "gpus": list(gpus), "cells": by_cell, "devices_used": used}


def run_logged(cmd: Sequence[str], timeout: float, log: Path) -> int:
    """Run `cmd` in its own process group, output to `log`; its exit code, or 124 after killing
    the whole group (the command and any workers it spawned) when it outlives `timeout`."""
    with open(log, "w", encoding="utf-8") as fh:
        proc = subprocess.Popen(list(cmd), stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            return 124


def run_cli(args: Sequence[str], timeout: float, log: Path) -> tuple[int, float]:
    """Run the CLI with `args`, output to `log`; (exit code, seconds); 124 on timeout."""
    t0 = time.perf_counter()
    rc = run_logged(cli_command(args), timeout, log)
    return rc, time.perf_counter() - t0


def _tail(path: Path, n: int = 800) -> str:
    return path.read_text(encoding="utf-8", errors="replace")[-n:] if path.is_file() else ""


def rehearsal(device: str, scale: Scale, work: Path, timeout: float) -> dict[str, Any]:
    check_device(device)
    if importlib.util.find_spec("click") is None:
        return {"status": "skip", "reason": "the vibench CLI needs click, which is not installed"}
    store = work / "rehearsal"
    rc, secs = run_cli(rehearsal_args(device, store), timeout, work / "rehearsal.log")
    rows = rehearsal_figures(store) if (store / "cells").is_dir() else []
    status = "pass" if rc == 0 and rows and not any("failed" in r for r in rows) else "fail"
    reason = "" if status == "pass" else ("timed out" if rc == 124 else f"exit code {rc}: {_tail(work / 'rehearsal.log')}")
    out = {"status": status, "reason": reason, "seconds": secs, "command": "vibench " + " ".join(rehearsal_args(device, store)),
           "cells": rows}
    per_method = store / f"rehearsal-{check_device(device).type}.json"  # the rehearsal's per-method summary, when written
    if per_method.is_file():
        out["per_method"] = read_json_file(per_method, "rehearsal costs")
    return out


def executor(device: str, scale: Scale, work: Path, timeout: float) -> dict[str, Any]:
    dev = check_device(device)
    if importlib.util.find_spec("click") is None:
        return {"status": "skip", "reason": "the vibench CLI needs click, which is not installed"}
    gpus = list(range(torch.cuda.device_count())) if dev.type == "cuda" else [0]
    store = work / "executor"
    args = executor_args(gpus, store, scale.executor_cells_per_gpu, "cuda" if dev.type == "cuda" else "cpu")
    rc, secs = run_cli(args, timeout, work / "executor.log")
    out = executor_outcome(store, scale.executor_cells_per_gpu * len(gpus), gpus if dev.type == "cuda" else [])
    if rc != 0:
        out["status"] = "fail"
        out["reason"] = ("timed out; " if rc == 124 else f"exit code {rc}; ") + out["reason"] + " " + _tail(work / "executor.log", 400)
    out["seconds"] = secs
    out["command"] = "vibench " + " ".join(args)
    return out


# --------------------------------------------------------------------------------------------
# orchestration, JSON, summary
# --------------------------------------------------------------------------------------------

def run_part(part: str, device: str, scale: Scale, work: Path, timeout: float) -> dict[str, Any]:
    """One part in this process: its result dict with status pass | fail | skip | error."""
    t0 = time.perf_counter()
    try:
        if part == "preflight":
            res = preflight()
        elif part == "parity":
            res = parity(device, scale)
        elif part == "latency":
            res = query_latency(("bit", "pmt"), device, scale)
        elif part == "throughput":
            res = throughput(_methods(), device, scale)
        elif part == "evaluate":
            res = evaluate_timing(device, scale)
        elif part == "evaluate_big":
            res = evaluate_big_timing(device, scale)
        elif part == "rehearsal":
            res = rehearsal(device, scale, work, timeout)
        elif part == "executor":
            res = executor(device, scale, work, timeout)
        else:
            raise unknown_name("part", part, PARTS)
    except VibenchError as exc:
        res = {"status": "skip", "reason": str(exc)}
    res["part_seconds"] = time.perf_counter() - t0
    return res


def _methods() -> list[str]:
    # lazy: the registry reads entry points; only the parts that build models need it
    from vibench.registry import available_methods

    return available_methods()


def run_isolated(part: str, device: str, scale: Scale, work: Path, timeout: float) -> dict[str, Any]:
    """:func:`run_part` in a child process (its own memory and CUDA context), killed after
    `timeout` seconds; a crash or a timeout becomes an ``error`` result naming it."""
    result = work / f"{part}.json"
    log = work / f"{part}.part.log"
    cmd = [sys.executable, "-m", "vibench.runner.gpu_check", "--part", part, "--device", device,
           "--scale", scale.name, "--work", str(work), "--out", str(result), "--timeout", str(int(timeout))]
    t0 = time.perf_counter()
    rc = run_logged(cmd, timeout + 15, log)  # the part stops its own CLI runs at `timeout`
    if rc == 124:
        return {"status": "error", "reason": f"timed out after {timeout:.0f} s", "part_seconds": time.perf_counter() - t0}
    if rc != 0 or not result.is_file():
        return {"status": "error", "reason": f"exit code {rc}: {_tail(log)}", "part_seconds": time.perf_counter() - t0}
    return json.loads(result.read_text(encoding="utf-8"))


def run_check(device: str = "cuda", scale: str = "full", parts: Sequence[str] = PARTS, *,
              deadline_s: float = 420.0, work: Path | None = None, isolate: bool = True,
              clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """Run `parts` in order while the deadline allows; the document :func:`write_report` writes."""
    if scale not in SCALES:
        raise unknown_name("scale", scale, SCALES)
    sc = SCALES[scale]
    for p in parts:
        if p not in PARTS:
            raise unknown_name("part", p, PARTS)
    work = Path(work or tempfile.mkdtemp(prefix="vibench-gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    start = clock()
    results: dict[str, Any] = {}
    for p in parts:
        left = deadline_s - (clock() - start)
        if left < MIN_START_S:
            results[p] = {"status": "skip", "reason": f"time budget spent ({deadline_s:.0f} s deadline)"}
            continue
        timeout = min(PART_BUDGET_S[p], left)
        results[p] = (run_isolated if isolate else run_part)(p, device, sc, work, timeout)
    return {"schema": SCHEMA, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "device": device, "scale": asdict(sc), "deadline_s": deadline_s,
            "seconds": clock() - start, "torch": torch.__version__, "cuda": torch.version.cuda,
            "device_name": device_name(torch.device(device)) if _usable(device) else "unavailable",
            "work": str(work), "parts": results}


def _usable(device: str) -> bool:
    return not device.startswith("cuda") or torch.cuda.is_available()


def write_report(doc: Mapping[str, Any], path: Path) -> Path:
    """Write the check's document (atomic); refuses a directory or a document of another schema."""
    path = Path(path)
    if path.is_dir():
        raise VibenchError(f"{path} is a directory; expected a JSON file path for the GPU check")
    if doc.get("schema") != SCHEMA:
        raise VibenchError(f"not a GPU-check document (schema {doc.get('schema')!r}, expected {SCHEMA!r})")
    write_json_atomic(path, dict(doc))
    return path


def _fmt(v: Any, nd: int = 2) -> str:
    return f"{v:.{nd}f}" if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)


def _mem(row: Mapping[str, Any]) -> str:
    if "peak_allocated_mib" in row:
        return f"{row['peak_allocated_mib']:.0f} MiB alloc"
    if "peak_rss_mib" in row:
        return f"{row['peak_rss_mib']:.0f} MiB RSS"
    if row.get("peak_memory_mib") is not None:
        return f"{row['peak_memory_mib']:.0f} MiB"
    return "-"


def format_summary(doc: Mapping[str, Any]) -> str:
    """The human summary: one status line per part, then the figures of each part that has them."""
    lines = [f"vibench GPU check on {doc.get('device_name')} ({doc.get('device')}, scale {doc['scale']['name']}), "
             f"{_fmt(doc.get('seconds'), 0)} s, torch {doc.get('torch')}, CUDA {doc.get('cuda')}"]
    parts = doc.get("parts", {})
    for name, r in parts.items():
        reason = f": {r['reason']}" if r.get("reason") else ""
        lines.append(f"  {name:<11} {r.get('status', '?').upper():<5} ({_fmt(r.get('part_seconds'), 0)} s){reason}"[:300])
    pf = parts.get("preflight", {})
    if pf.get("gpus"):
        lines.append("GPUs: " + "; ".join(f"{g['index']}: {g['name']} ({g['memory_gib']} GiB)" for g in pf["gpus"]))
    par = parts.get("parity", {})
    for k, c in (par.get("checks") or {}).items():
        tag = "asserted" if c["asserted"] else "reported"
        diff = c["max_abs_diff"]
        lines.append(f"parity {k} ({tag}): {'identical' if c['identical'] else 'DIFFERENT'}; "
                     f"max |diff| cmc {diff['cmc']:.3g}, mAP {diff['mAP']:.3g}, mINP {diff['mINP']:.3g}")
    lat = parts.get("latency", {})
    for m, r in (lat.get("methods") or {}).items():
        per = ", ".join(f"{p} {v['ms_per_query']:.2f} ms" for p, v in r.items() if isinstance(v, dict))
        paper = f" (paper: {PAPER_LATENCY_MS[m]} ms on an L20)" if m in PAPER_LATENCY_MS else ""
        over = f", {' '.join(r['overrides'])}" if r.get("overrides") else ""
        lines.append(f"latency {m} ({r['config']}{over}): {per} per query{paper}")
    if lat.get("ratio"):
        lines.append(f"latency ratio {lat['ratio_of']}: " + ", ".join(f"{p} {v:.2f}" for p, v in lat["ratio"].items())
                     + f" (paper: {PAPER_LATENCY_MS['bit'] / PAPER_LATENCY_MS['pmt']:.2f})")
    thr = parts.get("throughput", {})
    for m, r in (thr.get("methods") or {}).items():
        if "error" in r:
            lines.append(f"throughput {m}: {r['error'][:200]}")
        else:
            lines.append(f"throughput {m} ({r['config']}, {r['precision']}, batch {thr['batch']}): "
                         f"{r['images_per_second']:.1f} images/s, {_mem(r)}")
    ev, big = parts.get("evaluate", {}), parts.get("evaluate_big", {})
    if "seconds_best" in ev:
        lines.append(f"evaluate {ev['shape'][0]}x{ev['shape'][1]}: {ev['seconds_best'] * 1000:.1f} ms (best of 3), {_mem(ev)}")
    if "seconds" in big and "shape" in big:
        lines.append(f"evaluate_features {big['shape'][0]}x{big['shape'][1]}: {big['seconds']:.2f} s, {_mem(big)}")
    for r in (parts.get("rehearsal", {}).get("cells") or []):
        if "failed" in r or "missing" in r:
            lines.append(f"rehearsal {r.get('cell')}: {r.get('failed') or r.get('missing')}"[:300])
        else:
            lines.append(f"rehearsal {r['method']} {r['dataset']}: {_fmt(r.get('seconds_per_iteration'), 3)} s/iter, "
                         f"{_fmt(r.get('images_per_second'), 1)} images/s, {_mem(r)}")
    ex = parts.get("executor", {})
    if ex.get("cells") is not None and "devices_used" in ex:
        lines.append(f"executor: {len(ex['cells'])} cells on {', '.join(ex['devices_used']) or 'no device'}")
    return "\n".join(lines)


def overall_status(doc: Mapping[str, Any]) -> int:
    """Exit code: 0 when no part failed or errored (skipped parts are allowed), else 1."""
    return 1 if any(r.get("status") in ("fail", "error") for r in doc.get("parts", {}).values()) else 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vibench.runner.gpu_check", description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--scale", default="full", choices=sorted(SCALES))
    ap.add_argument("--parts", default=",".join(PARTS), help="comma-separated, in this order: " + ",".join(PARTS))
    ap.add_argument("--deadline", type=float, default=420.0, help="seconds for all parts together")
    ap.add_argument("--work", type=Path, default=None, help="folder for stores and logs (default: a temporary one)")
    ap.add_argument("--out", type=Path, default=None, help="JSON file to write")
    ap.add_argument("--part", default=None, help=argparse.SUPPRESS)  # child process: one part
    ap.add_argument("--timeout", type=float, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    try:
        if a.part:
            res = run_part(a.part, a.device, SCALES[a.scale], Path(a.work), a.timeout or PART_BUDGET_S.get(a.part, 60))
            write_json_atomic(a.out, res)
            return 0
        parts = [p.strip() for p in a.parts.split(",") if p.strip()]
        doc = run_check(a.device, a.scale, parts, deadline_s=a.deadline, work=a.work)
        if a.out is not None:
            write_report(doc, a.out)
    except VibenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_summary(doc))
    if a.out is not None:
        print(f"wrote {a.out}")
    return overall_status(doc)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
