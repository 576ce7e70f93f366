"""BIT method wiring: configs, stages, both training stages, embeddings, refine, parameter counts."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vibench.engine.api import StepState
from vibench.engine.config import load_config
from vibench.errors import VibenchError
from vibench.engine.latency import measure_query_latency as query_latency
from vibench_methods.bit import BITMethod
from vibench.registry import get_method_class


@pytest.fixture(scope="module")
def tiny():
    cfg = load_config("bit", "tiny", "sysu")
    m = get_method_class("bit")(cfg, "sysu")
    torch.manual_seed(0)
    return m, m.build_model(6)


def _batch(b: int = 4):
    lab = torch.arange(b // 2).repeat_interleave(2)
    g = torch.Generator().manual_seed(1)
    return {"vis": torch.randn(b, 3, 64, 32, generator=g), "ir": torch.randn(b, 3, 64, 32, generator=g),
            "vis_label": lab, "ir_label": lab.clone()}


def test_registered_and_stages(tiny):
    m, net = tiny
    assert isinstance(m, BITMethod)
    stages = m.stages()
    assert [s.name for s in stages] == ["backbone", "decoder"]
    assert stages[1].freeze == ("encoder",)
    # BIT Sec. 3.5: stage 1 is identity + triplet only, so no PMT grayscale window by default
    assert all(op["op"] != "grayscale" for op in stages[0].augment["visible"])
    assert m.opts.stage1 == "id_triplet"
    assert net.decoder.n_tokens == 10 and net.decoder.in_dim == 96 and net.decoder.dim == 96


def test_encoder_stage_is_pmt_and_decoder_stage_trains_only_the_decoder(tiny):
    m, net = tiny
    net.train()
    st1 = StepState("backbone", 3, 4, 0, 2, torch.device("cpu"), {"stage_index": 0})
    terms = m.training_step(net, _batch(), st1)
    assert {"id", "triplet"} <= set(terms)
    net.zero_grad()
    st2 = StepState("decoder", 0, 3, 0, 2, torch.device("cpu"), {"stage_index": 1})
    terms = m.training_step(net, _batch(), st2)
    assert set(terms) == {"pair", "ac"}
    sum(terms.values()).backward()
    assert all(p.grad is None for p in net.encoder.parameters())
    assert net.decoder.qa.casm.fc1.weight.grad is not None
    assert net.decoder.blocks[2].visible.attn.q.weight.grad is not None


def test_embed_feat_equals_pmt_and_tokens_are_stored(tiny):
    m, net = tiny
    net.eval()
    x = torch.randn(3, 3, 64, 32)
    e = m.embed(net, x, "infrared")
    assert torch.allclose(e["feat"], m.pmt.embed(net.encoder, x, "infrared")["feat"], atol=1e-6)
    assert e["tokens"].shape == (3, 10 * 96) and e["tokens"].dtype == torch.float16
    assert e["ir"].flatten().tolist() == [1.0, 1.0, 1.0]
    assert m.embed(net, x, "visible")["ir"].sum().item() == 0.0


def test_refine_with_real_decoder_matches_direct_scores(tiny):
    m, net = tiny
    net.eval()
    q = m.embed(net, torch.randn(2, 3, 64, 32), "infrared")
    g = m.embed(net, torch.randn(5, 3, 64, 32), "visible")
    d = m.distance(q, g, np.array(["infrared"] * 2), np.array(["visible"] * 5))
    excl = torch.zeros(2, 5, dtype=torch.bool)
    excl[0, d[0].argmin()] = True
    out = m.refine(net, q, g, d, excl)
    # query 0: the 4 non-excluded items are the candidates (K = 50 > 4), ordered by Psi
    tok_q = q["tokens"].float().reshape(2, 10, 96)
    tok_g = g["tokens"].float().reshape(5, 10, 96)
    with torch.no_grad():
        psi = net.decoder(tok_g, tok_q[0:1].expand(5, -1, -1))["logit"]  # visible stream = gallery
    cands = [j for j in range(5) if not excl[0, j]]
    want = sorted(cands, key=lambda j: -psi[j].item())
    got = torch.argsort(out[0], stable=True).tolist()
    assert got[:4] == want and got[4] == int(d[0].argmin())


def test_decoder_dim_must_divide_heads():
    with pytest.raises(VibenchError, match=r"bit\.decoder\.dim: 50 must be divisible by bit\.decoder\.heads 4  \[from --set bit\.decoder\.dim=50\]"):
        load_config("bit", "tiny", "sysu", ["bit.decoder.dim=50"])


def test_paper_config_parameter_counts_pinned():
    cfg = load_config("bit", "paper", "sysu")
    m = get_method_class("bit")(cfg, "sysu")
    with torch.device("meta"):
        net = m.build_model(395)
    assert net.decoder.n_tokens == 210 and net.decoder.dim == 768
    assert sum(p.numel() for p in net.encoder.parameters()) == 86_114_304
    assert sum(p.numel() for p in net.decoder.parameters()) == 47_318_529


def test_refine_k_is_50_in_the_paper_config_and_10_in_tiny() -> None:
    assert get_method_class("bit")(load_config("bit", "paper", "sysu"), "sysu").refine_k == 50
    for dataset in ("sysu", "regdb", "llcm"):
        assert get_method_class("bit")(load_config("bit", "tiny", dataset), dataset).refine_k == 10


def test_query_latency_runs_for_bit_and_pmt(tiny):
    m, net = tiny
    r = query_latency(m, net, gallery=8, warmup=1, repeats=2)
    assert r["ms_per_query"] > 0 and r["refine_k"] == m.refine_k == 10 and r["device"].startswith("cpu")
    pmt = get_method_class("pmt")(m.pmt.cfg, "sysu")
    r2 = query_latency(pmt, net.encoder, gallery=8, warmup=1, repeats=2)
    assert r2["ms_per_query"] > 0 and r2["refine_k"] is None
