"""FLOP counting, paper_costs and `vibench methods costs` (docs/methods.md#measured-costs-of-the-paper-configs).

FLOPs are checked against hand counts (2 per multiply-accumulate); the method tests use the tiny
configs so they stay fast and independent of the paper configs' exact counts, which other work
changes."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from vibench.cli import main
from vibench.engine.config import config_hash, load_config
from vibench.engine.latency import count_flops, costs_document, paper_costs
from vibench.errors import VibenchError


def test_count_flops_linear_conv_and_attention_by_hand():
    lin = nn.Linear(10, 20)
    assert count_flops(lambda: lin(torch.zeros(3, 10))) == 2 * 3 * 10 * 20
    conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
    # every output pixel: 3 x 3 x 3 MACs per output channel; 4 channels, 5 x 6 pixels
    assert count_flops(lambda: conv(torch.zeros(1, 3, 5, 6))) == 2 * (3 * 3 * 3) * 4 * 5 * 6
    q = torch.randn(1, 2, 5, 8)
    # attention: Q K^T (5 x 5 x 8 MACs per head) and A V (the same), 2 heads; counted on CPU too
    assert count_flops(lambda: nn.functional.scaled_dot_product_attention(q, q, q)) == 2 * 2 * (2 * 5 * 5 * 8)


def test_paper_costs_on_a_tiny_config():
    e = paper_costs("agw", config="tiny", gallery=8, warmup=1, repeats=1)
    assert e["config"] == "tiny" and e["config_hash"] == config_hash(load_config("agw", "tiny", dataset="sysu"))
    assert e["num_classes"] == 395 and e["input_size"] == list(load_config("agw", "tiny", dataset="sysu")["input"]["size"])
    fl = e["flops"]
    assert fl["macs_per_image"] == fl["per_image"] // 2 and fl["macs_per_query"] == fl["per_query"] // 2
    # one query = the embedding + the 1 x 8 x D distance product (+ nothing else for AGW)
    assert 0 < fl["per_image"] < fl["per_query"] <= fl["per_image"] + 2 * 8 * 4096
    lat = e["latency"]
    assert lat["batch"] == 1 and lat["precision"] == "fp32" and lat["gallery"] == 8 and lat["refine_k"] is None
    assert lat["ms_per_image"] > 0 and lat["ms_per_query"] > 0
    assert e["params"]["registered"] >= e["params"]["effective"] > 0


def test_bit_query_costs_include_the_decoder_over_k_candidates():
    k = load_config("bit", "tiny", dataset="sysu")["bit"]["refine"]["k"]
    e = paper_costs("bit", config="tiny", gallery=k, warmup=1, repeats=1)
    assert e["latency"]["refine_k"] == k
    # the decoder runs on K pairs per query: far more work than the embedding alone
    assert e["flops"]["per_query"] > e["flops"]["per_image"] + k * 1000
    with pytest.raises(VibenchError, match="smaller than bit's K"):
        paper_costs("bit", config="tiny", gallery=k - 1)


def test_costs_document_keeps_other_methods():
    prev = costs_document({"agw": {"x": 1}}, device="cpu A", threads=1, note="", command="c", date="d1")
    doc = costs_document({"pmt": {"x": 2}}, device="cpu B", threads=2, note="busy", command="c", date="d2",
                         previous=prev)
    assert list(doc["methods"]) == ["agw", "pmt"]
    assert doc["methods"]["agw"]["measured"]["device"] == "cpu A"
    assert doc["methods"]["pmt"]["measured"] == {"date": "d2", "device": "cpu B", "threads": 2,
                                                  "torch": torch.__version__, "note": "busy", "command": "c"}
    assert doc["schema"] == "vibench-costs/1" and "2 FLOPs per multiply-accumulate" in doc["flops_convention"]


def test_methods_costs_command_writes_and_merges(tmp_path, capsys):
    out = tmp_path / "costs.json"
    args = ["methods", "costs", "--config", "tiny", "--gallery", "8", "--warmup", "1", "--repeats", "1",
            "--threads", "1", "--out", str(out)]
    assert main([*args, "--methods", "agw"]) == 0
    assert main([*args, "--methods", "pmt", "--note", "busy"]) == 0
    doc = json.loads(out.read_text())
    assert sorted(doc["methods"]) == ["agw", "pmt"]
    assert doc["methods"]["pmt"]["measured"]["threads"] == 1 and doc["last_run"]["note"] == "busy"
    assert "--methods pmt" in doc["methods"]["pmt"]["measured"]["command"]
    assert "wrote" in capsys.readouterr().out
    assert main([*args, "--methods", "nope"]) == 2
    assert main(["methods", "costs", "--threads", "0", "--methods", "agw"]) == 2
