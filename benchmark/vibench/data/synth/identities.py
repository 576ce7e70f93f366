"""Procedural identities: what stays fixed for one person across cameras and modalities.

Following MixER's split of identity cues (MixER.txt, Fig. 1b), an identity has
* modality-shared cues: body shape and proportions, clothing cut (sleeve and leg length),
  the upper-garment pattern (stripes, checks, logo) and accessories (hat, backpack, shoulder
  bag), which show in both modalities as shape, luminance and texture;
* visible-only cues: the colour of each body part;
* infrared-only cues: the material / thermal intensity of each body part, mixed with the part's
  visible luminance (0.15 material + 0.8 luminance): the grey levels of both modalities are
  related, but a visible colour does not fix the infrared intensity.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Body-part labels of the rendered label map (0 = background).
BACKGROUND, SKIN, HAIR, UPPER, UPPER_ALT, LOWER, SHOES, HAT, BAG = range(9)
N_PARTS = 9

# Upper-garment patterns.
PLAIN, H_STRIPES, V_STRIPES, CHECKS, LOGO = range(5)
# Accessories carried.
NO_BAG, BACKPACK, SHOULDER_BAG = range(3)

#: Common clothing colours (RGB in [0, 1]); dark and neutral ones are the most frequent.
_CLOTHES = np.array([
    [0.08, 0.08, 0.09], [0.92, 0.92, 0.90], [0.50, 0.50, 0.52], [0.12, 0.16, 0.35],
    [0.20, 0.35, 0.70], [0.70, 0.12, 0.14], [0.18, 0.45, 0.22], [0.70, 0.62, 0.42],
    [0.40, 0.26, 0.15], [0.90, 0.55, 0.65], [0.92, 0.82, 0.20], [0.45, 0.22, 0.55],
    [0.92, 0.48, 0.12], [0.15, 0.55, 0.55],
], dtype=np.float32)
_CLOTHES_P = np.array([14, 10, 9, 9, 7, 6, 5, 6, 6, 5, 5, 4, 4, 5], dtype=np.float64)
_SKIN = np.array([[0.95, 0.80, 0.68], [0.85, 0.66, 0.52], [0.62, 0.45, 0.33], [0.40, 0.28, 0.20]],
                 dtype=np.float32)
_HAIR = np.array([[0.06, 0.05, 0.05], [0.25, 0.16, 0.10], [0.55, 0.42, 0.25], [0.55, 0.55, 0.55]],
                 dtype=np.float32)
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class Identities:
    """Per-identity parameters, one row per identity (lengths in units of the body height,
    except `height`, the body height as a fraction of the image height)."""

    height: np.ndarray        # (n,) body height / image height
    shoulder: np.ndarray      # (n,) shoulder width
    hip: np.ndarray           # (n,) hip width
    head: np.ndarray          # (n,) head radius
    legs: np.ndarray          # (n,) leg length
    sleeve: np.ndarray        # (n,) fraction of the arm covered by the sleeve
    hem: np.ndarray           # (n,) fraction of the leg covered by the lower garment
    pattern: np.ndarray       # (n,) PLAIN | H_STRIPES | V_STRIPES | CHECKS | LOGO
    period: np.ndarray        # (n,) pattern period
    hat: np.ndarray           # (n,) bool
    bag: np.ndarray           # (n,) NO_BAG | BACKPACK | SHOULDER_BAG
    bag_side: np.ndarray      # (n,) -1 or +1
    colours: np.ndarray       # (n, N_PARTS, 3) visible colour of each part
    thermal: np.ndarray       # (n, N_PARTS) infrared intensity of each part

    def __len__(self) -> int:
        return int(self.height.shape[0])


def _pick(rng: np.random.Generator, table: np.ndarray, n: int, p: np.ndarray | None = None,
          jitter: float = 0.06) -> np.ndarray:
    """n rows drawn from `table` (weights p), each channel jittered by +-jitter."""
    rows = rng.choice(len(table), size=n, p=None if p is None else p / p.sum())
    return np.clip(table[rows] + rng.uniform(-jitter, jitter, (n, 3)).astype(np.float32), 0, 1)


def sample_identities(rng: np.random.Generator, n: int) -> Identities:
    """Draw `n` independent identities (vectorised)."""
    shoulder = rng.uniform(0.20, 0.30, n)
    colours = np.zeros((n, N_PARTS, 3), dtype=np.float32)
    colours[:, SKIN] = _pick(rng, _SKIN, n, jitter=0.04)
    colours[:, HAIR] = _pick(rng, _HAIR, n, np.array([6.0, 3, 1, 1]), jitter=0.04)
    for part in (UPPER, UPPER_ALT, LOWER, SHOES, HAT, BAG):
        colours[:, part] = _pick(rng, _CLOTHES, n, _CLOTHES_P)
    # The pattern colour must differ from the garment colour (visible contrast).
    same = np.abs(colours[:, UPPER] - colours[:, UPPER_ALT]).sum(1) < 0.45
    colours[same, UPPER_ALT] = 1.0 - colours[same, UPPER]

    # Infrared: the part's visible luminance plus a material term unseen in visible light.
    luma = colours @ _LUMA
    material = rng.uniform(0.10, 0.85, (n, N_PARTS)).astype(np.float32)
    thermal = np.clip(0.15 * material + 0.8 * luma + 0.05, 0, 1)
    thermal[:, SKIN] = rng.uniform(0.70, 0.92, n)
    thermal[:, HAIR] = rng.uniform(0.25, 0.50, n)
    # The pattern shows in infrared as a texture: a clear intensity step from the garment.
    step = rng.uniform(0.18, 0.32, n) * np.where(thermal[:, UPPER] > 0.5, -1.0, 1.0)
    thermal[:, UPPER_ALT] = np.clip(thermal[:, UPPER] + step, 0, 1)

    return Identities(
        height=rng.uniform(0.80, 0.94, n).astype(np.float32),
        shoulder=shoulder.astype(np.float32),
        hip=(shoulder * rng.uniform(0.70, 0.95, n)).astype(np.float32),
        head=rng.uniform(0.055, 0.075, n).astype(np.float32),
        legs=rng.uniform(0.42, 0.52, n).astype(np.float32),
        sleeve=rng.choice(np.array([0.3, 1.0], dtype=np.float32), n, p=[0.45, 0.55]),
        hem=rng.choice(np.array([0.4, 0.8, 1.0], dtype=np.float32), n, p=[0.25, 0.15, 0.6]),
        pattern=rng.choice(5, n, p=[0.3, 0.2, 0.15, 0.15, 0.2]),
        period=rng.uniform(0.035, 0.065, n).astype(np.float32),
        hat=rng.random(n) < 0.25,
        bag=rng.choice(3, n, p=[0.5, 0.3, 0.2]),
        bag_side=rng.choice(np.array([-1.0, 1.0], dtype=np.float32), n),
        colours=colours,
        thermal=thermal.astype(np.float32),
    )
