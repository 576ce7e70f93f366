"""Per-trial samplers over (identity, modality, camera) folders (docs/protocols.md#samplers-and-list-order).

Every sampler receives the folders of one side already in the visiting order of the reference
code (identities ascending, then the listed modalities and cameras, see
:func:`vibench.protocols.build.group_folders`), each folder's records sorted by path, and returns
the drawn records in draw order.

* Sampler A (AGW / DDAG / CAJ / DEEN ``process_gallery_sysu`` / ``process_gallery_llcm``):
  ``random.seed(trial)`` then one ``random.choice`` per folder. A private ``random.Random(trial)``
  gives the very same Mersenne-Twister stream, so the draws are bit-identical to the reference
  without touching the global ``random`` state.
* Multi-shot (vibench's seeded version; the AGW forks' ``np.random.choice`` is unseeded and not
  reproducible): ``random.Random(trial)``, then per folder in the same visiting order
  ``rng.sample(sorted_files, min(shots, n))``, kept in the order ``sample`` returns.
* Sampler B (official / MPANet / SAAI ``get_gallery_names``): row ``trial`` of the folder's
  ``rand_perm_cam`` entry; its first `shots` numbers k name the files ``{k:04d}.jpg``.
"""
from __future__ import annotations

import posixpath
import random
from typing import Mapping, Sequence

import numpy as np

from vibench.data.records import ImageRecord
from vibench.errors import VibenchError

Folder = Sequence[ImageRecord]


def agw_single_shot(folders: Sequence[Folder], trial: int) -> list[ImageRecord]:
    """Sampler A: ``random.seed(trial)``; one ``random.choice`` per folder, in visiting order."""
    rng = random.Random(trial)
    return [rng.choice(folder) for folder in folders if folder]


def seeded_multi_shot(folders: Sequence[Folder], trial: int, shots: int) -> list[ImageRecord]:
    """Multi-shot: ``random.Random(trial)``; per folder ``rng.sample(files, min(shots, n))``."""
    rng = random.Random(trial)
    out: list[ImageRecord] = []
    for folder in folders:
        if folder:
            out.extend(rng.sample(list(folder), min(shots, len(folder))))
    return out


def official_rand_perm(folders: Sequence[Folder], trial: int, shots: int,
                       perm: Mapping[int, Mapping[int, np.ndarray]], source: str) -> list[ImageRecord]:
    """Sampler B: the first `shots` numbers of row `trial` of each folder's permutation.

    `perm` is ``{cam: {pid: rows}}`` as read by ``vibench.data.sysu.read_rand_perm_cam``; number k
    of folder ``cam{c}/{pid:04d}/`` names its file ``{k:04d}.jpg`` (compared by file name within
    the folder). A folder with no entry, a missing row, or a number naming a file that is not in
    the dataset raises VibenchError naming `source` (the .mat file).
    """
    out: list[ImageRecord] = []
    for folder in folders:
        if not folder:
            continue
        pid, cam = folder[0].pid, folder[0].cam
        rows = perm.get(cam, {}).get(pid)
        if rows is None:
            raise VibenchError(f"{source}: no permutation for cam{cam}/{pid:04d} (the dataset has "
                               f"{len(folder)} image(s) there); expected the official file of this tree")
        if trial >= rows.shape[0]:
            raise VibenchError(f"{source}: cam{cam}/{pid:04d} has {rows.shape[0]} permutation rows; "
                               f"trial {trial} needs row {trial}")
        by_stem: dict[str, list[ImageRecord]] = {}
        for r in folder:
            by_stem.setdefault(posixpath.splitext(posixpath.basename(r.path))[0], []).append(r)
        for k in rows[trial, :shots]:
            stem = f"{int(k):04d}"
            hit = by_stem.get(stem, [])
            if len(hit) != 1:
                raise VibenchError(f"{source}: cam{cam}/{pid:04d} permutation names image {stem}.jpg, "
                                   f"which is {'missing from' if not hit else 'ambiguous in'} the dataset")
            out.append(hit[0])
    return out
