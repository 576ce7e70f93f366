"""Modality Feature Transfer (MFT) module of TMPA (Sec. III-D, Eq. 9-11).

Inputs are three row-aligned feature maps of the same size (B, C, h, w): the modality-shared map
S_sh (from the PedMix image of the row) and the modality-specific maps S_V, S_I. Four 1 x 1
convolutions project them (the paper's "projection matrices"):

    Q_sp^V = W_q^V S_V,   Q_sp^I = W_q^I S_I,   K_sh = W_k S_sh,   V_sh = W_v S_sh      (d channels)

and each projection is used twice, the ACmix idea the paper builds on [33]:

* attention path (Eq. 10): F_CA^V = softmax(Q_sp^V K_sh^T / sqrt(d)) V_sh over the h*w tokens of
  the same row's shared map (likewise F_CA^I with the same K_sh, V_sh), mapped back to C channels by
  a 1 x 1 output convolution shared by both directions;
* convolution path (Eq. 9): a k x k convolution is a sum of k^2 shifted 1 x 1 convolutions, so the
  conv path aggregates the *same* projected maps with a depthwise k x k kernel (a learned weight per
  position and channel) and a 1 x 1 convolution back to C channels; it is added to the input map:
  F_Conv^V = S_V + P_V(DW_V(Q_sp^V)), F_Conv^I = S_I + P_I(DW_I(Q_sp^I)),
  F_Conv^sh = S_sh + P_sh(DW_sh([K_sh, V_sh])). P_* start at zero, so F_Conv = S at initialisation.

Eq. 11: F_sp^{V'} = F_CA^V + F_Conv^V, F_sp^{I'} = F_CA^I + F_Conv^I (on maps; the model pools them).
[G]: d (``dim``), the number of heads, the depthwise aggregation and the residual form; the paper
gives only the shared 1 x 1 projections and Eq. 9-11.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vibench.errors import VibenchError


def _conv1x1(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=1, bias=False)


class ConvAggregation(nn.Module):
    """Eq. 9 on projected maps: depthwise k x k aggregation of the shifted 1 x 1 outputs, then a
    1 x 1 convolution to `cout` channels (zero-initialised)."""

    def __init__(self, cin: int, cout: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.dw = nn.Conv2d(cin, cin, kernel_size, padding=kernel_size // 2, groups=cin, bias=False)
        self.pw = _conv1x1(cin, cout)
        self.bn = nn.BatchNorm2d(cout)
        nn.init.zeros_(self.bn.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.pw(self.dw(x)))


class ModalityFeatureTransfer(nn.Module):
    """MFT: symmetric cross-attention and convolution on shared 1 x 1 projections (Eq. 9-11)."""

    def __init__(self, channels: int = 2048, dim: int = 256, heads: int = 1, kernel_size: int = 3) -> None:
        super().__init__()
        if dim % heads:
            raise VibenchError(f"tmpa.mft.dim ({dim}) must be divisible by tmpa.mft.heads ({heads})")
        self.dim, self.heads = int(dim), int(heads)
        self.q_vis = _conv1x1(channels, dim)
        self.q_ir = _conv1x1(channels, dim)
        self.k_sh = _conv1x1(channels, dim)
        self.v_sh = _conv1x1(channels, dim)
        self.attn_out = nn.Sequential(_conv1x1(dim, channels), nn.BatchNorm2d(channels))
        self.conv_vis = ConvAggregation(dim, channels, kernel_size)
        self.conv_ir = ConvAggregation(dim, channels, kernel_size)
        self.conv_sh = ConvAggregation(2 * dim, channels, kernel_size)

    def cross_attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Eq. 10 per row: (B, d, h, w) query map against the row's (B, d, h', w') key/value maps."""
        b, d, h, w = q.shape
        nh = self.heads

        def tokens(x: torch.Tensor) -> torch.Tensor:
            return x.flatten(2).transpose(1, 2).reshape(b, -1, nh, d // nh).transpose(1, 2)

        out = F.scaled_dot_product_attention(tokens(q), tokens(k), tokens(v))  # softmax(QK^T/sqrt(d/nh)) V
        out = out.transpose(1, 2).reshape(b, h * w, d).transpose(1, 2).reshape(b, d, h, w)
        return self.attn_out(out)

    def forward(
        self, s_sh: torch.Tensor, s_vis: torch.Tensor | None = None, s_ir: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Maps ``conv_sh`` and, for each specific input given, ``ca_*``, ``conv_*`` and ``sp_*_prime``."""
        k, v = self.k_sh(s_sh), self.v_sh(s_sh)
        out = {"conv_sh": s_sh + self.conv_sh(torch.cat([k, v], 1))}
        for name, s, proj, conv in (("vis", s_vis, self.q_vis, self.conv_vis), ("ir", s_ir, self.q_ir, self.conv_ir)):
            if s is None:
                continue
            if s.shape[0] != s_sh.shape[0]:
                raise VibenchError(f"MFT needs row-aligned maps: {name} has {s.shape[0]} rows, shared {s_sh.shape[0]}")
            q = proj(s)
            out[f"ca_{name}"] = self.cross_attention(q, k, v)
            out[f"conv_{name}"] = s + conv(q)
            out[f"sp_{name}_prime"] = out[f"ca_{name}"] + out[f"conv_{name}"]  # Eq. 11
        return out
