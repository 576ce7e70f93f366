"""Learnability check (issue 4, item 7): AGW `tiny` trained on synthetic (small-scale) SYSU-MM01 reaches at
least 3x the cross-modal Rank-1 (sysu-all-single, mean over the 10 gallery trials) of the same
model untrained, and stays below 95% (a sanity bound against leaks). Trained and evaluated through
the runner (`run_cell`, the one evaluation path), with the untrained reference in the same cell.

Measured margin: rank-1 0.248 trained vs 0.058 untrained (4.3x) when this test was written (2-core
AMD EPYC); it passes on the three ATen kernel paths of this repository's AVX-512 Xeon
(docs/testing.md, "Outcomes")."""
from __future__ import annotations

import json
import os

import pytest
import torch

# The tiny synthetic scale has 32 training identities: too few for a from-scratch model to learn
# cross-modal features that transfer to unseen identities (measured: R1 at chance after 400
# iterations). The "small" scale (128 training ids, 64 test ids) is the smallest that does.
SCALE = os.environ.get("VIBENCH_LEARNABILITY_SCALE", "small")


@pytest.mark.slow
def test_agw_tiny_learns_on_synthetic_sysu(tmp_path_factory):
    from vibench.protocols import resolve_protocols
    from vibench.runner.cells import plan_cells
    from vibench.runner.datasources import DataSources
    from vibench.runner.execute import run_cell
    from vibench.store import open_cell

    data = DataSources(synthetic_scale=SCALE)
    (plan,) = plan_cells(["agw"], resolve_protocols("sysu-all-single"), config="tiny", data=data,
                         untrained_reference=True)
    out = tmp_path_factory.mktemp("agw")
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # a fixed thread count keeps the CPU result reproducible
    try:
        outcome = run_cell(plan, out=out, data=data, device="cpu")
    finally:
        torch.set_num_threads(n)
    assert outcome.status == "done", outcome.error
    cd = open_cell(out, plan.cell)
    metrics = cd.read_metrics("sysu-all-single")
    r1_trained, r1_untrained = metrics["summary"]["rank1"], metrics["untrained"]["summary"]["rank1"]
    log = [json.loads(line) for line in (cd.train_dir / "train_log.jsonl").read_text().splitlines() if line]
    losses = [e["losses"]["loss"] for e in log if "losses" in e]
    print(f"AGW tiny on synthetic {SCALE} SYSU: R1 untrained {r1_untrained:.4f}, trained {r1_trained:.4f}")
    assert losses[-1] < losses[0]
    assert r1_trained >= 3 * r1_untrained, (r1_trained, r1_untrained)
    assert r1_trained < 0.95
