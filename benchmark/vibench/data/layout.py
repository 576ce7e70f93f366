"""Shared parsing for the on-disk dataset layouts (docs/datasets.md#layouts).

Every loader walks its tree with a :class:`Scan` that collects *all* problems instead of stopping
at the first one, so `vibench data check` and :func:`vibench.data.load_dataset` can report every
broken file at once. Identities and cameras are read from path components of paths relative to
the dataset root (``camK`` folders, 4-digit pid folders), never from character offsets
(docs/datasets.md#datasets), so a root whose own path contains "cam" is harmless.
"""
from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from vibench.data.records import DatasetIndex, ImageRecord
from vibench.errors import VibenchError

#: File name endings accepted as images (compared case-insensitively).
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp")

_CAM_DIR = re.compile(r"^cam(\d+)$")
_PID_DIR = re.compile(r"^\d+$")
_CAM_TOKEN = re.compile(r"^c(\d+)$")
_LABEL = re.compile(r"^-?\d+$")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a dataset tree: the path concerned and what was expected there."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "problem": self.message}


@dataclass
class Scan:
    """What reading one tree produced: problems (fatal), warnings and the index files read."""

    root: Path
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    index_files: list[Path] = field(default_factory=list)

    def problem(self, path: Path | str, message: str) -> None:
        self.problems.append(Problem(str(path), message))

    def warn(self, path: Path | str, message: str) -> None:
        self.warnings.append(Problem(str(path), message))

    def check_root(self) -> bool:
        """Record a problem unless the root is an existing directory; True when it is."""
        if not self.root.exists():
            self.problem(self.root, "dataset root does not exist (expected a directory)")
            return False
        if not self.root.is_dir():
            self.problem(self.root, "dataset root is not a directory")
            return False
        return True

    def require_dir(self, rel: str) -> Path | None:
        """The folder `rel` under the root, or None (and a problem) when it is missing."""
        path = self.root / rel
        if not path.is_dir():
            self.problem(path, f"missing folder (expected {rel}/ under the dataset root)")
            return None
        return path


def raise_if_problems(scan: Scan, name: str) -> None:
    """Raise one VibenchError listing every problem of `scan` (the loaders' contract)."""
    if scan.problems:
        lines = "\n".join(f"  - {p}" for p in scan.problems)
        raise VibenchError(
            f"{name} dataset at {scan.root} has {len(scan.problems)} problem(s):\n{lines}\n"
            f"(run `vibench data check --dataset {name} --root {scan.root}` for a full report)"
        )


def read_id_file(scan: Scan, rel: str) -> list[int] | None:
    """SYSU-style id file: the ids are the comma-separated integers of the first line.

    docs/datasets.md#sysu-mm01-sysu-split-0: readers take line 0 only, split on ',' and convert each part to int.
    Returns the ids sorted and de-duplicated, or None when the file is missing or unusable.
    """
    path = scan.root / rel
    if not path.is_file():
        scan.problem(path, "missing id file (expected comma-separated ids on the first line)")
        return None
    scan.index_files.append(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        scan.problem(path, f"unreadable id file ({exc})")
        return None
    first = text.splitlines()[0] if text.strip() else ""
    parts = [p.strip() for p in first.split(",") if p.strip()]
    if not parts:
        scan.problem(path, "empty id file (expected comma-separated ids on the first line)")
        return None
    ids: list[int] = []
    bad = [p for p in parts if not (p.isascii() and p.isdigit())]
    if bad:
        scan.problem(path, f"non-integer id(s) {bad[:5]} on the first line (expected e.g. '1,2,3')")
        return None
    ids = [int(p) for p in parts]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        scan.warn(path, f"duplicate id(s) {dup[:10]} (each id should appear once)")
    return sorted(set(ids))


def normalize_relpath(text: str) -> str | None:
    """An index-file path as a clean '/'-separated path relative to the root, or None if it
    escapes the root. Leading '/' or './' and doubled slashes are dropped (AGW joins
    root + '/' + path, so such paths work there too, docs/datasets.md#regdb-regdb-splits-110)."""
    text = text.replace("\\", "/").lstrip("/")
    norm = posixpath.normpath(text) if text else ""
    if not norm or norm == "." or norm.startswith("../") or norm == "..":
        return None
    return norm


class DirListing:
    """Membership tests for files under a root, listing each folder once (fast on big trees)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[str, frozenset[str]] = {}

    def files_in(self, rel_dir: str) -> frozenset[str]:
        if rel_dir not in self._cache:
            try:
                with os.scandir(self.root / rel_dir) as it:
                    names = frozenset(e.name for e in it if e.is_file())
            except OSError:
                names = frozenset()
            self._cache[rel_dir] = names
        return self._cache[rel_dir]

    def is_file(self, rel: str) -> bool:
        folder, _, name = rel.rpartition("/")
        return name in self.files_in(folder)


def read_index_file(scan: Scan, rel: str, listing: DirListing) -> list[tuple[str, int]] | None:
    """Lines '<path relative to the root> <int label>' (RegDB and LLCM, docs/datasets.md#layouts).

    Every malformed line and every line naming a missing image is a problem (file:line named);
    the good lines are returned in file order. None when the file itself is missing.
    """
    path = scan.root / rel
    if not path.is_file():
        scan.problem(path, "missing index file (expected lines '<relative image path> <label>')")
        return None
    scan.index_files.append(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        scan.problem(path, f"unreadable index file ({exc})")
        return None
    entries: list[tuple[str, int]] = []
    missing = 0
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        where = f"{path}:{lineno}"
        if len(fields) != 2 or not _LABEL.match(fields[1]):
            scan.problem(where, f"malformed line {line.strip()!r} (expected '<relative path> <int label>')")
            continue
        rel_img = normalize_relpath(fields[0])
        if rel_img is None:
            scan.problem(where, f"path {fields[0]!r} is not inside the dataset root")
            continue
        if not listing.is_file(rel_img):
            missing += 1
            if missing <= 20:
                scan.problem(where, f"image {rel_img} does not exist under {scan.root}")
            continue
        entries.append((rel_img, int(fields[1])))
    if missing > 20:
        scan.problem(path, f"{missing - 20} more line(s) point at missing images")
    if not text.strip():
        scan.problem(path, "empty index file (expected lines '<relative image path> <label>')")
    return entries


def cam_from_path(rel: str) -> int | None:
    """The camera number K of the last 'camK' folder in a relative path, else None."""
    for part in reversed(rel.split("/")[:-1]):
        m = _CAM_DIR.match(part)
        if m:
            return int(m.group(1))
    return None


def cam_from_filename(rel: str) -> int | None:
    """The camera number of an LLCM-style file name ``<pid>_c<NN>_s<..>_f<..>_<mod>.jpg``: the
    '_'-separated token ``c<digits>`` of the file's stem, else None."""
    stem = rel.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    for token in stem.split("_")[1:]:
        m = _CAM_TOKEN.match(token)
        if m:
            return int(m.group(1))
    return None


def pid_folders(cam_dir: Path) -> dict[int, str]:
    """{pid: folder name} for the all-digit identity folders of one camera folder."""
    out: dict[int, str] = {}
    with os.scandir(cam_dir) as it:
        for entry in it:
            if entry.is_dir() and _PID_DIR.match(entry.name):
                out[int(entry.name)] = entry.name
    return out


def list_images(folder: Path) -> list[str]:
    """Image file names of one folder, sorted lexicographically (the reference order)."""
    with os.scandir(folder) as it:
        names = [e.name for e in it if e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS)]
    return sorted(names)


def camera_tree_records(
    scan: Scan, modality_dir: str, cams: Iterable[int], modality: str, pids: set[int] | None
) -> tuple[list[ImageRecord], set[int]]:
    """Records of `<modality_dir>/camK/<pid>/<image>` (SYSU, LLCM test; docs/datasets.md#layouts).

    `modality_dir` is '' for SYSU (cams directly under the root). Only ids in `pids` are kept
    (all when None). Returns the records and the set of camera numbers whose folder is missing.
    """
    records: list[ImageRecord] = []
    missing: set[int] = set()
    base = scan.root / modality_dir if modality_dir else scan.root
    prefix = f"{modality_dir}/" if modality_dir else ""
    for cam in cams:
        cam_dir = base / f"cam{cam}"
        if not cam_dir.is_dir():
            missing.add(cam)
            continue
        for pid, folder in sorted(pid_folders(cam_dir).items()):
            if pids is not None and pid not in pids:
                continue
            for name in list_images(cam_dir / folder):
                records.append(ImageRecord(f"{prefix}cam{cam}/{folder}/{name}", pid, cam, modality))
    return records, missing


def sort_records(records: Iterable[ImageRecord]) -> tuple[ImageRecord, ...]:
    """The deterministic record order of every loader: by (pid, cam, path)."""
    return tuple(sorted(records, key=lambda r: (r.pid, r.cam, r.path)))


def empty_index(name: str, root: Path, splits: tuple[int, ...]) -> DatasetIndex:
    """An index with no records (what a scan of a broken tree returns besides its problems)."""
    return DatasetIndex(name, root, splits, {s: () for s in splits}, {s: () for s in splits}, {})
