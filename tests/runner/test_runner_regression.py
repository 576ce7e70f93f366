"""The regression check (docs/testing.md): exact parts are bit-identical on any machine, trained
metrics are checked against bands calibrated over seeds and CPU kernel paths, and the check fails
for real regressions (a perturbed baseline, a wrong exclusion rule, a shuffled features file, a
disabled loss term)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from vibench.cli import main
from vibench.errors import VibenchError
from vibench.io import read_json, save_npz_atomic, write_json_atomic
from vibench.paths import RESULTS_DIR
from vibench.runner import regression as rg

BASELINE = RESULTS_DIR / "baselines" / "ci.json"


@pytest.fixture(scope="module")
def baseline() -> dict:
    return rg.load_baseline(BASELINE)


@pytest.fixture(scope="module")
def selection(baseline: dict) -> rg.Selection:
    return rg.Selection.from_dict(baseline["selection"])


# ---- the band rule and row statuses, by hand ----------------------------------------------

def test_band_rule_by_hand() -> None:
    b = rg.band([0.30, 0.32, 0.34], "mAP")  # mean 0.32, sample sd 0.02, half-width 4 x 0.02
    assert b["centre"] == pytest.approx(0.32) and b["spread"] == pytest.approx(0.02)
    assert (b["lo"], b["hi"]) == (pytest.approx(0.24), pytest.approx(0.40))
    flat = rg.band([0.5, 0.5, 0.5], "rank1")  # no spread: the floor (2 points for rank-1) applies
    assert (flat["lo"], flat["hi"]) == (pytest.approx(0.48), pytest.approx(0.52))


def test_mean_band_needs_every_protocol() -> None:
    runs = [{"a/p/mAP": 0.2, "a/q/mAP": 0.4}, {"a/p/mAP": 0.3, "a/q/mAP": 0.5}]
    bands = rg.make_bands(runs)
    assert bands[f"{rg.MEAN_KEY}/mAP"]["centre"] == pytest.approx(0.35)
    assert f"{rg.MEAN_KEY}/mAP" not in rg.with_mean({"a/p/mAP": 0.2}, ["a/p/mAP", "a/q/mAP"])
    with pytest.raises(VibenchError, match="at least two runs"):
        rg.make_bands(runs[:1])


def test_row_statuses() -> None:
    assert rg.CheckRow("band", "k", 0.5, 0.6, 0.4, 0.6).status == "ok"  # inclusive
    assert rg.CheckRow("band", "k", 0.5, 0.6000001, 0.4, 0.6).status == "FAIL"
    assert rg.CheckRow("exact", "k", 0.1 + 0.2, 0.3).status == "FAIL"  # exact means exact
    assert rg.CheckRow("exact", "k", "abc", None).status == "MISSING"
    assert rg.CheckRow("band", "k", None, 0.3).status == "new"


# ---- the exact part -----------------------------------------------------------------------

def test_reference_feature_distances_are_exact_multiples_of_one_sixteenth(selection: rg.Selection) -> None:
    """Normalised entries are +-1/4, so every cosine is k/16 whatever the summation order."""
    import torch

    index = rg._dataset("regdb", selection.synthetic_scale)
    arrays = rg.make_reference_features(index)
    f = torch.from_numpy(arrays["features"])
    assert torch.equal((f != 0).sum(1), torch.full((f.shape[0],), 16))
    unit = torch.nn.functional.normalize(f, dim=1)
    assert set(unit.abs().unique().tolist()) == {0.0, 0.25}
    sims = (unit @ unit.T * 16).numpy()
    assert np.array_equal(sims, np.round(sims))
    # the committed file is what this function writes (numpy's PCG64 is platform independent)
    committed = np.load(rg.reference_dir(BASELINE) / "regdb.npz")
    assert np.array_equal(committed["features"], arrays["features"])
    assert committed["paths"].tolist() == arrays["paths"].tolist()


def test_exact_part_of_the_committed_baseline_passes(capsys: pytest.CaptureFixture) -> None:
    assert main(["check", "--exact-only"]) == 0
    out = capsys.readouterr().out
    assert ", 0 failed" in out and "values identical" in out


def test_wrong_exclusion_rule_is_caught(baseline: dict, selection: rg.Selection) -> None:
    """Scoring the reference features with no exclusion (instead of each protocol's rule)
    changes the reference metrics of the SYSU protocols, whose rule removes same-camera
    pairs of cameras 2 and 3."""
    got = rg.score_reference(selection, rg.reference_dir(BASELINE), rule_override="none")
    rows = rg.check_exact(baseline["exact"]["reference_metrics"], got)
    failed = {r.key.split("/")[0] for r in rows if r.failed}
    assert "sysu-all-single" in failed and "sysu-indoor-multi" in failed


def test_shuffled_features_file_is_caught(tmp_path: Path, baseline: dict, selection: rg.Selection) -> None:
    ref = tmp_path / "ref"
    shutil.copytree(rg.reference_dir(BASELINE), ref)
    data = dict(np.load(ref / "llcm.npz"))
    data["features"] = np.random.default_rng(1).permutation(data["features"])
    save_npz_atomic(ref / "llcm.npz", **data)
    rows = rg.check_exact(baseline["exact"], rg.exact_fingerprint(selection, ref))
    failed = {r.key for r in rows if r.failed}
    assert "reference_files/llcm" in failed
    assert any(k.startswith("reference_metrics/llcm-i2v/") for k in failed)
    assert not any(k.startswith(("synthetic_data/", "protocol_lists/")) for k in failed)


# ---- the bands -----------------------------------------------------------------------------

def _fake_store(root: Path, baseline: dict, values: dict[str, float]) -> Path:
    """A store holding `values` (baseline keys) as completed cells, without rankings."""
    from vibench.store.identity import Cell
    from vibench.store.layout import open_cell

    by_cell: dict[str, dict[str, dict[str, float]]] = {}
    for key, v in values.items():
        if key.startswith(rg.MEAN_KEY):
            continue
        method, dataset, variant, split, protocol, metric = key.split("/")
        by_cell.setdefault(f"{method}/{dataset}/{variant}/{split}", {}).setdefault(protocol, {})[metric] = v
    for ck, protocols in by_cell.items():
        method, dataset, variant, split = ck.split("/")
        cell = Cell(method, dataset, variant, int(split[len("split"):]), 0, "tiny", baseline["config_hashes"][ck],
                    "synthetic-tiny-s0")
        cd = open_cell(root, cell)
        cd.write_spec({"schema_version": 2, "cell": cell.to_dict()})
        for protocol, summary in protocols.items():
            cd.write_metrics({"schema_version": 2, "protocol": protocol, "trials": {}, "summary": summary})
        cd.mark_done(sorted(protocols))
    return root


def test_calibration_covers_seeds_and_every_kernel_path(baseline: dict) -> None:
    runs = baseline["bands"]["calibration"]["runs"]
    assert {r["kernel"] for r in runs} == set(rg.KERNEL_PATHS)
    assert len({r["seed"] for r in runs}) >= 2
    bands = baseline["bands"]["metrics"]
    assert f"{rg.MEAN_KEY}/mAP" in bands
    assert all(b["n"] == len(runs) and b["lo"] <= b["min"] <= b["max"] <= b["hi"] for b in bands.values())


def test_bands_hold_out_of_sample_for_every_calibration_run(baseline: dict) -> None:
    """Each calibration run (a seed on a kernel path) lies inside the bands made from the other
    runs: the rule does not only fit the runs it was made from."""
    assert rg.leave_one_out(baseline) == []


def test_perturbed_baseline_fails(tmp_path: Path, baseline: dict, capsys: pytest.CaptureFixture) -> None:
    run = baseline["bands"]["calibration"]["runs"][0]
    store = _fake_store(tmp_path / "store", baseline, run["values"])
    rows = rg.check_store(baseline, store)
    assert [r for r in rows if r.failed] == []

    key = next(k for k in baseline["bands"]["metrics"] if k.endswith("sysu-all-single/mAP"))
    perturbed = json.loads(json.dumps(baseline))
    b = perturbed["bands"]["metrics"][key]
    shift = (b["hi"] - b["lo"]) + 0.01
    b.update(centre=b["centre"] + shift, lo=b["lo"] + shift, hi=b["hi"] + shift)
    bad = [r for r in rg.check_store(perturbed, store) if r.failed]
    assert [r.key for r in bad] == [key]
    text = rg.format_rows(rg.check_store(perturbed, store))
    assert "FAIL" in text and key in text


def test_check_cli_exit_codes(tmp_path: Path, baseline: dict, capsys: pytest.CaptureFixture) -> None:
    assert main(["check", "--baseline", str(tmp_path / "nope.json"), "--exact-only"]) == 2
    assert "does not exist" in capsys.readouterr().err
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"schema_version": 1, "metrics": {}}))
    assert main(["check", "--baseline", str(old), "--exact-only"]) == 2
    assert "schema_version 1" in capsys.readouterr().err
    assert main(["baseline", "--finished-only", "--out", str(tmp_path / "b.json")]) == 2
    assert "--finished-only needs --work" in capsys.readouterr().err
    assert main(["baseline", "--finished-only", "--work", str(tmp_path), "--out", str(tmp_path / "b.json")]) == 2
    assert "no finished calibration run" in capsys.readouterr().err
    assert not (tmp_path / "b.json").exists()


@pytest.mark.slow
def test_disabled_triplet_term_fails_the_bands(tmp_path: Path, baseline: dict, selection: rg.Selection,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A silent bug (AGW's WRT triplet term computed as zero, the config unchanged) is caught by
    the trained-metric bands, while config hashes and re-scoring still pass. Only the ci suite's
    SYSU cell on sysu-all-single is trained (about 25 s). Measured with `--set loss.triplet=none`
    on the whole ci suite (seed 0, this repository's 2-core Xeon): sysu-all-single mAP 11.7 against
    the calibrated band 18.6-42.8, mean mAP over protocols 11.1 against the band 23.0-32.9."""
    from dataclasses import replace

    import vibench_methods.losses.triplet as triplet
    from vibench.runner.matrix import run_matrix

    monkeypatch.setattr(triplet, "weighted_regularized_triplet", lambda feats, labels: feats.sum() * 0.0)
    out = tmp_path / "store"
    assert run_matrix(replace(selection, protocols="sysu-all-single").run_options(out=out)) == 0
    rows = rg.check_store(baseline, out)
    failed = {r.key for r in rows if r.failed}
    assert "config_hash/agw/sysu/standard/split0" not in failed
    assert not any(r.part == "rescore" and r.failed for r in rows)
    assert "agw/sysu/standard/split0/sysu-all-single/mAP" in failed, rg.format_rows(rows, verbose=True)
