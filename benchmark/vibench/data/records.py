"""The one record type every stage shares: an image path with its identity, camera and modality."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Literal, Mapping

Modality = Literal["visible", "infrared"]
MODALITIES: tuple[str, str] = ("visible", "infrared")


@dataclass(frozen=True, order=True)
class ImageRecord:
    """One image of a dataset.

    path: relative to the dataset root, '/'-separated (never absolute).
    pid: the dataset's own identity number (folder id for SYSU/LLCM, label column for RegDB).
    cam: the camera number (SYSU 1..6, LLCM 1..9, RegDB 1 = visible, 2 = thermal).
    modality: "visible" or "infrared" (RegDB thermal and LLCM NIR are "infrared").
    """

    path: str
    pid: int
    cam: int
    modality: str

    def to_dict(self) -> dict[str, object]:
        return {"path": self.path, "pid": self.pid, "cam": self.cam, "modality": self.modality}


def records_sha256(records: Iterable[ImageRecord]) -> str:
    """sha256 over one 'path<TAB>pid<TAB>cam<TAB>modality' line per record, in list order."""
    h = hashlib.sha256()
    for r in records:
        h.update(f"{r.path}\t{r.pid}\t{r.cam}\t{r.modality}\n".encode("utf-8"))
    return h.hexdigest()


@dataclass(frozen=True)
class DatasetIndex:
    """What a loader returns: every train and test record of a dataset tree, per split.

    `splits` are the dataset's training splits: RegDB's trial files 1..10 (one model per
    split); SYSU-MM01 and LLCM have the single split 0. Records keep the dataset's own pids
    (training code relabels them 0..C-1). `meta` holds loader extras, e.g. SYSU's id lists
    ("train_ids", "val_ids", "test_ids") and the path of exp/rand_perm_cam.mat when present.
    """

    name: str
    root: Path
    splits: tuple[int, ...]
    train_records: Mapping[int, tuple[ImageRecord, ...]]
    test_records: Mapping[int, tuple[ImageRecord, ...]]
    meta: Mapping[str, object] = field(default_factory=dict)

    def train(self, split: int | None = None) -> tuple[ImageRecord, ...]:
        return self.train_records[self._split(split)]

    def test(self, split: int | None = None) -> tuple[ImageRecord, ...]:
        return self.test_records[self._split(split)]

    def _split(self, split: int | None) -> int:
        if split is None:
            if len(self.splits) != 1:
                raise ValueError(f"{self.name} has splits {self.splits}: name one")
            return self.splits[0]
        if split not in self.train_records:
            raise ValueError(f"{self.name} has no split {split}; splits are {list(self.splits)}")
        return split

    def manifest_hash(self) -> str:
        """sha256 over every split's train and test record lists (the image cache key)."""
        h = hashlib.sha256(self.name.encode())
        for s in self.splits:
            h.update(f"|train{s}:{records_sha256(self.train_records[s])}".encode())
            h.update(f"|test{s}:{records_sha256(self.test_records[s])}".encode())
        return h.hexdigest()
