"""PESAM: Phase-Enhanced Structural Attention Module (AMINet Sec. 3.4, Eq. 9-11).

Phase congruency (Eq. 9) from a bank of log-Gabor filters applied in the Fourier domain
(construction after Kovesi's phase-congruency method; all values [G], the paper names none):

* radial part at scale s: exp(-(log(f / f_s))^2 / (2 log(sigma_onf)^2)), f_s = 1 / (min_wavelength *
  mult^s), zero at f = 0, times a Butterworth low-pass (cut-off 0.45, order 15) against the corners;
* angular part at orientation o: the raised cosine (1 + cos(dtheta * n_orient / 2)) / 2 for
  |dtheta * n_orient / 2| < pi, else 0.

For each orientation the complex responses e_s + i o_s give the amplitudes A_s = |e_s + i o_s| and the
local energy E = sum_s (e_s cos(phi) + o_s sin(phi) - |e_s sin(phi) - o_s cos(phi)|) with phi the mean
phase over scales (Kovesi's phase-deviation form of sum_s E_s). The noise threshold T is estimated from
the smallest scale (Rayleigh model: tau = median(A_0) / sqrt(ln 4), T = mean + k sigma of the noise
energy). Then, Eq. 9 summed over orientations (optionally with Kovesi's frequency-spread weight W_o,
``spread_weighting``, [G] default on: without it flat regions next to an edge get a high ratio of two
tiny numbers),

    PC(x, y) = sum_o W_o max(E_o(x, y) - T_o, 0) / (sum_o sum_s A_{s,o}(x, y) + eps).

Edge-guided attention (Eq. 10): A = sigmoid(W_e * PC), W_e a learned ``attn_kernel`` x ``attn_kernel``
convolution on the full-resolution PC map, average-pooled to the feature-map size [G].
The attended maps are F' = F (x) (1 + A) (the input feature emphasised at structure) and the phase
feature F_phase = F (x) A [G]. Eq. 11 fuses them with learned weights
alpha = softmax(logits) over {vis, ir, phase}: a visible row gets alpha_vis F'_vis + alpha_phase
F_phase, an infrared row alpha_ir F'_ir + alpha_phase F_phase [G: one image per row, so each row has
one modality term].
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def log_gabor_bank(
    height: int,
    width: int,
    n_scales: int = 4,
    n_orient: int = 6,
    min_wavelength: float = 3.0,
    mult: float = 2.1,
    sigma_onf: float = 0.55,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Frequency-domain log-Gabor filters, (n_orient, n_scales, height, width), unshifted FFT layout."""
    fy = torch.fft.fftfreq(height, dtype=torch.float64)
    fx = torch.fft.fftfreq(width, dtype=torch.float64)
    yy, xx = torch.meshgrid(fy, fx, indexing="ij")
    radius = torch.sqrt(xx**2 + yy**2)
    radius0 = radius.clone()
    radius0[0, 0] = 1.0  # avoid log(0); the DC term is zeroed below
    theta = torch.atan2(-yy, xx)
    lowpass = 1.0 / (1.0 + (radius / 0.45) ** (2 * 15))
    radial = []
    for s in range(n_scales):
        f0 = 1.0 / (min_wavelength * mult**s)
        lg = torch.exp(-(torch.log(radius0 / f0) ** 2) / (2 * math.log(sigma_onf) ** 2)) * lowpass
        lg[0, 0] = 0.0
        radial.append(lg)
    bank = torch.empty(n_orient, n_scales, height, width, dtype=torch.float64)
    for o in range(n_orient):
        angle = o * math.pi / n_orient
        ds = torch.sin(theta) * math.cos(angle) - torch.cos(theta) * math.sin(angle)
        dc = torch.cos(theta) * math.cos(angle) + torch.sin(theta) * math.sin(angle)
        dtheta = torch.abs(torch.atan2(ds, dc))
        dtheta = torch.clamp(dtheta * n_orient / 2.0, max=math.pi)
        spread = (torch.cos(dtheta) + 1.0) / 2.0
        for s in range(n_scales):
            bank[o, s] = radial[s] * spread
    return bank.to(device=device, dtype=dtype)


def phase_congruency(
    gray: torch.Tensor,
    bank: torch.Tensor,
    mult: float = 2.1,
    noise_k: float = 2.0,
    eps: float = 1e-4,
    spread_weighting: bool = False,
    spread_cutoff: float = 0.5,
    spread_gain: float = 10.0,
) -> torch.Tensor:
    """Phase congruency (Eq. 9) of grayscale images (B, H, W) -> (B, H, W) in [0, 1].

    ``spread_weighting`` multiplies each orientation's energy by Kovesi's frequency-spread weight
    1 / (1 + exp(gain (cutoff - width))), width = (sum_s A_s / max_s A_s - 1) / (S - 1), which
    suppresses points where only one scale responds (not in Eq. 9; off by default).
    """
    n_orient, n_scales = bank.shape[:2]
    spec = torch.fft.fft2(gray.float())
    eo = torch.fft.ifft2(spec[:, None, None] * bank[None].to(spec.real.dtype))  # (B, O, S, H, W)
    even, odd = eo.real, eo.imag
    amp = torch.sqrt(even**2 + odd**2)
    sum_e, sum_o, sum_a = even.sum(2), odd.sum(2), amp.sum(2)  # (B, O, H, W)
    x_energy = torch.sqrt(sum_e**2 + sum_o**2) + 1e-12
    mean_e, mean_o = sum_e / x_energy, sum_o / x_energy
    energy = (
        even * mean_e[:, :, None] + odd * mean_o[:, :, None] - torch.abs(even * mean_o[:, :, None] - odd * mean_e[:, :, None])
    ).sum(2)
    # Noise threshold from the smallest scale (Rayleigh-distributed noise amplitude).
    tau = amp[:, :, 0].flatten(2).median(dim=2).values / math.sqrt(math.log(4.0))  # (B, O)
    total_tau = tau * (1.0 - (1.0 / mult) ** n_scales) / (1.0 - 1.0 / mult)
    noise_mean = total_tau * math.sqrt(math.pi / 2.0)
    noise_sigma = total_tau * math.sqrt((4.0 - math.pi) / 2.0)
    threshold = (noise_mean + noise_k * noise_sigma)[:, :, None, None]
    num = torch.clamp(energy - threshold, min=0.0)
    if spread_weighting and n_scales > 1:
        width = (sum_a / (amp.max(2).values + 1e-12) - 1.0) / (n_scales - 1)
        num = num / (1.0 + torch.exp(spread_gain * (spread_cutoff - width)))
    num = num.sum(1)
    den = sum_a.sum(1) + eps
    return (num / den).clamp(0.0, 1.0)


class PhaseCongruency(nn.Module):
    """Computes PC maps of image batches, caching the log-Gabor bank per image size and device."""

    def __init__(
        self,
        n_scales: int = 4,
        n_orient: int = 6,
        min_wavelength: float = 3.0,
        mult: float = 2.1,
        sigma_onf: float = 0.55,
        noise_k: float = 2.0,
        eps: float = 1e-4,
        spread_weighting: bool = True,
    ) -> None:
        super().__init__()
        self.spread_weighting = bool(spread_weighting)
        self.n_scales, self.n_orient = int(n_scales), int(n_orient)
        self.min_wavelength, self.mult, self.sigma_onf = float(min_wavelength), float(mult), float(sigma_onf)
        self.noise_k, self.eps = float(noise_k), float(eps)
        self._cache: dict[tuple[int, int, str], torch.Tensor] = {}

    def bank(self, height: int, width: int, device: torch.device) -> torch.Tensor:
        key = (height, width, str(device))
        if key not in self._cache:
            self._cache[key] = log_gabor_bank(
                height, width, self.n_scales, self.n_orient, self.min_wavelength, self.mult, self.sigma_onf, device=device
            )
        return self._cache[key]

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) images (any affine intensity normalisation) -> (B, 1, H, W) PC maps."""
        gray = images.float().mean(1)
        pc = phase_congruency(
            gray, self.bank(gray.shape[-2], gray.shape[-1], gray.device), self.mult, self.noise_k, self.eps, self.spread_weighting
        )
        return pc[:, None]


class EdgeGuidedAttention(nn.Module):
    """EGAM (Eq. 10): A = sigmoid(W_e * PC), pooled to the feature-map size."""

    def __init__(self, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, pc: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        a = torch.sigmoid(self.conv(pc.to(self.conv.weight.dtype)))
        return F.adaptive_avg_pool2d(a, size)


class PESAM(nn.Module):
    """Phase congruency + edge-guided attention + learned modality/phase fusion (Eq. 9-11).

    ``forward(feat, images, is_visible)`` takes a backbone feature map (B, C, h, w), the input images
    (B, 3, H, W) and a bool (B,) modality flag, and returns F_final (B, C, h, w).
    """

    def __init__(
        self,
        n_scales: int = 4,
        n_orient: int = 6,
        min_wavelength: float = 3.0,
        mult: float = 2.1,
        sigma_onf: float = 0.55,
        noise_k: float = 2.0,
        eps: float = 1e-4,
        spread_weighting: bool = True,
        attn_kernel: int = 3,
    ) -> None:
        super().__init__()
        self.pc = PhaseCongruency(n_scales, n_orient, min_wavelength, mult, sigma_onf, noise_k, eps, spread_weighting)
        self.attention = EdgeGuidedAttention(attn_kernel)
        #: logits of alpha_vis, alpha_ir, alpha_phase (Eq. 11), equal at start
        self.fusion_logits = nn.Parameter(torch.zeros(3))

    @property
    def alphas(self) -> torch.Tensor:
        return torch.softmax(self.fusion_logits, dim=0)

    def forward(self, feat: torch.Tensor, images: torch.Tensor, is_visible: torch.Tensor) -> torch.Tensor:
        pc = self.pc(images)
        a = self.attention(pc, feat.shape[-2:]).to(feat.dtype)
        f_prime = feat * (1.0 + a)
        f_phase = feat * a
        alpha = self.alphas.to(feat.dtype)
        w_mod = torch.where(is_visible.to(feat.device), alpha[0], alpha[1]).view(-1, 1, 1, 1)
        return w_mod * f_prime + alpha[2] * f_phase
