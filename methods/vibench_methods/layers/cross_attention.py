"""Cross-attention (BIT Eq. 1) and the Bi-directional Cross Interaction block (BIT Eq. 3-4).

Xu & Niu, "BIT: Matching-based Bi-directional Interaction Transformation Network for
Visible-Infrared Person Re-Identification", CVPR 2026, Sec. 3.1 and 3.3.

* :class:`CrossAttention` is Eq. 1, ``s(Q W_q (K W_k)^T / sqrt(C)) V W_v``. With ``heads=1`` and
  ``out_proj=False`` it is Eq. 1 literally; more heads split C into ``heads`` groups (scale
  ``1/sqrt(C/heads)`` per head) and ``out_proj`` adds the usual output projection (both are
  guesses the paper does not fix, exposed as config keys by the methods that use them).
* :class:`BiCrossAttention` is Eq. 2: one cross-attention per direction, independent weights.
* :class:`BCIBlock` is Eq. 3-4 for both streams: two streams with independent weights, each a
  pre-LN residual cross-attention (query = own stream, key/value = the other stream) followed by a
  pre-LN residual two-layer GELU MLP. Both streams read the other stream's block *input*
  (synchronous update).
"""
from __future__ import annotations

import torch
from torch import nn


class CrossAttention(nn.Module):
    """Eq. 1: ``CrossAtt(Q, KV) = softmax(Q W_q (KV W_k)^T / sqrt(C)) KV W_v`` (then optional W_o).

    Args:
        dim: token width C.
        heads: attention heads (1 = Eq. 1 literally).
        qkv_bias: bias on W_q, W_k, W_v.
        out_proj: add an output projection W_o (C x C) after the attention.
        attn_drop: dropout on the attention weights.
    """

    def __init__(self, dim: int, heads: int = 1, qkv_bias: bool = True, out_proj: bool = False, attn_drop: float = 0.0) -> None:
        super().__init__()
        if dim % heads != 0:
            raise ValueError(f"cross-attention width {dim} is not divisible by heads={heads}")
        self.dim = dim
        self.heads = heads
        self.head_dim = dim // heads
        self.scale = self.head_dim ** -0.5
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.k = nn.Linear(dim, dim, bias=qkv_bias)
        self.v = nn.Linear(dim, dim, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim) if out_proj else nn.Identity()

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.reshape(b, n, self.heads, self.head_dim).transpose(1, 2)  # (B, h, N, C/h)

    def attention(self, query: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        """The attention weights ``s(Q W_q (K W_k)^T / sqrt(C/h))``, shape (B, h, Nq, Nk)."""
        q = self._split(self.q(query))
        k = self._split(self.k(kv))
        return torch.softmax((q @ k.transpose(-2, -1)) * self.scale, dim=-1)

    def forward(self, query: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        """query (B, Nq, C), kv (B, Nk, C) -> (B, Nq, C)."""
        attn = self.attn_drop(self.attention(query, kv))
        v = self._split(self.v(kv))
        out = (attn @ v).transpose(1, 2).reshape(query.shape[0], query.shape[1], self.dim)
        return self.proj(out)


class BiCrossAttention(nn.Module):
    """Eq. 2: ``F~_v = CrossAtt(F_v, F_i)``, ``F~_i = CrossAtt(F_i, F_v)`` (independent weights).

    With ``residual=True`` the outputs are added to the inputs (``F <- F + F~``), a guess the
    paper leaves open (BIT config key ``decoder.initial_residual``).
    """

    def __init__(self, dim: int, heads: int = 1, qkv_bias: bool = True, out_proj: bool = False, residual: bool = True) -> None:
        super().__init__()
        self.v_from_i = CrossAttention(dim, heads, qkv_bias, out_proj)
        self.i_from_v = CrossAttention(dim, heads, qkv_bias, out_proj)
        self.residual = residual

    def forward(self, f_v: torch.Tensor, f_i: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tv = self.v_from_i(f_v, f_i)
        ti = self.i_from_v(f_i, f_v)
        if self.residual:
            return f_v + tv, f_i + ti
        return tv, ti


class Mlp(nn.Module):
    """The two-layer feed-forward network with GELU of Eq. 4."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class CrossStream(nn.Module):
    """One stream of a BCI block (Eq. 3-4), e.g. the visible one:

    ``F^_v = F_v + CrossAtt(LN(F_v), LN(F_i))`` (Eq. 3), ``F_v' = F^_v + MLP(LN(F^_v))`` (Eq. 4).
    The query side and the key/value side have their own LayerNorm.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float, qkv_bias: bool, out_proj: bool, drop: float = 0.0) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.attn = CrossAttention(dim, heads, qkv_bias, out_proj)
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(round(dim * mlp_ratio)), drop)

    def forward(self, own: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        x = own + self.attn(self.norm_q(own), self.norm_kv(other))  # Eq. 3
        return x + self.mlp(self.norm_mlp(x))  # Eq. 4


class BCIBlock(nn.Module):
    """Bi-directional Cross Interaction block: a visible and an infrared :class:`CrossStream` with
    independent weights; each attends to the other stream's block input (Eq. 3-4)."""

    def __init__(
        self, dim: int, heads: int = 1, mlp_ratio: float = 4.0, qkv_bias: bool = True, out_proj: bool = False, drop: float = 0.0
    ) -> None:
        super().__init__()
        self.visible = CrossStream(dim, heads, mlp_ratio, qkv_bias, out_proj, drop)
        self.infrared = CrossStream(dim, heads, mlp_ratio, qkv_bias, out_proj, drop)

    def forward(self, f_v: torch.Tensor, f_i: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(P, N, C) visible and infrared token sequences of P pairs -> refined sequences."""
        return self.visible(f_v, f_i), self.infrared(f_i, f_v)
