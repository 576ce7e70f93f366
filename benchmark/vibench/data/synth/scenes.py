"""Cameras and the places they look at: procedural backgrounds and per-camera lighting.

A *scene* is a place (walls, floor, doors, pillars, with a visible colour and an infrared grey
level each); a camera looks at one scene in one modality under its own lighting. Cameras with
the same scene index share the place: SYSU cam2 (RGB) and cam3 (IR) are one room, each LLCM
camera K is one place seen by day (VIS) and by night (NIR), RegDB's two cameras are one
co-located visible/thermal pair. Backgrounds are panoramas twice the image width; each image
shows a random window of it (the person walks through the scene).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Lighting kinds: (gain range, colour-cast amplitude, noise sigma, infrared background gain).
LIGHTS: dict[str, tuple[tuple[float, float], float, float, float]] = {
    "indoor": ((0.80, 1.05), 0.08, 0.020, 0.0),
    "outdoor": ((0.95, 1.20), 0.05, 0.015, 0.0),
    "lowlight": ((0.30, 0.55), 0.10, 0.035, 0.0),
    "ir_dark": ((0.85, 1.05), 0.0, 0.030, 0.40),
    "ir_outdoor": ((0.80, 1.00), 0.0, 0.025, 0.65),
    "nir": ((0.70, 0.95), 0.0, 0.035, 0.50),
    "thermal": ((0.90, 1.05), 0.0, 0.020, 0.30),
}


@dataclass(frozen=True)
class CameraSpec:
    """One camera: its number in the dataset, modality, the scene it sees and its lighting."""

    number: int
    infrared: bool
    scene: int
    light: str


@dataclass(frozen=True)
class Cameras:
    """Rendered per-camera data, indexed like `specs`."""

    specs: tuple[CameraSpec, ...]
    visible_bg: np.ndarray    # (C, H, 2W, 3) float32 background panoramas (visible cameras)
    infrared_bg: np.ndarray   # (C, H, 2W) float32 background panoramas (infrared cameras)
    gain: np.ndarray          # (C,) overall brightness
    cast: np.ndarray          # (C, 3) colour cast (visible)
    noise: np.ndarray         # (C,) sensor noise sigma


def _scene_layout(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random geometry and materials of one place (fractions of the panorama)."""
    k = int(rng.integers(3, 7))
    x0 = rng.uniform(0, 1, k)
    return {
        "horizon": rng.uniform(0.55, 0.82, 1),
        "wall": rng.uniform(0.25, 0.85, 3), "floor": rng.uniform(0.15, 0.65, 3),
        "wall_ir": rng.uniform(0.15, 0.6, 1), "floor_ir": rng.uniform(0.1, 0.5, 1),
        "rx0": x0, "rx1": x0 + rng.uniform(0.06, 0.25, k),
        "ry0": rng.uniform(0.0, 0.4, k), "ry1": rng.uniform(0.5, 0.9, k),
        "rgb": rng.uniform(0.05, 0.95, (k, 3)), "ir": rng.uniform(0.05, 0.9, k),
        "wave": rng.uniform(2, 9, 2), "phase": rng.uniform(0, 2 * np.pi, 2),
    }


def _render_scene(layout: dict[str, np.ndarray], height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The (visible RGB, infrared) panoramas of one place, `height` x `width`."""
    y = ((np.arange(height) + 0.5) / height)[:, None]
    x = ((np.arange(width) + 0.5) / width)[None, :]
    floor = np.broadcast_to(y > layout["horizon"][0], (height, width))
    rgb = np.where(floor[..., None], layout["floor"], layout["wall"]).astype(np.float32)
    ir = np.where(floor, layout["floor_ir"][0], layout["wall_ir"][0]).astype(np.float32)
    for i in range(len(layout["rx0"])):
        inside = ((x >= layout["rx0"][i]) & (x < layout["rx1"][i])
                  & (y >= layout["ry0"][i]) & (y < np.minimum(layout["ry1"][i], layout["horizon"][0])))
        rgb[inside] = layout["rgb"][i]
        ir[inside] = layout["ir"][i]
    texture = 0.06 * np.sin(2 * np.pi * layout["wave"][0] * x + layout["phase"][0]) \
        * np.cos(2 * np.pi * layout["wave"][1] * y + layout["phase"][1])
    rgb = 0.65 * rgb + 0.35 * rgb.mean(axis=-1, keepdims=True)   # real scenes are mostly muted
    return np.clip(rgb + texture[..., None], 0, 1), np.clip(ir + 0.7 * texture, 0, 1)


def build_cameras(rng: np.random.Generator, specs: tuple[CameraSpec, ...], height: int,
                  width: int) -> Cameras:
    """Render the background of every camera and draw its lighting."""
    n_scenes = max(s.scene for s in specs) + 1
    layouts = [_scene_layout(rng) for _ in range(n_scenes)]
    scenes = [_render_scene(layout, height, 2 * width) for layout in layouts]
    n = len(specs)
    visible = np.zeros((n, height, 2 * width, 3), dtype=np.float32)
    infrared = np.zeros((n, height, 2 * width), dtype=np.float32)
    gain = np.zeros(n, dtype=np.float32)
    cast = np.ones((n, 3), dtype=np.float32)
    noise = np.zeros(n, dtype=np.float32)
    for i, spec in enumerate(specs):
        (lo, hi), cast_amp, sigma, bg_gain = LIGHTS[spec.light]
        gain[i] = rng.uniform(lo, hi)
        cast[i] = 1.0 + rng.uniform(-cast_amp, cast_amp, 3)
        noise[i] = sigma
        rgb, ir = scenes[spec.scene]
        if spec.infrared:
            infrared[i] = ir * bg_gain
        else:
            visible[i] = rgb
    return Cameras(specs, visible, infrared, gain, cast, noise)
