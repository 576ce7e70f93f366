"""The rehearsal suite's parts: the test-id cap, the training-cost record, the measured-cost
files and the --dry-run estimate (hand-computed), without training a paper model."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vibench.data.records import DatasetIndex, ImageRecord
from vibench.engine.peak_memory import read_peak, reset_peak
from vibench.engine.trainer import training_costs
from vibench.errors import VibenchError
from vibench.runner import estimate
from vibench.runner.cells import plan_cells
from vibench.runner.datasources import DataSources, cap_test_ids
from vibench.runner.matrix import RunOptions, plan
from vibench.runner.suites import REHEARSAL_ITERATIONS, get_suite
from vibench.protocols import resolve_protocols


def _index() -> DatasetIndex:
    rec = lambda pid, cam, mod: ImageRecord(f"c{cam}/{pid}.jpg", pid, cam, mod)  # noqa: E731
    test = tuple(rec(p, c, m) for p in (9, 3, 7, 5) for c, m in ((1, "visible"), (3, "infrared")))
    return DatasetIndex("sysu", Path("/x"), (0,), {0: (rec(1, 1, "visible"),)}, {0: test})


def test_cap_keeps_the_first_test_ids_and_the_training_set() -> None:
    index = _index()
    capped = cap_test_ids(index, 2)
    assert sorted({r.pid for r in capped.test(0)}) == [3, 5]
    assert len(capped.test(0)) == 4 and capped.train(0) == index.train(0)
    assert cap_test_ids(index, None) is index
    assert capped.manifest_hash() != index.manifest_hash()


def test_cap_is_part_of_the_data_identity() -> None:
    plain, capped = DataSources(), DataSources.parse([], synthetic_scale="paper-shape", test_ids=24)
    assert plain.identity("sysu") == "synthetic-tiny-s0"
    assert capped.identity("sysu") == "synthetic-paper-shape-s0-test24"
    assert capped.describe("regdb")["test_ids"] == 24
    assert DataSources.from_dict(capped.to_dict()) == capped
    with pytest.raises(VibenchError, match="positive"):
        DataSources.parse([], test_ids=0)


def test_rehearsal_suite_is_explicit_about_random_init() -> None:
    suite = get_suite("rehearsal")
    assert suite.allow_random_init and suite.config == "paper" and suite.synthetic_scale == "paper-shape"
    assert "random" in suite.describe().lower()
    assert f"sampler.iterations={REHEARSAL_ITERATIONS}" in suite.overrides_for("agw")
    assert suite.overrides_for("bit")[-2:] == ("stages.0.epochs=1", "stages.1.epochs=1")
    opts = RunOptions.for_suite("rehearsal", methods="agw,bit")
    assert opts.allow_random_init and opts.test_ids == suite.test_ids
    cells = plan(opts)
    assert sorted({(p.cell.method, p.cell.dataset) for p in cells}) == [("agw", "sysu"), ("bit", "sysu")]
    by_method = {p.cell.method: p.overrides for p in cells}
    assert "stages.0.epochs=1" in by_method["bit"] and "stages.0.epochs=1" not in by_method["agw"]
    assert all(p.cell.data == "synthetic-paper-shape-s0-test24" for p in cells)


def test_training_costs_by_hand() -> None:
    peak = lambda b: {"kind": "rss", "bytes": b, "scope": "since_reset"}  # noqa: E731
    history = [
        {"stage": "a", "iterations": 3, "seconds": 10.0, "first_iteration_s": 4.0, "images_per_iteration": 64,
         "seconds_per_iteration": 3.3333, "peak_memory": peak(100)},
        {"stage": "b", "iterations": 2, "seconds": 3.0, "first_iteration_s": 2.0, "images_per_iteration": 32,
         "seconds_per_iteration": 1.5, "peak_memory": peak(300)},
        {"stage": "a", "iterations": 1, "seconds": 9.0},   # written before these fields existed
    ]
    c = training_costs(history)
    assert c["iterations"] == 5 and c["seconds"] == 13.0
    assert c["seconds_per_iteration"] == pytest.approx(13 / 5, abs=1e-4)
    assert c["steady_seconds_per_iteration"] == pytest.approx((6 + 1) / 3, abs=1e-4)
    assert c["images_per_s"] == pytest.approx((3 * 64 + 2 * 32) / 13, abs=0.01)
    assert c["peak_memory"]["bytes"] == 300
    assert c["stages"]["a"]["steady_seconds_per_iteration"] == pytest.approx(3.0)
    assert c["stages"]["b"]["steady_seconds_per_iteration"] == pytest.approx(1.0)


def test_peak_memory_sees_an_allocation() -> None:
    import torch

    dev = torch.device("cpu")
    was_reset = reset_peak(dev)
    block = np.ones(64 * 2 ** 20 // 8)          # 64 MiB touched
    p = read_peak(dev, was_reset)
    assert p["kind"] == "rss" and p["bytes"] >= block.nbytes
    assert p["scope"] == ("since_reset" if was_reset else "process")


def _costs_file(tmp_path: Path) -> Path:
    path = tmp_path / "rehearsal-cpu.json"
    path.write_text(json.dumps({"device": "cpu", "methods": {
        "agw": {"seconds_per_iteration": 2.0, "stages": {"main": 2.0}, "extract_s_per_image": 0.01},
        "bit": {"seconds_per_iteration": 9.9, "stages": {"backbone": 3.0, "decoder": 0.5}}}}))
    return path


def test_estimate_by_hand_from_known_sizes(tmp_path: Path) -> None:
    """AGW paper on SYSU: 81 epochs x (22,258 // 32 = 695) iterations x 2 s + 11,696 x 0.01 s;
    BIT on RegDB: backbone 40 x (2,060 // 32) x 3 s + decoder 60 x (2,060 // 16) x 0.5 s."""
    specs = resolve_protocols("sysu-all-single,regdb-v2t")
    plans = plan_cells(["agw"], specs[:1], config="paper") + plan_cells(["bit"], specs[1:], config="paper",
                                                                         regdb_splits=(1,))
    est = estimate.estimate_plans(plans, DataSources(), device="cpu", source=_costs_file(tmp_path))
    agw, bit = est.cells
    assert [(s.name, s.epochs, s.iterations) for s in agw.stages] == [("main", 81, 695)]
    assert agw.seconds == pytest.approx(81 * 695 * 2.0 + 11696 * 0.01)
    assert [(s.name, s.epochs, s.iterations) for s in bit.stages] == [("backbone", 40, 64), ("decoder", 60, 128)]
    assert bit.extract_seconds is None and bit.seconds is None and est.total_seconds is None
    text = estimate.format_estimate(est)
    assert "main 81x695" in text and "no measurement for: bit" in text


def test_estimate_uses_the_real_index_when_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index = _index()
    train = tuple(ImageRecord(f"t/{i}.jpg", i % 5, 1 if i % 3 else 3, "visible" if i % 3 else "infrared")
                  for i in range(96))
    index = DatasetIndex("sysu", Path("/x"), (0,), {0: train}, index.test_records)
    data = DataSources((("sysu", str(tmp_path)),))
    monkeypatch.setattr(DataSources, "load", lambda self, d: index)
    p = plan_cells(["agw"], resolve_protocols("sysu-all-single"), config="paper",
                   data=DataSources())   # identity of a synthetic plan; sizes from `data`
    est = estimate.estimate_plans(p, data, device="cpu", source=_costs_file(tmp_path))
    # 64 visible of 96 -> 64 // 32 = 2 iterations; 8 test images
    assert est.cells[0].stages[0].iterations == 2 and est.cells[0].test_images == 8
    assert est.cells[0].sizes == "real index"


def _fake_cell(store: Path, name: str, method: str, spi: float, extract_s: float, n_test: int,
               scale: str = "paper-shape") -> None:
    cell = store / "cells" / name
    cell.mkdir(parents=True)
    (cell / "spec.json").write_text(json.dumps({
        "schema_version": 2, "config_name": "paper", "device": "cpu",
        "cell": {"method": method, "dataset": "sysu", "variant": "standard", "split": 0, "seed": 0,
                 "config": "paper", "config_hash": "0" * 64, "data": f"synthetic-{scale}-s0"},
        "data": {"kind": "synthetic", "scale": scale, "num_test": n_test}}))
    (cell / "timings.json").write_text(json.dumps({"runs": [{"extract_s": extract_s}], "device": "cpu", "training": {
        "steady_seconds_per_iteration": spi, "seconds_per_iteration": spi + 1, "images_per_s": 10.0,
        "stages": {"main": {"steady_seconds_per_iteration": spi}},
        "peak_memory": {"kind": "rss", "bytes": int(spi * 1000)}, "init": {"kind": "random"}}}))
    (cell / "DONE").write_text("{}")


def test_measured_costs_from_a_store_are_medians(tmp_path: Path) -> None:
    store = tmp_path / "store"
    _fake_cell(store, "a1", "agw", 1.0, 10.0, 100)
    _fake_cell(store, "a2", "agw", 3.0, 30.0, 100)
    _fake_cell(store, "a3", "agw", 2.0, 40.0, 200)
    _fake_cell(store, "x", "agw", 50.0, 1.0, 1, scale="tiny")      # not a rehearsal cell
    costs = estimate.measured_from_store(store, "cpu")
    agw = costs.methods["agw"]
    assert agw["cells"] == 3 and agw["seconds_per_iteration"] == 2.0 and agw["stages"] == {"main": 2.0}
    assert agw["extract_s_per_image"] == pytest.approx(0.2)        # median of 0.1, 0.3, 0.2
    assert agw["peak_memory"]["bytes"] == 3000
    assert estimate.measured_from_store(store, "cuda").methods == {}
    written = estimate.write_measured_costs(store, "cpu")
    assert written == store / "rehearsal-cpu.json"
    assert estimate.load_measured(written, "cpu").seconds_per_iteration("agw", "main") == 2.0
    assert estimate.load_measured(store, "cpu").methods["agw"]["cells"] == 3
    with pytest.raises(VibenchError, match="no completed rehearsal cells"):
        estimate.load_measured(tmp_path, "cpu")


def test_estimate_scales_a_smaller_rehearsal_batch(tmp_path: Path) -> None:
    """A CPU rehearsal of AGW at 2 ids x (4 + 4) = 16 images per iteration, 2 s each: the paper's
    8 x (4 + 4) = 64 images per iteration are estimated at 2 x 64 / 16 = 8 s."""
    path = tmp_path / "rehearsal-cpu.json"
    path.write_text(json.dumps({"device": "cpu", "methods": {"agw": {
        "seconds_per_iteration": 2.0, "stages": {"main": 2.0}, "images_per_iteration": 16,
        "stage_images_per_iteration": {"main": 16}, "extract_s_per_image": 0.01}}}))
    plans = plan_cells(["agw"], resolve_protocols("sysu-all-single"), config="paper")
    (stage,) = estimate.estimate_plans(plans, DataSources(), device="cpu", source=path).cells[0].stages
    assert stage.batch_scale == pytest.approx(4.0) and stage.seconds_per_iteration == pytest.approx(8.0)
    assert stage.seconds == pytest.approx(81 * 695 * 8.0)


def test_rehearsal_batch_is_reduced_on_the_cpu_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """On the CPU every method trains 2 identities per batch (BIT's stage 2 too); elsewhere the paper's."""
    from vibench.runner import matrix
    opts = matrix.RunOptions.for_suite("rehearsal", device="cpu", methods="agw,bit")
    by_method = {p.cell.method: p.overrides for p in matrix.plan(opts)}
    assert "sampler.ids_per_batch=2" in by_method["agw"]
    assert {"sampler.ids_per_batch=2", "stages.1.sampler.ids_per_batch=2"} <= set(by_method["bit"])
    monkeypatch.setattr(matrix, "runtime_device", lambda device: "cuda")
    by_method = {p.cell.method: p.overrides for p in matrix.plan(opts)}
    assert not any("ids_per_batch" in o for ov in by_method.values() for o in ov)
