"""BIT Query Aware Scoring (Eq. 6-12) against hand computations."""
from __future__ import annotations

import math

import pytest
import torch

from vibench_methods.bit import (
    CASM,
    BITDecoder,
    QueryAwareScoring,
    mutual_matches,
    patch_scores,
    patch_similarities,
    smooth_complement,
    topk_mask,
)


def _t(rows):
    return torch.tensor(rows, dtype=torch.float32).unsqueeze(0)  # (1, N, N): one pair


def test_patch_similarities_are_row_softmax_both_ways():
    f_v = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    f_i = torch.tensor([[[2.0, 0.0], [0.0, 0.0]]])
    s_vi, s_iv = patch_similarities(f_v, f_i)
    r = 2 / math.sqrt(2)  # F_v F_i^T / sqrt(C): [[sqrt2, 0], [0, 0]]
    e = math.exp(r)
    assert torch.allclose(s_vi[0], torch.tensor([[e / (e + 1), 1 / (e + 1)], [0.5, 0.5]]), atol=1e-6)
    # S_iv normalises the transpose row-wise: rows are infrared patches
    assert torch.allclose(s_iv[0], torch.tensor([[e / (e + 1), 1 / (e + 1)], [0.5, 0.5]]), atol=1e-6)
    assert torch.allclose(s_vi.sum(-1), torch.ones(1, 2)) and torch.allclose(s_iv.sum(-1), torch.ones(1, 2))
    f_i2 = torch.tensor([[[2.0, 1.0], [0.0, -1.0]]])
    s_vi2, s_iv2 = patch_similarities(f_v, f_i2)
    assert not torch.allclose(s_iv2, s_vi2.transpose(-2, -1))  # directionally distinct


def test_topk_mask_and_mutual_set_k2_hand_example():
    # rows = visible patches p, columns = infrared patches q
    s_vi = _t([[0.5, 0.3, 0.2], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3]])
    # rows = infrared patches q, columns = visible patches p
    s_iv = _t([[0.6, 0.3, 0.1], [0.2, 0.3, 0.5], [0.15, 0.05, 0.8]])
    # R_{v-i}: p0 {q0,q1}, p1 {q1,q2}, p2 {q1,q2};  R_{i-v}: q0 {p0,p1}, q1 {p1,p2}, q2 {p0,p2}
    assert topk_mask(s_vi, 2)[0].tolist() == [[True, True, False], [False, True, True], [False, True, True]]
    m = mutual_matches(s_vi, s_iv, 2)[0]
    # (p0,q0) mutual; (p0,q1) no: p0 not in R_{i-v}[q1]; (p1,q1) yes; (p1,q2) no; (p2,q1), (p2,q2) yes
    assert m.tolist() == [[True, False, False], [False, True, False], [False, True, True]]
    s_hat = patch_scores(s_vi, s_iv, k=2, alpha=0.2)[0]
    assert torch.allclose(s_hat, torch.tensor([0.5, 0.3, (0.5 + 0.3) / 2]))


def test_smooth_complement_weights_alpha_k1():
    s_vi = _t([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3]])
    s_iv = _t([[0.6, 0.3, 0.1], [0.2, 0.3, 0.5], [0.1, 0.1, 0.8]])
    # k=1: R_{v-i} = p0->q0, p1->q2, p2->q1 ; R_{i-v} = q0->p0, q1->p2, q2->p2
    m = mutual_matches(s_vi, s_iv, 1)
    assert m[0].tolist() == [[True, False, False], [False, False, False], [False, True, False]]
    sel, w = smooth_complement(s_vi, m, alpha=0.2)
    # p1 has no mutual match -> (p1, argmax S_vi[1] = q2) added with weight alpha
    assert sel[0].tolist() == [[True, False, False], [False, False, True], [False, True, False]]
    assert torch.allclose(w[0], torch.tensor([[1.0, 0, 0], [0, 0, 0.2], [0, 1.0, 0]]))
    s_hat = patch_scores(s_vi, s_iv, k=1, alpha=0.2)[0]
    assert torch.allclose(s_hat, torch.tensor([0.7, 0.2 * 0.6, 0.5]))
    assert torch.allclose(patch_scores(s_vi, s_iv, k=1, alpha=0.5)[0], torch.tensor([0.7, 0.3, 0.5]))


def test_patch_scores_batched_pairs_match_naive_loop():
    g = torch.Generator().manual_seed(0)
    f_v, f_i = torch.randn(5, 4, 8, generator=g), torch.randn(5, 4, 8, generator=g)
    s_vi, s_iv = patch_similarities(f_v, f_i)
    got = patch_scores(s_vi, s_iv, k=2, alpha=0.2)
    for b in range(5):
        rv = [set(s_vi[b, p].topk(2).indices.tolist()) for p in range(4)]
        ri = [set(s_iv[b, q].topk(2).indices.tolist()) for q in range(4)]
        for p in range(4):
            mp = [q for q in rv[p] if p in ri[q]]
            if mp:
                want = sum(s_vi[b, p, q].item() for q in mp) / len(mp)
            else:
                want = 0.2 * s_vi[b, p].max().item()
            assert got[b, p].item() == pytest.approx(want, abs=1e-6)


def test_casm_shape_and_sigmoid_range():
    casm = CASM(n_tokens=6, hidden=4)
    logit = casm(torch.rand(7, 6))
    assert logit.shape == (7,)
    psi = torch.sigmoid(logit)
    assert bool(((psi > 0) & (psi < 1)).all())
    qa = QueryAwareScoring(n_tokens=6, topk=3, alpha=0.2, hidden=4)
    assert qa(torch.randn(3, 6, 8), torch.randn(3, 6, 8)).shape == (3,)


def test_decoder_shapes_projection_and_gradients():
    dec = BITDecoder(in_dim=16, n_tokens=6, dim=8, depth=2, heads=2, casm_hidden=5)
    t_v, t_i = torch.randn(4, 6, 16), torch.randn(4, 6, 16)
    out = dec(t_v, t_i)
    assert out["logit"].shape == (4,) and out["pooled_v"].shape == (4, 8) and out["pooled_i"].shape == (4, 8)
    out["logit"].sum().backward()
    assert dec.proj_v.weight.grad is not None and dec.blocks[0].infrared.attn.q.weight.grad is not None
    assert isinstance(BITDecoder(in_dim=16, n_tokens=6, heads=2).proj_v, torch.nn.Identity)
