"""Vectorised rendering of procedural pedestrians into visible and infrared images.

A batch of N images is rendered at once: a body-part label map (N, H, W) is painted from the
identity's shape parameters and the image's pose, then coloured with the identity's visible
colours (RGB cameras) or infrared intensities (IR cameras), composited over the camera's
background, lit, blurred and given sensor noise. Per-image nuisances (intra-class variation):
position and scale jitter, front/back view, horizontal flip, stride and arm swing, brightness
and colour jitter, the background window.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from vibench.data.synth.identities import (
    BACKPACK, BAG, CHECKS, H_STRIPES, HAIR, HAT, LOGO, LOWER, SHOES, SHOULDER_BAG, SKIN, UPPER,
    UPPER_ALT, V_STRIPES, Identities,
)
from vibench.data.synth.scenes import Cameras


@dataclass(frozen=True)
class Poses:
    """Per-image nuisance parameters, one row per image."""

    cx: np.ndarray       # horizontal centre offset, fraction of the image width
    top: np.ndarray      # head top, fraction of the image height
    scale: np.ndarray    # body-size jitter
    flip: np.ndarray     # -1 or +1 (mirror)
    back: np.ndarray     # bool: seen from behind
    stride: np.ndarray   # leg spread
    swing: np.ndarray    # arm swing
    bright: np.ndarray   # brightness jitter
    tint: np.ndarray     # (n, 3) colour jitter
    shift: np.ndarray    # background window offset, fraction of the image width

    def take(self, rows: np.ndarray | slice) -> "Poses":
        return Poses(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    def copy_rows(self, dst: np.ndarray, src: np.ndarray) -> "Poses":
        """Rows `dst` get the pose of rows `src` (a simultaneous capture by two cameras)."""
        out = {f.name: getattr(self, f.name).copy() for f in fields(self)}
        for name in ("cx", "top", "scale", "flip", "back", "stride", "swing", "shift"):
            out[name][dst] = out[name][src]
        return Poses(**out)


def sample_poses(rng: np.random.Generator, n: int) -> Poses:
    """Draw the nuisance parameters of `n` images."""
    return Poses(
        cx=rng.normal(0.0, 0.035, n).astype(np.float32),
        top=rng.uniform(0.02, 0.08, n).astype(np.float32),
        scale=rng.uniform(0.96, 1.03, n).astype(np.float32),
        flip=rng.choice(np.array([-1.0, 1.0], dtype=np.float32), n),
        back=rng.random(n) < 0.5,
        stride=rng.uniform(-1.0, 1.0, n).astype(np.float32),
        swing=rng.uniform(-1.0, 1.0, n).astype(np.float32),
        bright=rng.uniform(0.85, 1.15, n).astype(np.float32),
        tint=rng.uniform(0.95, 1.05, (n, 3)).astype(np.float32),
        shift=rng.random(n).astype(np.float32),
    )


def _column(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32)[:, None, None]


def part_labels(ids: Identities, who: np.ndarray, poses: Poses, height: int, width: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Body-part label map (N, H, W) uint8 and a body shading map (N, H, W) float32."""
    y = ((np.arange(height, dtype=np.float32) + 0.5) / height)[None, :, None]
    x = ((np.arange(width, dtype=np.float32) + 0.5 - width / 2) / height)[None, None, :]
    h = _column(ids.height[who] * poses.scale)
    v = (y - _column(poses.top)) / h
    u = (x - _column(poses.cx) * (width / height)) / h * _column(poses.flip)
    hr, sw, hw = _column(ids.head[who]), _column(ids.shoulder[who]), _column(ids.hip[who])
    t0 = 2.0 * hr + 0.02                      # shoulders
    t1 = 1.0 - _column(ids.legs[who])         # crotch
    back = poses.back[:, None, None]
    labels = np.zeros(v.shape[:1] + (height, width), dtype=np.uint8)

    # Legs, with the lower garment down to the hem, then skin, then shoes.
    lv = np.clip((v - t1) / (1.0 - t1), 0.0, 1.0)
    leg_w = hw * 0.42
    spread = _column(poses.stride) * 0.07 * lv
    centre = (hw / 2 - leg_w / 2) * (1.0 - 0.25 * lv)
    on_leg = (v > t1) & (v <= 1.0) & ((np.abs(u - centre - spread) <= leg_w / 2)
                                      | (np.abs(u + centre + spread) <= leg_w / 2))
    covered = lv <= _column(ids.hem[who])
    labels[on_leg] = SKIN
    labels[on_leg & covered] = LOWER
    labels[on_leg & (v >= 0.965)] = SHOES

    # Torso (a trapezoid from the shoulders to the hips) with the upper-garment pattern.
    tv = np.clip((v - t0) / (t1 - t0), 0.0, 1.0)
    torso = (v >= t0) & (v <= t1 + 0.02) & (np.abs(u) <= sw / 2 + (hw - sw) / 2 * tv)
    period = _column(ids.period[who])
    rows = ((v - t0) / period) % 1.0 < 0.5
    cols = (u / period + 0.25) % 1.0 < 0.5
    pattern = ids.pattern[who][:, None, None]
    alt = (((pattern == H_STRIPES) & rows) | ((pattern == V_STRIPES) & cols)
           | ((pattern == CHECKS) & (rows ^ cols)))
    logo = (pattern == LOGO) & ~back & (np.abs(u) < 0.045) & (v > t0 + 0.05) & (v < t0 + 0.12)
    labels[torso] = UPPER
    labels[torso & (alt | logo)] = UPPER_ALT

    # Arms (swinging), sleeves down to the sleeve length, hands and forearms in skin.
    arm_w = sw * 0.22
    arm_len = 0.36
    av = v - t0
    sway = _column(poses.swing) * 0.25 * av
    on_arm = (av >= 0.01) & (av <= arm_len) & (
        (np.abs(u - (sw / 2 + arm_w * 0.35) - sway) <= arm_w / 2)
        | (np.abs(u + (sw / 2 + arm_w * 0.35) + sway) <= arm_w / 2))
    sleeve = av <= _column(ids.sleeve[who]) * arm_len
    labels[on_arm] = SKIN
    labels[on_arm & sleeve] = UPPER
    labels[on_arm & sleeve & alt] = UPPER_ALT

    # Neck, head, hair (more of it from behind), hat.
    neck = (np.abs(u) < 0.35 * hr) & (v >= 1.7 * hr) & (v <= t0 + 0.01)
    head = (u / (0.82 * hr)) ** 2 + ((v - hr) / hr) ** 2 <= 1.0
    hair = head & (v < np.where(back, 1.75, 0.75) * hr)
    labels[neck | head] = SKIN
    labels[hair] = HAIR
    has_hat = ids.hat[who][:, None, None]
    cap = has_hat & ((u / (0.95 * hr)) ** 2 + ((v - 0.8 * hr) / (0.95 * hr)) ** 2 <= 1.0) & (v <= 0.8 * hr)
    brim = has_hat & ~back & (np.abs(u) <= 1.25 * hr) & (v >= 0.62 * hr) & (v <= 0.8 * hr)
    labels[cap | brim] = HAT

    # Accessories: a backpack (the bag from behind, its straps from the front) or a shoulder bag.
    bag = ids.bag[who][:, None, None]
    pack = (bag == BACKPACK) & (
        (back & (np.abs(u) < sw * 0.36) & (v > t0 + 0.02) & (v < t0 + 0.24))
        | (~back & torso & (np.abs(np.abs(u) - sw * 0.28) < 0.013) & (v < t0 + 0.2)))
    side = _column(ids.bag_side[who]) * np.where(back, -1.0, 1.0)
    su = u * side
    pouch = (su > hw / 2 + 0.005) & (su < hw / 2 + 0.08) & (v > t1 - 0.12) & (v < t1 + 0.03)
    strap = torso & (v < t1) & (np.abs(su + sw / 2 - sw * tv) < 0.012)
    labels[pack | ((bag == SHOULDER_BAG) & (pouch | strap))] = BAG

    # Cylindrical shading across the body, a little darker towards the feet.
    shade = 1.0 - 0.35 * np.clip(np.abs(u) / (sw * 0.75), 0.0, 1.0) ** 2 - 0.1 * np.clip(v, 0, 1)
    return labels, shade.astype(np.float32)


def _blur(img: np.ndarray) -> np.ndarray:
    """Separable [1, 2, 1] / 4 blur over the H and W axes (1 and 2), edges replicated."""
    for axis in (1, 2):
        src = np.moveaxis(img, axis, 0)
        out = src * 0.5
        out[1:] += src[:-1] * 0.25
        out[:-1] += src[1:] * 0.25
        out[0] += src[0] * 0.25
        out[-1] += src[-1] * 0.25
        img = np.moveaxis(out, 0, axis)
    return img


def _lookup(table: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """table[n, labels[n]] for every image n: (N, P[, C]) x (N, H, W) -> (N, H, W[, C])."""
    n, parts = table.shape[:2]
    flat = labels + (np.arange(n, dtype=np.intp) * parts)[:, None, None]
    return np.take(table.reshape(n * parts, *table.shape[2:]), flat, axis=0)


def _background(panoramas: np.ndarray, cam: np.ndarray, shift: np.ndarray, width: int) -> np.ndarray:
    """The window of each image's camera panorama: (N, H, W[, 3])."""
    start = np.floor(shift * width).astype(np.int64)
    cols = start[:, None] + np.arange(width)[None, :]          # (N, W)
    return panoramas[cam[:, None, None], np.arange(panoramas.shape[1])[None, :, None], cols[:, None, :]]


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


def render_visible(ids: Identities, who: np.ndarray, cams: Cameras, cam: np.ndarray, poses: Poses,
                   noise_rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """RGB images (N, H, W, 3) uint8 of identities `who` seen by visible cameras `cam`."""
    labels, shade = part_labels(ids, who, poses, height, width)
    person = _lookup(ids.colours[who], labels)
    person *= shade[..., None]
    bg = _background(cams.visible_bg, cam, poses.shift, width)
    img = np.where((labels > 0)[..., None], person, bg)
    light = (cams.gain[cam] * poses.bright)[:, None] * cams.cast[cam] * poses.tint
    img *= light[:, None, None, :].astype(np.float32)
    img = _blur(img)
    img += noise_rng.standard_normal(img.shape, dtype=np.float32) * cams.noise[cam][:, None, None, None]
    return _to_uint8(img)


def render_infrared(ids: Identities, who: np.ndarray, cams: Cameras, cam: np.ndarray, poses: Poses,
                    noise_rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Single-channel images (N, H, W) uint8 of identities `who` seen by infrared cameras `cam`."""
    labels, shade = part_labels(ids, who, poses, height, width)
    person = _lookup(ids.thermal[who], labels) * (0.75 + 0.25 * shade)
    bg = _background(cams.infrared_bg, cam, poses.shift, width)
    img = np.where(labels > 0, person, bg) * (cams.gain[cam] * (0.5 + 0.5 * poses.bright))[:, None, None]
    img = _blur(img)
    img += noise_rng.standard_normal(img.shape, dtype=np.float32) * cams.noise[cam][:, None, None]
    return _to_uint8(img)
