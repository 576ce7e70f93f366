"""The cross-modal identity sampler [AGW utils.py ``IdentitySampler``; docs/methods.md#agw-notes].

Every batch holds P identities (drawn without replacement within the batch) and, for each,
K visible and K infrared images. Visible slot i and infrared slot i carry the same identity, so
``vis_label[i] == ir_label[i]``; slots are identity-major ``[id0 x K, id1 x K, ...]``.

An epoch has ``iterations`` batches; by default ``max(#visible, #infrared) // (P * K)`` as in
AGW (one pass over the larger modality). The plan of an epoch is a pure function of
(seed, stage, epoch), so resuming at an epoch boundary replays exactly the same batches.

Identities that lost a modality (imbalance protocols remove images) cannot fill both halves of
a batch. ``missing_modality``:
* ``skip`` (default): such identities are never sampled (their classifier rows stay unused);
  their number is reported in :attr:`CrossModalSampler.skipped`.
* ``error``: refuse to train.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from vibench.errors import VibenchError

MISSING_POLICIES = ("skip", "error")


@dataclass
class EpochPlan:
    """Indices into the training record list: (iterations, P*K) each, plus the aligned labels."""

    vis: np.ndarray
    ir: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return int(self.vis.shape[0])


#: P and K when a sampler config leaves them out (AGW's 8 identities x 4 images per modality)
DEFAULT_IDS_PER_BATCH = 8
DEFAULT_IMAGES_PER_ID = 4


def default_iterations(n_visible: int, n_infrared: int, ids_per_batch: int, images_per_id: int) -> int:
    """Batches per epoch when ``iterations`` is not set: one pass over the larger modality,
    ``max(#visible, #infrared) // (P * K)`` (AGW), at least 1."""
    return max(1, max(n_visible, n_infrared) // (ids_per_batch * images_per_id))


def images_per_iteration(ids_per_batch: int, images_per_id: int) -> int:
    """Images of both modalities in one batch: P identities x (K visible + K infrared)."""
    return 2 * ids_per_batch * images_per_id


def planned_shape(cfg: Mapping[str, Any], n_visible: int, n_infrared: int) -> tuple[int, int]:
    """(iterations per epoch, images per iteration over both modalities) of the sampler that
    `cfg` (a ``sampler`` section) builds for a training set of that size, without building it
    (the paper-suite estimate plans with it)."""
    P = int(cfg.get("ids_per_batch", DEFAULT_IDS_PER_BATCH))
    K = int(cfg.get("images_per_id", DEFAULT_IMAGES_PER_ID))
    iterations = cfg.get("iterations") or default_iterations(n_visible, n_infrared, P, K)
    return int(iterations), images_per_iteration(P, K)


class CrossModalSampler:
    """P identities x (K visible + K infrared) per batch, deterministic by seed."""

    def __init__(
        self,
        labels: Sequence[int] | np.ndarray,
        modalities: Sequence[str],
        *,
        ids_per_batch: int = DEFAULT_IDS_PER_BATCH,
        images_per_id: int = DEFAULT_IMAGES_PER_ID,
        iterations: int | None = None,
        seed: int = 0,
        stage: int = 0,
        missing_modality: str = "skip",
        with_replacement: bool = True,
    ) -> None:
        labels = np.asarray(labels, dtype=np.int64)
        if len(labels) != len(modalities):
            raise VibenchError(f"sampler: {len(labels)} labels but {len(modalities)} modalities")
        if ids_per_batch < 1 or images_per_id < 1:
            raise VibenchError(
                f"sampler: ids_per_batch and images_per_id must be >= 1, got {ids_per_batch}, {images_per_id}"
            )
        if missing_modality not in MISSING_POLICIES:
            raise VibenchError(f"sampler: missing_modality must be one of {MISSING_POLICIES}, got {missing_modality!r}")
        bad = sorted({m for m in modalities if m not in ("visible", "infrared")})
        if bad:
            raise VibenchError(f"sampler: unknown modalities {bad}; expected 'visible' or 'infrared'")
        mods = np.asarray(modalities)
        self.P, self.K = int(ids_per_batch), int(images_per_id)
        self.seed, self.stage = int(seed), int(stage)
        self.with_replacement = bool(with_replacement)
        self.by_id: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.skipped: list[int] = []
        for lab in np.unique(labels):
            v = np.flatnonzero((labels == lab) & (mods == "visible"))
            r = np.flatnonzero((labels == lab) & (mods == "infrared"))
            if len(v) and len(r):
                self.by_id[int(lab)] = (v, r)
            else:
                self.skipped.append(int(lab))
        if self.skipped and missing_modality == "error":
            raise VibenchError(
                f"sampler: {len(self.skipped)} identities have images of only one modality "
                f"(labels {self.skipped[:10]}...); set sampler.missing_modality=skip to leave them out"
            )
        self.ids = np.array(sorted(self.by_id), dtype=np.int64)
        if len(self.ids) < self.P:
            raise VibenchError(
                f"sampler: only {len(self.ids)} identities have both modalities, fewer than ids_per_batch={self.P}"
            )
        n_vis = int((mods == "visible").sum())
        n_ir = int((mods == "infrared").sum())
        default_iters = default_iterations(n_vis, n_ir, self.P, self.K)
        self.iterations = int(iterations) if iterations else default_iters
        if self.iterations < 1:
            raise VibenchError(f"sampler: iterations must be >= 1, got {iterations}")

    @classmethod
    def from_config(
        cls, cfg: Mapping[str, Any], labels: Sequence[int], modalities: Sequence[str], *, seed: int, stage: int = 0
    ) -> "CrossModalSampler":
        known = {"ids_per_batch", "images_per_id", "iterations", "missing_modality", "with_replacement"}
        extra = set(cfg) - known
        if extra:
            raise VibenchError(f"sampler config: unknown key(s) {sorted(extra)}; known: {sorted(known)}")
        return cls(labels, modalities, seed=seed, stage=stage, **dict(cfg))

    @property
    def batch_size(self) -> int:
        """Images per modality in a batch (P * K)."""
        return self.P * self.K

    @property
    def images_per_iteration(self) -> int:
        """Images of both modalities in a batch (2 * P * K)."""
        return images_per_iteration(self.P, self.K)

    def _pick(self, rng: np.random.Generator, pool: np.ndarray) -> np.ndarray:
        if self.with_replacement or len(pool) < self.K:
            return rng.choice(pool, size=self.K, replace=True)
        return rng.choice(pool, size=self.K, replace=False)

    def epoch(self, epoch: int) -> EpochPlan:
        """The batches of `epoch` (a pure function of seed, stage and epoch)."""
        rng = np.random.default_rng([self.seed, self.stage, int(epoch), 0x5A3])
        T, B = self.iterations, self.batch_size
        vis = np.empty((T, B), dtype=np.int64)
        ir = np.empty((T, B), dtype=np.int64)
        labels = np.empty((T, B), dtype=np.int64)
        for t in range(T):
            chosen = rng.choice(self.ids, size=self.P, replace=False)
            for j, lab in enumerate(chosen):
                v_pool, r_pool = self.by_id[int(lab)]
                sl = slice(j * self.K, (j + 1) * self.K)
                vis[t, sl] = self._pick(rng, v_pool)
                ir[t, sl] = self._pick(rng, r_pool)
                labels[t, sl] = lab
        return EpochPlan(vis=vis, ir=ir, labels=labels)
