"""Materialise a protocol's query and gallery lists for one trial (ARCHITECTURE.md "Protocols").

``build_lists(spec, index, trial)``:

1. the test records: split 0 for SYSU/LLCM (trials are sampler seeds), split `trial` for RegDB
   (trials are the split files 1..10);
2. the query set and gallery pool: the test images of the listed modalities and cameras, in the
   reference order (see :class:`vibench.protocols.spec.ImageSetSpec`);
3. the sampler draws the sampled side for this trial (docs/protocols.md#samplers-and-list-order); the other side
   keeps every image;
4. ``query_gallery_index[i]`` = the position of query i's own image in the gallery (matched by
   path), or -1. The metric rules remove the query's own image by this index, never by distance.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from vibench.data.records import DatasetIndex, ImageRecord, records_sha256
from vibench.data.sysu import read_rand_perm_cam
from vibench.errors import VibenchError
from vibench.protocols.gallery_sampling import agw_single_shot, official_rand_perm, seeded_multi_shot
from vibench.protocols.spec import ImageSetSpec, ProtocolSpec


@dataclass(frozen=True)
class ProtocolLists:
    """The materialised lists of one protocol and trial.

    `sha256` = :func:`lists_sha256` of the two lists (it changes whenever any path, pid, camera,
    modality or the order of either list changes).
    """

    query: tuple[ImageRecord, ...]
    gallery: tuple[ImageRecord, ...]
    query_gallery_index: np.ndarray = field(compare=False)
    sha256: str = ""
    protocol: str = field(default="", compare=False)
    trial: int = field(default=0, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready lists (paths relative to the dataset root, '/'-separated)."""
        return {
            "protocol": self.protocol, "trial": self.trial, "sha256": self.sha256,
            "num_query": len(self.query), "num_gallery": len(self.gallery),
            "query": [r.to_dict() for r in self.query],
            "gallery": [r.to_dict() for r in self.gallery],
            "query_gallery_index": [int(v) for v in self.query_gallery_index],
        }


def lists_sha256(query: Iterable[ImageRecord], gallery: Iterable[ImageRecord]) -> str:
    """sha256 of ``"query:<records_sha256(query)>\\ngallery:<records_sha256(gallery)>\\n"``."""
    text = f"query:{records_sha256(query)}\ngallery:{records_sha256(gallery)}\n"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def select_records(records: Iterable[ImageRecord], image_set: ImageSetSpec) -> list[ImageRecord]:
    """The records of the set's modalities and cameras, in the set's order (flattened folders
    for "grouped", the index order for "index")."""
    if image_set.order == "index":
        return [r for r in records if image_set.contains(r.modality, r.cam)]
    return [r for folder in group_folders(records, image_set) for r in folder]


def group_folders(records: Iterable[ImageRecord], image_set: ImageSetSpec) -> list[list[ImageRecord]]:
    """The (pid, modality, camera) folders of the set in the reference visiting order: pids
    ascending; per pid, the modalities in listed order and, within each, the cameras in listed
    order; absent folders skipped; each folder's records sorted by path (docs/protocols.md#samplers-and-list-order
    step 2-3: "sorted(os.listdir(folder))")."""
    rank = {(m, c): i for i, (m, c) in enumerate(
        (m, c) for m, cams in image_set.modality_cams for c in cams)}
    folders: dict[tuple[int, int], list[ImageRecord]] = {}
    for r in records:
        slot = rank.get((r.modality, r.cam))
        if slot is not None:
            folders.setdefault((r.pid, slot), []).append(r)
    return [sorted(folders[key], key=lambda r: r.path) for key in sorted(folders)]


@lru_cache(maxsize=4)
def _read_perm(path: str, mtime_ns: int) -> Any:
    return read_rand_perm_cam(path)


def _official_perm(spec: ProtocolSpec, index: DatasetIndex) -> tuple[Any, str]:
    """The rand_perm_cam table of the index (path in ``index.meta["rand_perm_cam"]``)."""
    path = index.meta.get("rand_perm_cam") if index.meta else None
    candidate = Path(str(path)) if path else Path(index.root) / "exp" / "rand_perm_cam.mat"
    if not candidate.is_file():
        raise VibenchError(
            f"protocol {spec.name!r} uses the official SYSU-MM01 sampler, which reads "
            f"exp/rand_perm_cam.mat, but {candidate} does not exist; copy the official file "
            "(wuancong/SYSU-MM01 evaluation/data_split/rand_perm_cam.mat) there, or use the "
            "AGW-sampler protocol of the same name without '-official'")
    return _read_perm(str(candidate), os.stat(candidate).st_mtime_ns), str(candidate)


def sample_side(spec: ProtocolSpec, index: DatasetIndex, records: Sequence[ImageRecord],
                image_set: ImageSetSpec, trial: int) -> list[ImageRecord]:
    """Draw the sampled side of `spec` for `trial` (docs/protocols.md#samplers-and-list-order, Samplers A and B)."""
    assert spec.sampler is not None
    kind, shots = spec.sampler.kind, spec.sampler.shots
    if kind == "all":
        return select_records(records, image_set)
    folders = group_folders(records, image_set)
    if kind == "single-shot":
        return agw_single_shot(folders, trial)
    if kind == "multi-shot":
        return seeded_multi_shot(folders, trial, shots)
    perm, source = _official_perm(spec, index)
    return official_rand_perm(folders, trial, shots, perm, source)


def check_trial(spec: ProtocolSpec, trial: Any) -> int:
    """`trial` as an int when it is one of the protocol's own trial ids, else VibenchError."""
    if spec.is_training:
        raise VibenchError(f"protocol {spec.name!r} is a training variant (it changes the training "
                           f"data); it has no lists: evaluate with {', '.join(spec.evaluate_with)}")
    if isinstance(trial, bool) or not isinstance(trial, (int, np.integer)) or int(trial) not in spec.trials:
        what = "split numbers" if spec.trial_source == "split" else "trial seeds"
        raise VibenchError(f"protocol {spec.name!r} has no trial {trial!r}; its {what} are "
                           f"{', '.join(str(t) for t in spec.trials)}")
    return int(trial)


def build_lists(spec: ProtocolSpec, index: DatasetIndex, trial: int) -> ProtocolLists:
    """The query and gallery lists of `spec` on `index` for `trial` (see the module docstring)."""
    trial = check_trial(spec, trial)
    assert spec.query is not None and spec.gallery is not None and spec.sampler is not None
    if str(index.name).lower() != spec.dataset:
        raise VibenchError(f"protocol {spec.name!r} is defined on {spec.dataset}, "
                           f"but the dataset index at {index.root} is {index.name!r}")
    try:
        records = index.test(trial if spec.trial_source == "split" else None)
    except (ValueError, KeyError) as exc:
        raise VibenchError(f"protocol {spec.name!r}, trial {trial}: {exc}") from None
    if spec.sampler.applies_to == "query":
        query = sample_side(spec, index, records, spec.query, trial)
        gallery = select_records(records, spec.gallery)
    else:
        query = select_records(records, spec.query)
        gallery = sample_side(spec, index, records, spec.gallery, trial)
    for side, items, image_set in (("query", query, spec.query), ("gallery", gallery, spec.gallery)):
        if not items:
            raise VibenchError(f"protocol {spec.name!r}, trial {trial}: the {side} is empty; expected "
                               f"test images of "
                               + ", ".join(f"{m} cameras {list(c)}" for m, c in image_set.modality_cams)
                               + f" in {index.root}")
    position: dict[str, int] = {}
    for i, r in enumerate(gallery):
        if r.path in position:
            raise VibenchError(f"protocol {spec.name!r}, trial {trial}: image {r.path} appears twice "
                               f"in the gallery (the dataset index at {index.root} lists it twice)")
        position[r.path] = i
    qgi = np.fromiter((position.get(r.path, -1) for r in query), dtype=np.int64, count=len(query))
    return ProtocolLists(tuple(query), tuple(gallery), qgi, lists_sha256(query, gallery),
                         protocol=spec.name, trial=trial)
