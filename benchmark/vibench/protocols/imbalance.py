"""Imbalance training variants (BIT supplementary §8: "randomly removing 10% and 20% of infrared
images ... and removing 10% and 20% of visible images" per identity on SYSU-MM01).

For every identity with n training images of the reduced modality, exactly
``k = floor(fraction * n + 1/2)`` (round half up, computed exactly on the decimal fraction) of
them are removed, capped at n - 1 so an identity never silently loses all its images of that
modality: when the cap applies a ``UserWarning`` names the identities (it cannot apply for
fractions below 1/2 with n >= 1, i.e. never for the 10%/20% variants; with n = 1 and
fraction < 1/2, k = 0).

Which images go: per identity, the image paths of that modality sorted, shuffled by
``random.Random(f"vibench-imbalance|{seed}|{modality}|{pid}")`` (string seeds are hashed with
sha512 by CPython, so the stream is the same on every platform and Python >= 3.2), and the first
k are removed. The per-identity stream does not depend on the fraction, so the 10% removal of a
seed is a subset of its 20% removal.
"""
from __future__ import annotations

import random
import warnings
from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

from vibench.data.records import ImageRecord
from vibench.errors import VibenchError
from vibench.protocols.spec import ProtocolSpec


def removal_count(fraction: float, n: int) -> int:
    """round-half-up(fraction * n), exact on the decimal value of `fraction`, capped at n - 1."""
    exact = Fraction(str(fraction)) * n
    k = int(exact + Fraction(1, 2)) if exact >= 0 else 0  # floor(x + 1/2) for x >= 0
    return max(0, min(k, n - 1))


@dataclass(frozen=True)
class ImbalancePlan:
    """What a reduction removes: the removed records and the identities whose count was capped."""

    removed: tuple[ImageRecord, ...]
    capped_pids: tuple[int, ...]


def plan_reduction(spec: ProtocolSpec, records: Sequence[ImageRecord], seed: int) -> ImbalancePlan:
    """The records the imbalance variant `spec` removes from `records` for `seed`."""
    if not spec.is_training or spec.reduction is None:
        raise VibenchError(f"protocol {spec.name!r} is not a training variant (kind: {spec.kind}); "
                           "only kind 'training' protocols change the training data")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise VibenchError(f"imbalance seed: expected an integer, got {seed!r}")
    modality, fraction = spec.reduction.modality, spec.reduction.fraction
    per_pid: dict[int, list[ImageRecord]] = {}
    for r in records:
        if r.modality == modality:
            per_pid.setdefault(r.pid, []).append(r)
    removed: list[ImageRecord] = []
    capped: list[int] = []
    for pid in sorted(per_pid):
        items = sorted(per_pid[pid], key=lambda r: r.path)
        exact = Fraction(str(fraction)) * len(items)
        k = removal_count(fraction, len(items))
        if int(exact + Fraction(1, 2)) > k:
            capped.append(pid)
        rng = random.Random(f"vibench-imbalance|{seed}|{modality}|{pid}")
        rng.shuffle(items)
        removed.extend(items[:k])
    return ImbalancePlan(tuple(removed), tuple(capped))


def apply_training_variant(spec: ProtocolSpec, records: Sequence[ImageRecord],
                           seed: int) -> tuple[ImageRecord, ...]:
    """`records` without the images the imbalance variant removes (order kept)."""
    plan = plan_reduction(spec, records, seed)
    if plan.capped_pids:
        warnings.warn(f"{spec.name}: identities {list(plan.capped_pids)} keep one "
                      f"{spec.reduction.modality if spec.reduction else ''} image (the fraction "
                      "would have removed all of them)", UserWarning, stacklevel=2)
    gone = {id(r) for r in plan.removed}
    return tuple(r for r in records if id(r) not in gone)
