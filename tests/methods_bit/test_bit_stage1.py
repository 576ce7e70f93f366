"""BIT stage 1 (Sec. 3.5): identity + triplet only by default; ``bit.stage1: pmt`` restores PMT's
recipe (grayscale epochs, intra-modality triplets, DCL, MSEL)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vibench.engine.api import StepState
from vibench.engine.config import load_config
from vibench.errors import VibenchError
from vibench.registry import get_method_class


def _method(dataset: str = "sysu", *sets: str):
    cfg = load_config("bit", "tiny", dataset, list(sets))
    m = get_method_class("bit")(cfg, dataset)
    torch.manual_seed(0)
    return m, m.build_model(3)


def _batch():
    lab = torch.tensor([0, 0, 1, 1, 2, 2])
    g = torch.Generator().manual_seed(3)
    return {"vis": torch.rand(6, 3, 64, 32, generator=g), "ir": torch.rand(6, 3, 64, 32, generator=g),
            "vis_label": lab, "ir_label": lab.clone()}


def _hand_batch_hard(f: torch.Tensor, y: torch.Tensor, margin: float) -> float:
    """Batch-hard triplet written out per anchor: max over positives, min over negatives of the
    Euclidean distance, hinge with the margin, mean over anchors."""
    f = f.double()
    total = 0.0
    for a in range(len(y)):
        d = [float((f[a] - f[j]).norm()) for j in range(len(y))]
        d_ap = max(d[j] for j in range(len(y)) if y[j] == y[a])
        d_an = min(d[j] for j in range(len(y)) if y[j] != y[a])
        total += max(0.0, d_ap - d_an + margin)
    return total / len(y)


def _state(epoch: int) -> StepState:
    return StepState("backbone", epoch, 20, 0, 15, torch.device("cpu"), {"stage_index": 0})


def test_stage1_default_is_exactly_identity_plus_cross_modal_triplet():
    m, net = _method()
    net.train()  # tiny: dropout and drop-path 0, so the step and the hand forward agree
    b = _batch()
    for epoch in (0, 1, 5):  # also inside PMT's grayscale window (pl_epochs 2 in the pmt variant)
        terms = m.training_step(net, b, _state(epoch))
        assert set(terms) == {"id", "triplet"}
        with torch.no_grad():
            out = net.encoder(torch.cat([b["vis"], b["ir"]]))
        logits, g = out["logits"].float(), out["global"].float()
        y = torch.cat([b["vis_label"], b["ir_label"]])
        ce = F.cross_entropy(logits[:6], b["vis_label"]) + F.cross_entropy(logits[6:], b["ir_label"])
        assert float(terms["id"].detach()) == pytest.approx(float(ce), rel=1e-5)
        # one triplet over visible and infrared features together (cross-modal positives possible)
        assert float(terms["triplet"].detach()) == pytest.approx(_hand_batch_hard(g, y, 0.1), rel=1e-4, abs=1e-6)


def test_stage1_default_has_no_grayscale_window_and_ignores_pmt_weights():
    m, _ = _method("sysu", "loss.dcl_weight=0.7")
    assert m.pmt.config.pmt.pl_epochs == 0 and not m.pmt.config.pmt.gray_stream
    assert m.pmt.config.loss.dcl_weight == 0.0 and m.pmt.config.loss.msel_weight == 0.0
    assert all(op["op"] != "grayscale" for op in m.stages()[0].augment["visible"])


def test_pmt_variant_restores_the_pmt_recipe():
    m, net = _method("sysu", "bit.stage1=pmt")
    net.train()
    b = _batch()
    first = m.stages()[0].augment["visible"][0]
    assert first == {"op": "grayscale", "epochs": [0, 2]}  # tiny bit.pmt.pl_epochs = 2
    # inside the window: intra-modality triplets, no DCL / MSEL
    t0 = m.training_step(net, b, _state(0))
    assert set(t0) == {"id", "triplet"}
    with torch.no_grad():
        g = net.encoder(torch.cat([b["vis"], b["ir"]]))["global"].float()
    want = _hand_batch_hard(g[:6], b["vis_label"], 0.1) + _hand_batch_hard(g[6:], b["ir_label"], 0.1)
    assert float(t0["triplet"].detach()) == pytest.approx(want, rel=1e-4, abs=1e-6)
    # after it: PMT's full loss with DCL and MSEL at their configured weights
    t2 = m.training_step(net, b, _state(2))
    assert set(t2) == {"id", "triplet", "dcl", "msel"}
    pmt_terms = m.pmt.training_step(net.encoder, b, _state(2))
    for k in t2:
        assert float(t2[k].detach()) == pytest.approx(float(pmt_terms[k].detach()), rel=1e-6)


def test_unknown_stage1_recipe_is_refused():
    with pytest.raises(VibenchError, match="stage1"):
        load_config("bit", "tiny", "sysu", ["bit.stage1=pmtt"])


def test_paper_augmentation_is_pmts_in_pmts_order():
    """BIT Sec. 7: flip + random erasing on both modalities, jitter / blur on infrared only, the
    PMT transforms; the infrared jitter / blur comes first there (erased pixels are not jittered)."""
    for dataset in ("sysu", "regdb", "llcm"):
        bit = load_config("bit", "paper", dataset)["augment"]
        pmt = load_config("pmt", "paper", dataset)["augment"]
        assert bit["visible"] == pmt["visible"]
        assert bit["infrared"] == pmt["infrared"]
        assert [op["op"] for op in bit["infrared"]] == ["random_choice", "hflip", "random_erasing"]
