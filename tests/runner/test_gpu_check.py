"""The GPU check (vibench.runner.gpu_check, scripts/gpu-check.sh): its CPU-testable parts (the
JSON writer, the CPU-vs-device parity comparator, the summary, the latency harness on tiny
configs, the executor planning, the store readers, the time budget) on CPU; the device parts
on CUDA when present, else skipped with the reason."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from vibench.errors import VibenchError
from vibench.metrics.stats import EvalResult
from vibench.runner import gpu_check as gc

STORE_V1 = Path(__file__).parents[1] / "store" / "data" / "store-v1"
QUICK = gc.SCALES["quick"]
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (torch.cuda.is_available() is False)")


def _result(cmc, mAP, mINP, ap, num_valid=None) -> EvalResult:
    ap = np.asarray(ap, dtype=np.float64)
    return EvalResult(cmc=np.asarray(cmc, dtype=np.float32), mAP=mAP, mINP=mINP,
                      num_valid=int(np.sum(~np.isnan(ap))) if num_valid is None else num_valid,
                      num_query=len(ap), num_gallery=10, rule="sysu", cmc_mode="unique", max_rank=3, ap=ap)


# ---- parity comparator ------------------------------------------------------------------------

def test_compare_results_identical():
    a = _result([0.5, 0.75, 1.0], 0.625, 0.5, [1.0, 0.25, np.nan])
    b = _result([0.5, 0.75, 1.0], 0.625, 0.5, [1.0, 0.25, np.nan])
    c = gc.compare_results(a, b)
    assert c["identical"] and c["queries_with_different_ap"] == 0
    assert c["max_abs_diff"] == {"cmc": 0.0, "mAP": 0.0, "mINP": 0.0, "num_valid": 0}


def test_compare_results_reports_each_difference():
    a = _result([0.5, 0.75, 1.0], 0.625, 0.5, [1.0, 0.25, np.nan])
    b = _result([0.5, 1.0, 1.0], 0.75, 0.375, [1.0, 0.5, np.nan])
    c = gc.compare_results(a, b)
    assert not c["identical"]
    assert c["max_abs_diff"]["cmc"] == pytest.approx(0.25)
    assert c["max_abs_diff"]["mAP"] == pytest.approx(0.125)
    assert c["max_abs_diff"]["mINP"] == pytest.approx(0.125)
    assert c["queries_with_different_ap"] == 1  # only the second query's AP changed
    assert c["cpu"]["mAP"] == 0.625 and c["device"]["mAP"] == 0.75


def test_parity_cpu_against_cpu_is_identical():
    res = gc.parity("cpu", QUICK)
    assert res["status"] == "pass", res["reason"]
    assert set(res["checks"]) == {"distmat", "integer_features", "float_features"}
    assert all(c["identical"] for c in res["checks"].values())
    assert [c["asserted"] for c in res["checks"].values()] == [True, True, False]


def test_parity_fails_naming_the_check_that_differs(monkeypatch):
    """A device evaluation that differs (simulated: the second call of each pair is off by one
    rank-1 hit) fails the asserted check it belongs to."""
    real = gc.evaluate
    calls = {"n": 0}

    def evaluate(*args, **kwargs):
        calls["n"] += 1
        res = real(*args, **kwargs)
        if calls["n"] == 2:  # the device side of the distance-matrix check
            calls["step"] = np.float32(1 / res.num_valid)
            res.cmc = res.cmc.copy()
            res.cmc[0] += calls["step"]
        return res

    monkeypatch.setattr(gc, "evaluate", evaluate)
    res = gc.parity("cpu", QUICK)
    assert res["status"] == "fail" and "distmat" in res["reason"] and "integer_features" not in res["reason"]
    assert res["checks"]["distmat"]["max_abs_diff"]["cmc"] == pytest.approx(float(calls["step"]), rel=1e-5)
    assert res["checks"]["distmat"]["max_abs_diff"]["mAP"] == 0.0


# ---- JSON writer, summary, exit status ----------------------------------------------------------

def _doc(**parts) -> dict:
    return {"schema": gc.SCHEMA, "date": "2026-01-01T00:00:00+00:00", "device": "cuda", "scale": {"name": "full"},
            "seconds": 12.0, "torch": "2.x", "cuda": "13.0", "device_name": "NVIDIA H200", "parts": parts}


def test_write_report_round_trip_and_refusals(tmp_path):
    doc = _doc(preflight={"status": "pass", "part_seconds": 0.1})
    path = gc.write_report(doc, tmp_path / "gpu.json")
    assert json.loads(path.read_text()) == doc
    with pytest.raises(VibenchError, match="is a directory"):
        gc.write_report(doc, tmp_path)
    with pytest.raises(VibenchError, match="not a GPU-check document"):
        gc.write_report({**doc, "schema": "other"}, tmp_path / "x.json")


def test_summary_lines_and_exit_status():
    doc = _doc(
        preflight={"status": "pass", "part_seconds": 1, "gpus": [{"index": 0, "name": "NVIDIA H200", "memory_gib": 139.8}]},
        parity={"status": "fail", "reason": "metrics differ between cpu and cuda: distmat", "part_seconds": 3,
                "checks": {"distmat": {"asserted": True, "identical": False,
                                       "max_abs_diff": {"cmc": 0.001, "mAP": 2e-4, "mINP": 0.0, "num_valid": 0}}}},
        latency={"status": "pass", "part_seconds": 9, "ratio_of": "bit / pmt", "ratio": {"bf16-autocast": 1.5},
                 "methods": {"bit": {"config": "paper", "bf16-autocast": {"ms_per_query": 15.0}},
                             "pmt": {"config": "paper", "bf16-autocast": {"ms_per_query": 10.0}}}},
        throughput={"status": "fail", "part_seconds": 5, "batch": 64,
                    "methods": {"agw": {"config": "paper", "precision": "bf16-autocast", "images_per_second": 2000.0,
                                        "peak_allocated_mib": 1234.0},
                                "tmpa": {"error": "OutOfMemoryError: ..."}}},
        evaluate={"status": "pass", "part_seconds": 2, "shape": [3803, 3010], "seconds_best": 0.0125,
                  "peak_allocated_mib": 300.0},
        evaluate_big={"status": "pass", "part_seconds": 30, "shape": [100000, 100000], "seconds": 25.5,
                      "peak_allocated_mib": 9000.0},
        executor={"status": "skip", "reason": "time budget spent (450 s deadline)"},
    )
    text = gc.format_summary(doc)
    assert "parity      FAIL  (3 s): metrics differ between cpu and cuda: distmat" in text
    assert "parity distmat (asserted): DIFFERENT; max |diff| cmc 0.001, mAP 0.0002, mINP 0" in text
    assert "latency bit (paper): bf16-autocast 15.00 ms per query (paper: 14.0 ms on an L20)" in text
    assert "latency ratio bit / pmt: bf16-autocast 1.50 (paper: 1.40)" in text
    assert "throughput agw (paper, bf16-autocast, batch 64): 2000.0 images/s, 1234 MiB alloc" in text
    assert "throughput tmpa: OutOfMemoryError" in text
    assert "evaluate 3803x3010: 12.5 ms (best of 3), 300 MiB alloc" in text
    assert "evaluate_features 100000x100000: 25.50 s, 9000 MiB alloc" in text
    assert "executor    SKIP" in text and "GPUs: 0: NVIDIA H200 (139.8 GiB)" in text
    assert gc.overall_status(doc) == 1
    ok = _doc(preflight={"status": "pass"}, executor={"status": "skip", "reason": "no GPU"})
    assert gc.overall_status(ok) == 0
    assert gc.overall_status(_doc(evaluate={"status": "error", "reason": "timed out"})) == 1


# ---- latency harness, throughput and evaluate timing on tiny sizes -------------------------------

def test_query_latency_harness_on_tiny_configs():
    res = gc.query_latency(("bit", "pmt"), "cpu", QUICK)
    assert res["status"] == "pass" and res["ratio_of"] == "bit / pmt"
    bit, pmt = res["methods"]["bit"], res["methods"]["pmt"]
    assert set(bit) == {"config", "config_hash", "overrides", "fp32"}  # CPU: one precision, fp32
    assert res["methods"]["bit-nocache"]["overrides"] == ["bit.refine.cache_pairs=0"]
    assert res["methods"]["bit-nocache"]["config_hash"] != bit["config_hash"]
    assert bit["config"] == "tiny" and bit["fp32"]["gallery"] == QUICK.latency_gallery
    assert bit["fp32"]["refine_k"] > 0 and pmt["fp32"]["refine_k"] is None
    assert res["ratio"]["fp32"] == pytest.approx(bit["fp32"]["ms_per_query"] / pmt["fp32"]["ms_per_query"])
    assert res["paper"]["ms_per_query"] == {"bit": 14.0, "pmt": 10.0}


def test_throughput_and_evaluate_timing_on_cpu():
    thr = gc.throughput(["agw"], "cpu", QUICK)
    row = thr["methods"]["agw"]
    assert thr["status"] == "pass" and row["precision"] == "fp32" and not row["channels_last"]
    assert row["images_per_second"] == pytest.approx(QUICK.throughput_batch / (row["ms_per_batch"] / 1000))
    assert row["peak_rss_mib"] > 0
    ev = gc.evaluate_timing("cpu", QUICK)
    assert ev["shape"] == list(QUICK.sysu_multi) and len(ev["seconds"]) == 3
    assert ev["seconds_best"] == min(ev["seconds"])
    big = gc.evaluate_big_timing("cpu", QUICK)
    assert big["shape"] == list(QUICK.big_gallery) and big["num_valid"] > 0


def test_gpu_parts_skip_without_cuda():
    if torch.cuda.is_available():
        pytest.skip("CUDA is present: the parts run instead of skipping")
    for part in ("parity", "latency", "throughput", "evaluate", "evaluate_big", "rehearsal", "executor"):
        res = gc.run_part(part, "cuda", QUICK, Path("."), 10)
        assert res["status"] == "skip" and "CUDA is not available" in res["reason"], part


# ---- rehearsal and executor: planning and the store readers -------------------------------------

def test_executor_planning():
    args = gc.executor_args([0, 1], Path("/tmp/s"), cells_per_gpu=2)
    assert args[:2] == ["run", "--methods"]
    assert args[args.index("--seeds") + 1] == "0,1,2,3"
    assert args[args.index("--gpus") + 1] == "0,1"
    assert args[args.index("--device") + 1] == "cuda" and args[args.index("--out") + 1] == "/tmp/s"
    assert gc.cli_command(["run"])[:3] == [sys.executable, "-m", "vibench.cli"]
    with pytest.raises(VibenchError, match="at least one GPU"):
        gc.executor_args([], Path("/tmp/s"))
    assert gc.rehearsal_args("cuda", Path("/tmp/r"))[:5] == ["run", "--suite", "rehearsal", "--device", "cuda"]


def _store_copy(tmp_path: Path, device: str, training: dict | None = None) -> Path:
    store = tmp_path / "store"
    shutil.copytree(STORE_V1, store)
    (cell,) = (store / "cells").iterdir()
    spec = json.loads((cell / "spec.json").read_text())
    spec["device"] = device
    (cell / "spec.json").write_text(json.dumps(spec))
    if training is not None:
        timings = json.loads((cell / "timings.json").read_text())
        timings["training"] = training
        (cell / "timings.json").write_text(json.dumps(timings))
    return store


def test_executor_outcome_reads_devices_from_the_store(tmp_path):
    store = _store_copy(tmp_path, "cuda:0")
    ok = gc.executor_outcome(store, 1, [0])
    assert ok["status"] == "pass" and ok["devices_used"] == ["cuda:0"]
    bad = gc.executor_outcome(store, 2, [0, 1])
    assert bad["status"] == "fail"
    assert bad["reason"] == "1 of 2 cells completed; GPU(s) [1] ran no cell"


def test_rehearsal_figures_from_training_records(tmp_path):
    training = {"seconds_per_iteration": 2.5, "steady_seconds_per_iteration": 2.0, "images_per_s": 32.0,
                "peak_memory": {"kind": "cuda_allocated", "bytes": 3 * 2**30, "scope": "since_reset"},
                "init": "random (allowed)"}
    rows = gc.rehearsal_figures(_store_copy(tmp_path, "cuda:0", training))
    (row,) = rows
    assert row["method"] == "agw" and row["dataset"] == "regdb" and row["device"] == "cuda:0"
    assert row["seconds_per_iteration"] == 2.0 and row["seconds_per_iteration_kind"].startswith("steady")
    assert row["images_per_second"] == 32.0 and row["peak_memory_mib"] == 3072.0
    assert row["peak_memory_kind"] == "cuda_allocated"
    assert gc.rehearsal_figures(_store_copy(tmp_path / "b", "cpu"))[0]["missing"] == "no training record in timings.json"


# ---- orchestration ----------------------------------------------------------------------------

def test_run_check_in_process_and_the_deadline(tmp_path):
    doc = gc.run_check("cpu", "quick", ["preflight", "parity"], isolate=False, work=tmp_path)
    assert doc["schema"] == gc.SCHEMA and doc["scale"]["name"] == "quick"
    assert [doc["parts"][p]["status"] for p in ("preflight", "parity")] == ["pass", "pass"]
    ticks = iter([0.0, 0.0, 30.0, 30.0])  # start, first part's check, second part's check, end
    doc = gc.run_check("cpu", "quick", ["preflight", "parity"], deadline_s=45, isolate=False, work=tmp_path,
                       clock=lambda: next(ticks))
    assert doc["parts"]["preflight"]["status"] == "pass"  # 45 s left >= MIN_START_S
    assert doc["parts"]["parity"] == {"status": "skip", "reason": "time budget spent (45 s deadline)"}  # 15 s left
    with pytest.raises(VibenchError, match="part"):
        gc.run_check("cpu", "quick", ["nope"], work=tmp_path)
    with pytest.raises(VibenchError, match="scale"):
        gc.run_check("cpu", "huge", ["preflight"], work=tmp_path)


def test_run_isolated_part_in_a_child_process(tmp_path):
    res = gc.run_isolated("preflight", "cpu", QUICK, tmp_path, 120)
    assert res["status"] in ("pass", "fail") and res["torch"] == torch.__version__
    assert (tmp_path / "preflight.json").is_file()


def test_gpu_path_imports_no_report_or_slurm_packages():
    """What the GPU machine must have: the check, the methods and the CLI path of `vibench run`
    import none of pandas, jinja2, matplotlib, scipy, submitit (docs/gpu-check.md)."""
    code = ("import sys, vibench.runner.gpu_check as g, vibench.cli, vibench.commands.run, vibench.runner.matrix\n"
            "from vibench.registry import available_methods, get_method_class\n"
            "[get_method_class(m) for m in available_methods()]\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & set(g.NOT_ON_GPU_PATH)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# ---- on a GPU --------------------------------------------------------------------------------

@pytest.mark.gpu
@needs_cuda
def test_parity_on_cuda_is_identical():
    res = gc.parity("cuda", QUICK)
    assert res["status"] == "pass", res["checks"]


@pytest.mark.gpu
@needs_cuda
def test_device_parts_run_on_cuda():
    thr = gc.throughput(["agw", "pmt"], "cuda", QUICK)
    assert thr["status"] == "pass" and thr["methods"]["agw"]["peak_allocated_mib"] > 0
    assert thr["methods"]["agw"]["precision"] == "bf16-autocast" and thr["methods"]["agw"]["channels_last"]
    lat = gc.query_latency(("bit", "pmt"), "cuda", QUICK)
    assert set(lat["methods"]["bit"]) == {"config", "config_hash", "overrides", "bf16-autocast", "fp32"}
    assert gc.evaluate_timing("cuda", QUICK)["peak_allocated_mib"] > 0
    assert gc.evaluate_big_timing("cuda", QUICK)["peak_allocated_mib"] > 0


def test_run_logged_kills_the_whole_group_on_timeout(tmp_path):
    """A command that outlives its limit is stopped with the processes it started (exit 124)."""
    marker = tmp_path / "grandchild-survived"
    grandchild = tmp_path / "grandchild.py"
    started = tmp_path / "grandchild-started"
    grandchild.write_text(f"import time\nopen({str(started)!r}, 'w').close()\ntime.sleep(5)\n"
                          f"open({str(marker)!r}, 'w').close()\n")
    parent = tmp_path / "parent.py"
    parent.write_text(f"import subprocess, sys, time\nsubprocess.Popen([sys.executable, {str(grandchild)!r}])\n"
                      "time.sleep(60)\n")
    assert gc.run_logged([sys.executable, str(parent)], 4.0, tmp_path / "log") == 124
    if not started.exists():
        pytest.skip("the machine is too busy: the grandchild had not started within 4 s")
    time.sleep(6)
    assert not marker.exists()  # the grandchild was killed with its parent
    assert gc.run_logged([sys.executable, "-c", "print('hi')"], 30, tmp_path / "log2") == 0
    assert (tmp_path / "log2").read_text().strip() == "hi"
