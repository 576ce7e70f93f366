"""BIT coarse-to-fine inference: top-K after exclusion, candidates first by Psi, rest in coarse order."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from vibench.engine.schema import validate
from vibench_methods.bit import BITMethod, BITOptions, _orient, refine_order


class _FakeDecoder(nn.Module):
    """logit = 10 * (visible stream token[0, 0]) + (infrared stream token[0, 0])."""

    def __init__(self, n_tokens: int, in_dim: int) -> None:
        super().__init__()
        self.n_tokens, self.in_dim = n_tokens, in_dim
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, v: torch.Tensor, i: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logit": 10 * v[:, 0, 0] + i[:, 0, 0] + 0 * self.w}


class _FakeModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.decoder = _FakeDecoder(2, 3)


def _method(k: int, cache_pairs: int = 2_000_000) -> BITMethod:
    m = object.__new__(BITMethod)  # the refine logic needs no encoder
    m.cfg = {}
    m.opts = validate(BITOptions, {"refine": {"k": k, "batch_pairs": 2, "cache_pairs": cache_pairs}}, "test")
    return m


def _tokens(first: list[float]) -> torch.Tensor:
    t = torch.zeros(len(first), 2, 3)
    t[:, 0, 0] = torch.tensor(first)
    return t.reshape(len(first), -1)


def test_refine_order_candidates_first_then_coarse():
    dist = torch.tensor([[0.1, 0.5, 0.3, 0.9, 0.2, 0.7]])
    cand = torch.tensor([[0, 4, 2]])
    valid = torch.tensor([[True, True, True]])
    scores = torch.tensor([[0.2, 0.9, 0.5]])
    out = refine_order(dist, cand, valid, scores)
    assert torch.argsort(out[0], stable=True).tolist() == [4, 2, 0, 1, 5, 3]
    assert out[0, [1, 3, 5]].tolist() == dist[0, [1, 3, 5]].tolist()  # the rest keep coarse distances
    assert bool((out[0, [4, 2, 0]] < dist[0].min()).all())
    # equal scores fall back to the coarse order
    out2 = refine_order(dist, cand, valid, torch.tensor([[0.5, 0.5, 0.5]]))
    assert torch.argsort(out2[0], stable=True).tolist() == [0, 4, 2, 1, 5, 3]


def test_refine_takes_top_k_after_exclusion_and_orients_streams():
    m = _method(k=3)
    model = _FakeModel()
    # gallery: 6 visible images; coarse order for query 0: 0,4,2,1,5,3 ; item 0 and 2 excluded
    dist = torch.tensor([[0.1, 0.5, 0.3, 0.9, 0.2, 0.7], [0.6, 0.1, 0.2, 0.3, 0.4, 0.5]])
    excl = torch.zeros(2, 6, dtype=torch.bool)
    excl[0, [0, 2]] = True
    g_first = [5.0, 1.0, 9.0, 4.0, 2.0, 3.0]  # visible-stream value of each gallery item
    gallery = {"tokens": _tokens(g_first), "ir": torch.zeros(6, 1)}
    query = {"tokens": _tokens([0.5, 0.25]), "ir": torch.ones(2, 1)}  # infrared queries
    out = m.refine(model, query, gallery, dist, excl)
    order0 = torch.argsort(out[0], stable=True).tolist()
    # candidates after exclusion: 4, 1, 5 (coarse 0.2, 0.5, 0.7); Psi order by gallery value: 5 (3), 4 (2), 1 (1)
    # excluded 0 and 2 are never candidates; the rest (0, 2, 3) keep coarse order 0, 2, 3
    assert order0[:3] == [5, 4, 1]
    assert order0[3:] == [0, 2, 3]
    order1 = torch.argsort(out[1], stable=True).tolist()
    # query 1: candidates 1, 2, 3 -> by value 2 (9), 3 (4), 1 (1); then 4, 5, 0 in coarse order
    assert order1 == [2, 3, 1, 4, 5, 0]


def test_refine_with_fewer_valid_than_k_and_visible_query():
    m = _method(k=4)
    model = _FakeModel()
    dist = torch.tensor([[0.3, 0.1, 0.2]])
    excl = torch.tensor([[False, True, True]])
    gallery = {"tokens": _tokens([1.0, 2.0, 3.0]), "ir": torch.ones(3, 1)}
    query = {"tokens": _tokens([7.0]), "ir": torch.zeros(1, 1)}
    out = m.refine(model, query, gallery, dist, excl)
    assert torch.argsort(out[0], stable=True).tolist() == [0, 1, 2]
    assert out[0, 0] < dist.min()


def test_orient_puts_each_image_in_its_modality_stream():
    q = torch.full((2, 1, 1), 1.0)
    g = torch.full((2, 1, 1), 2.0)
    v, i = _orient(q, g, torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]))
    assert v.flatten().tolist() == [2.0, 1.0] and i.flatten().tolist() == [1.0, 2.0]


class _PairModel(nn.Module):
    """tokens(x) = x[:, :1, 0, :2] (1 token of width 2); decoder: logit = 0, pooled = the tokens."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :1, 0, :2]

    def decoder(self, v: torch.Tensor, i: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logit": self.w.expand(v.shape[0]), "pooled_v": v.mean(1), "pooled_i": i.mean(1)}


def test_decoder_losses_build_pairs_labels_and_ac_inputs():
    import math

    from vibench_methods.losses.contrastive import aggregation_contrastive_loss

    m = object.__new__(BITMethod)
    m.cfg = {}
    m.opts = BITOptions()
    vis = torch.zeros(2, 3, 1, 2)
    vis[0, 0, 0] = torch.tensor([1.0, 0.0])
    vis[1, 0, 0] = torch.tensor([0.0, 1.0])
    ir = torch.zeros(3, 3, 1, 2)
    ir[0, 0, 0] = torch.tensor([1.0, 1.0])
    ir[1, 0, 0] = torch.tensor([-1.0, 0.0])
    ir[2, 0, 0] = torch.tensor([0.0, -1.0])
    batch = {"vis": vis, "ir": ir, "vis_label": torch.tensor([0, 1]), "ir_label": torch.tensor([1, 0, 1])}
    terms = m.decoder_losses(_PairModel(), batch)
    assert terms["pair"].item() == pytest.approx(math.log(2))  # Psi = 0.5 for all 6 pairs
    # L_AC inputs: visible members (repeat_interleave) then infrared members (repeat)
    feats = torch.cat([vis[:, 0, 0].repeat_interleave(3, 0), ir[:, 0, 0].repeat(2, 1)])
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 1, 0, 1, 1, 0, 1])
    mods = torch.tensor([0] * 6 + [1] * 6)
    want = 0.6 * aggregation_contrastive_loss(feats, labels, mods, tau=1 / 16)
    assert terms["ac"].item() == pytest.approx(want.item(), rel=1e-6)


def test_refine_cache_reuses_scores_and_matches_uncached():
    calls = []

    class Counting(_FakeDecoder):
        def forward(self, v, i):
            calls.append(v.shape[0])
            return super().forward(v, i)

    model = _FakeModel()
    model.decoder = Counting(2, 3)
    dist = torch.tensor([[0.1, 0.5, 0.3, 0.9, 0.2, 0.7], [0.6, 0.1, 0.2, 0.3, 0.4, 0.5]])
    excl = torch.zeros(2, 6, dtype=torch.bool)
    gallery = {"tokens": _tokens([5.0, 1.0, 9.0, 4.0, 2.0, 3.0]), "ir": torch.zeros(6, 1)}
    query = {"tokens": _tokens([0.5, 0.25]), "ir": torch.ones(2, 1)}
    cached = _method(k=3)
    out1 = cached.refine(model, query, gallery, dist, excl)
    n1 = sum(calls)
    # a second protocol/trial with a gallery subset in another order: only the two pairs not seen
    # before ((q0, g1) and (q1, g4)) reach the decoder
    sub = [4, 2, 1, 5]
    g2 = {"tokens": gallery["tokens"][sub], "ir": gallery["ir"][sub]}
    out2 = cached.refine(model, query, g2, dist[:, sub], excl[:, sub])
    assert n1 == 6 and sum(calls) == n1 + 2
    uncached = _method(k=3, cache_pairs=0)
    assert torch.equal(out1, uncached.refine(model, query, gallery, dist, excl))
    assert torch.equal(out2, uncached.refine(model, query, g2, dist[:, sub], excl[:, sub]))
