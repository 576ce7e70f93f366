"""`vibench data check`: validate a dataset tree and summarise it (issue 2, docs/datasets.md#layouts).

Every problem is reported at once (missing folders and id/index files, empty id files, index
lines naming missing images, RegDB visible/thermal label lists that disagree, a missing root; with
``deep``, images that do not decode), each naming the path and what was expected. The summary
gives ids, images per camera and modality, split sizes (per trial for RegDB) and the sha256 of
every split/index file, so two sites can tell whether they evaluate on the same lists.
"""
from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from vibench.data import scan_dataset
from vibench.data.imageio import image_problem
from vibench.data.layout import Problem, Scan
from vibench.data.records import DatasetIndex, ImageRecord
from vibench.io import sha256_file

SCHEMA_VERSION = 1


@dataclass
class CheckReport:
    """The outcome of checking one tree; ``ok`` is False when any problem was found."""

    dataset: str
    root: str
    deep: bool
    problems: list[Problem]
    warnings: list[Problem]
    summary: dict[str, Any]
    index_files: dict[str, str] = field(default_factory=dict)
    manifest_hash: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "dataset": self.dataset,
            "root": self.root,
            "deep": self.deep,
            "ok": self.ok,
            "num_problems": len(self.problems),
            "problems": [p.to_dict() for p in self.problems],
            "warnings": [w.to_dict() for w in self.warnings],
            "summary": self.summary,
            "index_files": self.index_files,
            "manifest_hash": self.manifest_hash,
        }

    def format_text(self) -> str:
        """Human-readable report: summary, index-file hashes, warnings, then every problem."""
        out = [f"{self.dataset} dataset at {self.root}" + (" (deep check)" if self.deep else "")]
        out += _format_summary(self.summary)
        if self.index_files:
            out.append("split/index files (sha256):")
            out += [f"  {digest}  {rel}" for rel, digest in self.index_files.items()]
        if self.manifest_hash:
            out.append(f"manifest hash: {self.manifest_hash}")
        if self.warnings:
            out.append(f"{len(self.warnings)} warning(s):")
            out += [f"  - {w}" for w in self.warnings]
        if self.problems:
            out.append(f"{len(self.problems)} problem(s):")
            out += [f"  - {p}" for p in self.problems]
        else:
            out.append("OK: no problems found")
        return "\n".join(out)


def _counts(records: Iterable[ImageRecord]) -> dict[str, Any]:
    records = list(records)
    return {
        "images": len(records),
        "ids": len({r.pid for r in records}),
        "per_modality": dict(sorted(Counter(r.modality for r in records).items())),
        "per_camera": {str(c): n for c, n in sorted(Counter(r.cam for r in records).items())},
        "ids_per_modality": {m: len({r.pid for r in records if r.modality == m})
                             for m in sorted({r.modality for r in records})},
    }


def summarize(index: DatasetIndex) -> dict[str, Any]:
    """Ids, images per camera and modality, and split sizes of an index (per split for RegDB)."""
    summary: dict[str, Any] = {"splits": list(index.splits)}
    if len(index.splits) == 1:
        s = index.splits[0]
        summary["train"] = _counts(index.train(s))
        summary["test"] = _counts(index.test(s))
    else:
        summary["per_split"] = {
            str(s): {"train": _counts(index.train(s)), "test": _counts(index.test(s))} for s in index.splits
        }
    for key in ("train_ids", "val_ids", "test_ids", "training_ids"):
        if key in index.meta and isinstance(index.meta[key], list):
            summary[f"num_{key}"] = len(index.meta[key])  # type: ignore[arg-type]
    return summary


def _format_counts(label: str, c: dict[str, Any]) -> str:
    mods = ", ".join(f"{m} {n}" for m, n in c["per_modality"].items()) or "none"
    cams = ", ".join(f"cam{k} {n}" for k, n in c["per_camera"].items()) or "none"
    return f"  {label}: {c['ids']} ids, {c['images']} images ({mods}; {cams})"


def _format_summary(summary: dict[str, Any]) -> list[str]:
    lines = []
    ids = [f"{k[4:]} {v}" for k, v in summary.items() if k.startswith("num_")]
    if ids:
        lines.append("id files: " + ", ".join(ids))
    if "per_split" in summary:
        lines.append("per trial (split):")
        for s, parts in summary["per_split"].items():
            lines.append(_format_counts(f"split {s} train", parts["train"]))
            lines.append(_format_counts(f"split {s} test ", parts["test"]))
    else:
        lines.append(_format_counts("train", summary["train"]))
        lines.append(_format_counts("test", summary["test"]))
    return lines


def deep_problems(root: Path, rel_paths: Iterable[str], workers: int | None = None) -> list[Problem]:
    """Decode every image fully (threads: PIL releases the GIL); one Problem per bad image."""
    paths = sorted(set(rel_paths))
    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda rel: image_problem(root / rel), paths))
    return [Problem(str(root / rel), msg) for rel, msg in zip(paths, results) if msg is not None]


def check_dataset(name: str, root: str | os.PathLike[str], *, deep: bool = False) -> CheckReport:
    """Validate the tree `root` in `name`'s layout; never raises for a malformed tree."""
    index, scan = scan_dataset(name, root)
    assert isinstance(scan, Scan)
    problems = list(scan.problems)
    if deep and scan.root.is_dir():
        rels = {r.path for s in index.splits for r in (*index.train(s), *index.test(s))}
        problems += deep_problems(scan.root, rels)
    hashes = {}
    for path in scan.index_files:
        try:
            hashes[path.relative_to(scan.root).as_posix()] = sha256_file(path)
        except OSError:
            pass
    return CheckReport(
        dataset=index.name,
        root=str(scan.root),
        deep=deep,
        problems=problems,
        warnings=list(scan.warnings),
        summary=summarize(index),
        index_files=hashes,
        manifest_hash=index.manifest_hash() if not problems else None,
    )
