"""Local-patch identities: a synthetic visible-infrared set where every identity has the same
global appearance and identities differ only in a small local code.

Used to test part-level matchers (BIT's decoder, docs/methods_bit_mixer.md): a global embedding
has little to go on, a model that compares local regions can tell identities apart. Independent
of the dataset generator (:mod:`vibench.data.synth.writer`): nothing is written to disk and the
built-in synthetic datasets are unchanged.

Every image is one figure (fixed torso and legs colours on a fixed background) carrying a
``grid x grid`` binary code of square cells on the torso, the identity. Per image: a shift of up to
``jitter`` pixels, a brightness factor, Gaussian noise. Visible images paint "on" cells in one
colour; infrared images are a grey thermal map in which torso and cells have intensities unrelated
to their visible luminance (the cells are *darker* than the torso in infrared and brighter in
visible), so the two modalities share the code's geometry but not its appearance.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vibench.errors import VibenchError


@dataclass(frozen=True)
class LocalPatchSet:
    """Images (n, 3, H, W) float32 in [0, 1] and identity labels (n,) per modality."""

    vis: np.ndarray
    vis_label: np.ndarray
    ir: np.ndarray
    ir_label: np.ndarray
    codes: np.ndarray  # (n_ids, grid * grid) bool, row = identity


_BG = np.array([0.45, 0.47, 0.45], dtype=np.float32)
_TORSO = np.array([0.15, 0.25, 0.60], dtype=np.float32)
_LEGS = np.array([0.20, 0.20, 0.22], dtype=np.float32)
_CELL = np.array([0.95, 0.85, 0.20], dtype=np.float32)
# infrared intensities (background, torso, legs, cell)
_IR = (0.30, 0.80, 0.55, 0.35)


def identity_codes(rng: np.random.Generator, n_ids: int, grid: int) -> np.ndarray:
    """``n_ids`` distinct ``grid x grid`` codes with at least one cell on and one off."""
    n_codes = 2 ** (grid * grid) - 2
    if n_ids > n_codes:
        raise VibenchError(f"local-patch set: {n_ids} identities need more than the {n_codes} codes of a {grid}x{grid} grid")
    ints = rng.choice(n_codes, size=n_ids, replace=False) + 1
    bits = (ints[:, None] >> np.arange(grid * grid)[None, :]) & 1
    return bits.astype(bool)


def _render(codes: np.ndarray, labels: np.ndarray, infrared: bool, rng: np.random.Generator, size: tuple[int, int],
            grid: int, cell: int, jitter: int, noise: float) -> np.ndarray:
    h, w = size
    n = labels.shape[0]
    canvas = np.zeros((n, h, w), dtype=np.int8)  # 0 bg, 1 torso, 2 legs, 3 cell
    code_px = grid * cell
    top, left = h // 4, (w - code_px) // 2
    dy = rng.integers(-jitter, jitter + 1, n)
    dx = rng.integers(-jitter, jitter + 1, n)
    for k in range(n):
        t, lft = top + dy[k], left + dx[k]
        canvas[k, t - 4: t + code_px + 4, lft - 3: lft + code_px + 3] = 1
        canvas[k, t + code_px + 4: min(h, t + code_px + 4 + h // 3), lft: lft + code_px] = 2
        on = codes[labels[k]].reshape(grid, grid)
        for r, c in zip(*np.nonzero(on)):
            canvas[k, t + r * cell: t + (r + 1) * cell, lft + c * cell: lft + (c + 1) * cell] = 3
    if infrared:
        table = np.array(_IR, dtype=np.float32)[:, None].repeat(3, 1)
    else:
        table = np.stack([_BG, _TORSO, _LEGS, _CELL])
    img = table[canvas.astype(np.int64)].transpose(0, 3, 1, 2)  # (n, 3, h, w)
    img = img * rng.uniform(0.8, 1.2, (n, 1, 1, 1)).astype(np.float32)
    img = img + rng.normal(0.0, noise, img.shape).astype(np.float32)
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def local_patch_set(n_ids: int, per_id: int, seed: int = 0, size: tuple[int, int] = (64, 32), grid: int = 3,
                    cell: int = 4, jitter: int = 2, noise: float = 0.03, first_id: int = 0,
                    codes: np.ndarray | None = None) -> LocalPatchSet:
    """``per_id`` visible and ``per_id`` infrared images of each of ``n_ids`` identities.

    ``codes`` (from :func:`identity_codes`) fixes the identities (e.g. draw train and test ids from
    one code table without overlap: ``codes[first_id : first_id + n_ids]``); labels are
    ``0..n_ids-1``."""
    rng = np.random.default_rng(seed)
    if codes is None:
        codes = identity_codes(rng, first_id + n_ids, grid)
    codes = codes[first_id: first_id + n_ids]
    if codes.shape[0] != n_ids:
        raise VibenchError(f"local-patch set: codes has {codes.shape[0]} rows from first_id {first_id}, need {n_ids}")
    if size[0] < grid * cell + 8 + 2 * jitter + size[0] // 4 or size[1] < grid * cell + 6 + 2 * jitter:
        raise VibenchError(f"local-patch set: image size {size} too small for a {grid}x{grid} code of {cell}-pixel cells")
    labels = np.repeat(np.arange(n_ids), per_id)
    vis = _render(codes, labels, False, rng, size, grid, cell, jitter, noise)
    ir = _render(codes, labels, True, rng, size, grid, cell, jitter, noise)
    return LocalPatchSet(vis, labels.copy(), ir, labels.copy(), codes)
