"""Fixtures of the report tests: a small fake result store in the docs/ARCHITECTURE.md format.

Store contents (all deterministic):
* bit  / sysu  / standard / split 0: sysu-all-single and sysu-indoor-single, trials 0..9;
  rankings (with paths and pids) for sysu-all-single trial 0; tiny images in the data root.
* pmt  / sysu  / standard / split 0: sysu-all-single trials 0..9, sysu-indoor-single trials
  0..8 only (trial 9 missing -> "—").
* bit  / regdb / standard / splits 1..10: regdb-v2t and regdb-t2v.
* pmt  / regdb / standard / splits 1..9 (split 10 missing -> "—").
* bit  / sysu  / sysu-imb-ir10 / split 0: sysu-all-single trials 0..9.
* an incomplete cell (no DONE) that must be ignored.
Every synthetic cell carries an untrained reference (trained base x 0.3).
With ``real=True`` (the ``rendered`` fixture) also cells labelled real data (manifest hash
``feedface...``), config ``paper``:
* bit / sysu / standard / split 0: sysu-all-single trials 0..9 (base 0.55), latency 20 ms,
  rankings for trial 0.
* agw / regdb / standard / splits 1..10: regdb-v2t (base 0.62).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from PIL import Image

PAPER_TABLES = Path(__file__).parent / "data" / "paper_tables.md"
GOLDEN = Path(__file__).parent / "golden"
HOSTILE = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>')


def _trial(base: float, t: int, max_rank: int = 20) -> dict[str, Any]:
    cmc = [min(1.0, round(base + 0.02 * k + 0.001 * t, 6)) for k in range(max_rank)]
    return {"cmc": cmc, "mAP": round(base - 0.05 + 0.001 * t, 6),
            "mINP": round(base - 0.2 + 0.001 * t, 6), "num_valid": 10, "num_query": 10,
            "num_gallery": 20, "list_sha256": f"{t:064x}", "padded_queries": 0}


def _metrics(protocol: str, dataset: str, trials: dict[int, float],
             untrained: bool) -> dict[str, Any]:
    tr = {str(t): _trial(b, t) for t, b in trials.items()}
    doc = {"schema_version": 1, "protocol": protocol, "protocol_version": 1, "dataset": dataset,
           "rule": "sysu" if dataset == "sysu" else "regdb", "cmc_mode": "unique",
           "max_rank": 20, "rerank": None, "trials": tr, "summary": {}}
    if untrained:
        doc["untrained"] = {"trials": {str(t): _trial(round(b * 0.3, 6), t)
                                       for t, b in trials.items()}}
    return doc


def write_cell(root: Path, method: str, dataset: str, variant: str, split: int, seed: int,
               metrics: dict[str, dict[int, float]], *, data_root: Path, done: bool = True,
               latency_ms: float | None = None, params: int | None = None,
               config_name: str = "tiny", config_hash: str = "c0ffee",
               manifest_hash: str | None = None, device: str = "Test CPU",
               init: dict | None = None) -> Path:
    """Write one cell directory of the result store in the schema-1 format (read by migration);
    a config other than the default gets its own directory name suffix."""
    cell_id = f"{method}__{dataset}__{variant}__split{split}__seed{seed}"
    if (config_name, config_hash) != ("tiny", "c0ffee"):
        cell_id += f"__{config_name}-{config_hash}"
    if manifest_hash is not None:  # a real tree instead of the synthetic data
        cell_id += f"__real-{manifest_hash}"
    safe = "".join(c if c.isalnum() or c in "_-" else "_" for c in cell_id)
    d = root / "cells" / safe
    (d / "metrics").mkdir(parents=True)
    data = ({"kind": "synthetic", "scale": "tiny", "seed": 0, "dataset": dataset,
             "root": str(data_root), "manifest_hash": "m0"} if manifest_hash is None else
            {"kind": "real", "dataset": dataset, "root": str(data_root), "manifest_hash": manifest_hash})
    spec = {"schema_version": 1,
            "cell": {"method": method, "dataset": dataset, "variant": variant, "split": split,
                     "seed": seed, "cell_id": cell_id},
            "config_name": config_name, "config_hash": config_hash, "data": data,
            "variant": variant,
            "protocols": {p: {"version": 1, "trials": {str(t): f"{t:064x}" for t in tr}}
                          for p, tr in metrics.items()},
            "provenance": {"git": {"commit": "0123456789abcdef0123", "dirty": False},
                           "hardware": {"cpu": "Test CPU", "device": "cpu"}},
            "device": "cpu", **({"init": init} if init else {})}
    (d / "spec.json").write_text(json.dumps(spec))
    for p, trials in metrics.items():
        (d / "metrics" / f"{p}.json").write_text(json.dumps(
            _metrics(p, dataset, trials, untrained=manifest_hash is None)))
    if latency_ms is not None:
        (d / "model.json").write_text(json.dumps({
            "params": {"registered": params, "effective": params},
            "latency": {"device": device, "ms_per_query": latency_ms, "precision": "fp32"}}))
    if done:
        (d / "DONE").write_text(json.dumps({"protocols": sorted(metrics)}))
    return d


def _images(data_root: Path) -> tuple[list[str], list[int], list[str], list[int]]:
    """10 query and 20 gallery tiny images; pid = index // 2 (query) and index // 4 (gallery)."""
    q, qp, g, gp = [], [], [], []
    for i in range(10):
        rel = f"query/{i:03d}.png"
        q.append(rel)
        qp.append(i // 2)
    for j in range(20):
        rel = f"gallery/{j:03d}.png"
        g.append(rel)
        gp.append(j // 4)
    for k, rel in enumerate(q + g):
        p = data_root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 16), ((k * 37) % 255, (k * 91) % 255, 120)).save(p)
    return q, qp, g, gp


REAL = "feedface" * 8
#: the spec "init" record of a cell trained from the ViT-B/16 ImageNet file (vibench.runner.weights)
IMAGENET_VIT = {"kind": "imagenet", "arch": "vit_base", "name": "timm vit_base_patch16_224.orig_in21k_ft_in1k",
                "sha256": "80ecf9dd" + "0" * 56, "label": "imagenet (timm vit_base_patch16_224.orig_in21k_ft_in1k, sha256 80ecf9dd)"}


def build_store(root: Path, *, method_names: tuple[str, str] = ("bit", "pmt"),
                images: bool = True, real: bool = False) -> Path:
    """The fake result store described in the module docstring."""
    data_root = root / "data"
    data_root.mkdir(parents=True)
    bit, pmt = method_names
    sysu = range(10)
    bcell = write_cell(root, bit, "sysu", "standard", 0, 0,
                       {"sysu-all-single": {t: 0.70 for t in sysu},
                        "sysu-indoor-single": {t: 0.75 for t in sysu}},
                       data_root=data_root, latency_ms=12.5, params=133_400_000)
    write_cell(root, pmt, "sysu", "standard", 0, 0,
               {"sysu-all-single": {t: 0.60 for t in sysu},
                "sysu-indoor-single": {t: 0.65 for t in range(9)}},
               data_root=data_root, latency_ms=9.0, params=86_110_000)
    for s in range(1, 11):
        write_cell(root, bit, "regdb", "standard", s, 0,
                   {"regdb-v2t": {s: 0.80 + 0.001 * s}, "regdb-t2v": {s: 0.78 + 0.001 * s}},
                   data_root=data_root)
    for s in range(1, 10):
        write_cell(root, pmt, "regdb", "standard", s, 0,
                   {"regdb-v2t": {s: 0.70}, "regdb-t2v": {s: 0.68}}, data_root=data_root)
    write_cell(root, bit, "sysu", "sysu-imb-ir10", 0, 0,
               {"sysu-all-single": {t: 0.66 for t in sysu}}, data_root=data_root)
    write_cell(root, pmt, "sysu", "sysu-imb-ir20", 0, 0,
               {"sysu-all-single": {t: 0.5 for t in sysu}}, data_root=data_root, done=False)
    cells = [bcell]
    if real:
        cells.append(write_cell(root, bit, "sysu", "standard", 0, 0,
                                {"sysu-all-single": {t: 0.55 for t in sysu}},
                                data_root=data_root, latency_ms=20.0, params=133_400_000,
                                config_name="paper", config_hash="beef00",
                                manifest_hash=REAL, device="Test GPU", init=IMAGENET_VIT))
        for s in range(1, 11):
            write_cell(root, "agw", "regdb", "standard", s, 0, {"regdb-v2t": {s: 0.62}},
                       data_root=data_root, config_name="paper", config_hash="beef00",
                       manifest_hash=REAL)
    if images:
        q, qp, g, gp = _images(data_root)
        rank = np.array([[(i * 3 + k) % 20 for k in range(10)] for i in range(10)])
        for c in cells:
            (c / "rankings" / "sysu-all-single").mkdir(parents=True)
            np.savez(c / "rankings" / "sysu-all-single" / "trial-0.npz", indices=rank,
                     query_paths=np.array(q), gallery_paths=np.array(g), q_pids=np.array(qp),
                     g_pids=np.array(gp))
    return root


@pytest.fixture
def cell_writer() -> Callable[..., Path]:
    """:func:`write_cell` (test modules cannot import conftest under importlib mode)."""
    return write_cell


@pytest.fixture
def store_factory(tmp_path: Path) -> Callable[..., Path]:
    """Build a fake store under a fresh folder: store_factory(name, **kwargs) -> store root."""
    def make(name: str = "store", **kwargs: Any) -> Path:
        return build_store(tmp_path / name, **kwargs)
    return make


#: paper-config parameter counts handed to build_report (computing them builds every model); fixed
#: values so the goldens stay put when a model changes (TMPA's are from before issue 14: 71.80M now)
PARAM_COUNTS = {"bit": {"params": {"sysu": 133_429_761, "regdb": 133_284_609},
                        "effective": {"sysu": 85_810_944, "regdb": 85_810_944}},
                "tmpa": {"params": {"sysu": 77_707_456, "regdb": 76_546_240},
                         "effective": {"sysu": 75_272_384, "regdb": 75_272_384}}}


#: a fixed paper-config costs document (the committed results/costs one changes when re-measured)
PAPER_COSTS = Path(__file__).parent / "data" / "paper-costs.json"


def render(store: Path | None, out: Path, **kwargs: Any) -> Any:
    """build_report with fixed parameter counts, costs and render info (deterministic output)."""
    from vibench.report.build import RenderInfo, build_report

    kwargs.setdefault("param_counts", PARAM_COUNTS)
    kwargs.setdefault("costs_file", PAPER_COSTS)
    kwargs.setdefault("render_info", RenderInfo("2000-01-01 00:00 UTC", "0123456789ab",
                                                "python 3"))
    return build_report(store, out, **kwargs)


@pytest.fixture
def renderer() -> Callable[..., Any]:
    """:func:`render` for test modules."""
    return render


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The fake store with real-data cells rendered once per module as a site (no plots):
    {'store', 'out'}."""
    base = tmp_path_factory.mktemp("rendered")
    store = build_store(base / "store", real=True)
    out = base / "out"
    render(store, out, site=True, plots_enabled=False)
    return {"store": store, "out": out}
