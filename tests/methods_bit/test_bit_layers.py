"""Cross-attention (BIT Eq. 1-4) layers."""
from __future__ import annotations

import math

import torch

from vibench_methods.layers.cross_attention import BCIBlock, BiCrossAttention, CrossAttention


def _identity_(att: CrossAttention) -> None:
    with torch.no_grad():
        for lin in (att.q, att.k, att.v):
            lin.weight.copy_(torch.eye(att.dim))
            lin.bias.zero_()


def test_cross_attention_is_eq1_with_identity_projections():
    att = CrossAttention(2, heads=1, out_proj=False)
    _identity_(att)
    q = torch.tensor([[[1.0, 0.0]]])
    kv = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])
    # softmax([1, 0] / sqrt(2)) @ V
    a = math.exp(1 / math.sqrt(2))
    w = torch.tensor([a / (a + 1), 1 / (a + 1)])
    want = w @ kv[0]
    assert torch.allclose(att(q, kv)[0, 0], want, atol=1e-6)


def test_multihead_shapes_and_unequal_lengths():
    att = CrossAttention(8, heads=4, out_proj=True)
    assert att(torch.randn(2, 3, 8), torch.randn(2, 5, 8)).shape == (2, 3, 8)
    assert att.attention(torch.randn(2, 3, 8), torch.randn(2, 5, 8)).shape == (2, 4, 3, 5)


def test_bi_cross_attention_directions_have_own_weights():
    bi = BiCrossAttention(4, heads=1, residual=False)
    assert bi.v_from_i.q.weight is not bi.i_from_v.q.weight
    f_v, f_i = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    tv, ti = bi(f_v, f_i)
    assert torch.allclose(tv, bi.v_from_i(f_v, f_i)) and torch.allclose(ti, bi.i_from_v(f_i, f_v))
    rv, _ = BiCrossAttention(4, heads=1, residual=True)(f_v, f_i)
    assert rv.shape == f_v.shape


def test_bci_block_shapes_independent_streams_and_interaction():
    torch.manual_seed(0)
    blk = BCIBlock(8, heads=2, mlp_ratio=2.0)
    f_v, f_i = torch.randn(3, 5, 8), torch.randn(3, 5, 8)
    out_v, out_i = blk(f_v, f_i)
    assert out_v.shape == (3, 5, 8) and out_i.shape == (3, 5, 8)
    ids_v = {id(p) for p in blk.visible.parameters()}
    assert ids_v.isdisjoint({id(p) for p in blk.infrared.parameters()})
    # changing the visible stream's weights leaves the infrared output unchanged
    with torch.no_grad():
        blk.visible.mlp.fc2.weight.add_(1.0)
    out_v2, out_i2 = blk(f_v, f_i)
    assert torch.allclose(out_i2, out_i) and not torch.allclose(out_v2, out_v)
    # each stream reads the other stream (interaction)
    out_v3, _ = blk(f_v, torch.randn_like(f_i))  # (a constant shift would be removed by LN)
    assert not torch.allclose(out_v3, out_v2)
    # Eq. 3-4 residual structure of one stream
    s = blk.visible
    x = f_v + s.attn(s.norm_q(f_v), s.norm_kv(f_i))
    assert torch.allclose(out_v2, x + s.mlp(s.norm_mlp(x)), atol=1e-6)
