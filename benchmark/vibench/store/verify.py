"""Verifying cells against their manifest, and what to recompute when one is damaged.

A completed cell is trusted only when every file its ``DONE`` manifest lists
(:mod:`vibench.store.manifest`) is present with the recorded size and sha256, and its JSON
documents parse and pass the schema checks. A cell written before manifests existed is
*unverified*: only the structure is checked (JSON parses, ``.npz``/``.pt`` zip archives pass
their CRC check, every protocol ``DONE`` lists has its metrics file).

Each problem names the file and the part of the cell it damages; :func:`repair_targets` maps
parts to what ``vibench run`` deletes so that its normal resume recomputes it: a damaged
checkpoint retrains (and re-extracts and re-evaluates), damaged features re-extract (and
re-evaluate), damaged metrics or rankings of a protocol re-evaluate that protocol, a damaged
spec re-evaluates every protocol (the spec records their lists), damaged model statistics are
measured again.
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from vibench.errors import VibenchError
from vibench.io import sha256_file
from vibench.store.layout import CellDir
from vibench.store.manifest import ALGORITHM, cell_files

#: parts of a cell whose files are large; readers that only need numbers skip hashing them
BULK_PARTS = ("train", "features", "untrained")


@dataclass(frozen=True)
class Problem:
    """One damaged file of a cell: its path, what is wrong, and the part it belongs to."""

    path: Path
    what: str
    part: str  # spec | done | train | log | features | untrained | evaluation:<protocol> | model | timings | other

    def __str__(self) -> str:
        return f"{self.path}: {self.what}"


@dataclass
class CellCheck:
    """The verdict on one entry of ``cells/``."""

    cell: CellDir
    status: str  # ok | unverified | damaged | incomplete | stray
    problems: list[Problem] = field(default_factory=list)
    note: str = ""

    @property
    def name(self) -> str:
        return self.cell.root.name

    def describe(self) -> str:
        if self.problems:
            return f"{self.name}: damaged\n" + "\n".join(f"  {p}" for p in self.problems)
        return f"{self.name}: {self.status}" + (f" ({self.note})" if self.note else "")


def part_of(rel: str) -> str:
    """The part of a cell a file (path relative to the cell directory) belongs to."""
    parts = rel.split("/")
    if rel == "spec.json":
        return "spec"
    if rel == "train/train_log.jsonl":
        return "log"
    if parts[0] == "train":
        return "train"
    if rel == "features.npz":
        return "features"
    if rel == "features_untrained.npz":
        return "untrained"
    if parts[0] == "metrics" and len(parts) == 2 and rel.endswith(".json"):
        return f"evaluation:{parts[1][:-len('.json')]}"
    if parts[0] == "rankings" and len(parts) >= 3:
        return f"evaluation:{parts[1]}"
    if rel == "model.json":
        return "model"
    if rel == "timings.json":
        return "timings"
    return "other"


def read_done(cd: CellDir) -> dict[str, Any]:
    """The ``DONE`` document, or a VibenchError naming the file."""
    try:
        doc = json.loads(cd.done_path.read_text())
    except (OSError, ValueError) as exc:
        raise VibenchError(f"{cd.done_path}: not valid JSON ({exc}); expected the completion "
                           "marker {\"protocols\": [...], \"manifest\": {...}}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("protocols"), list):
        raise VibenchError(f"{cd.done_path}: expected a mapping with a 'protocols' list")
    manifest = doc.get("manifest")
    if manifest is not None and (not isinstance(manifest, dict)
                                 or not isinstance(manifest.get("files"), dict)):
        raise VibenchError(f"{cd.done_path}: 'manifest' must be a mapping with 'files'")
    return doc


def verify_cell(cd: CellDir, *, deep: bool = True) -> CellCheck:
    """Check one entry of ``cells/`` (module docstring). With ``deep=False`` the large files
    (checkpoints, features) are only checked for presence and size, not hashed: what a reader
    of numbers needs, quickly."""
    root = cd.root
    if not root.is_dir():
        return CellCheck(cd, "stray", [Problem(root, "not a cell directory (a stray file under "
                                               "cells/)", "other")])
    if not cd.done_path.exists():
        if not cd.spec_path.exists():
            return CellCheck(cd, "stray", [Problem(root, "not a cell directory (no spec.json, no "
                                                   "DONE)", "other")])
        return CellCheck(cd, "incomplete", note="no DONE: interrupted, failed or running")
    try:
        done = read_done(cd)
    except VibenchError as exc:
        problems = [Problem(cd.done_path, str(exc).split(": ", 1)[1], "done")]
        problems += _structure(cd, set(), deep)
        return CellCheck(cd, "damaged", problems)
    manifest = done.get("manifest")
    problems: list[Problem] = []
    if manifest is not None:
        problems += _against_manifest(cd, manifest["files"], deep)
    bad = {p.path for p in problems}
    problems += [p for p in _structure(cd, {str(x) for x in done["protocols"]}, deep and manifest is None)
                 if p.path not in bad]
    if problems:
        return CellCheck(cd, "damaged", problems)
    if manifest is None:
        return CellCheck(cd, "unverified", note="written before manifests: structure checked, "
                                                "contents not verifiable")
    return CellCheck(cd, "ok")


def _against_manifest(cd: CellDir, files: dict[str, Any], deep: bool) -> list[Problem]:
    problems = []
    for rel, entry in sorted(files.items()):
        part = part_of(rel)
        path = cd.root / rel
        if ".." in rel.split("/") or rel.startswith("/"):
            problems.append(Problem(cd.done_path, f"manifest entry {rel!r} leaves the cell", "done"))
            continue
        if not path.is_file():
            problems.append(Problem(path, "missing (listed in DONE's manifest)", part))
            continue
        size = path.stat().st_size
        if size != entry.get("size"):
            problems.append(Problem(path, f"{size} bytes, the manifest recorded {entry.get('size')} "
                                          "(truncated or replaced)", part))
        elif (deep or part not in BULK_PARTS) and sha256_file(path) != entry.get(ALGORITHM):
            problems.append(Problem(path, "contents changed since the cell completed (sha256 "
                                          "differs from DONE's manifest)", part))
    for rel in cell_files(cd.root):
        part = part_of(rel)
        if rel not in files and part.startswith("evaluation:"):
            problems.append(Problem(cd.root / rel, "not in DONE's manifest (added after the cell "
                                                   "completed)", part))
    return problems


def _structure(cd: CellDir, protocols: set[str], check_archives: bool) -> list[Problem]:
    """Checks that need no manifest: documents parse, archives pass their CRC check."""
    problems = []

    def guard(path: Path, part: str, read: Any) -> None:
        try:
            read()
        except VibenchError as exc:
            problems.append(Problem(path, _without_path(str(exc), path), part))

    guard(cd.spec_path, "spec", cd.read_spec)
    for name in sorted(set(cd.metrics_protocols()) | protocols):
        path = cd.metrics_path(name)
        if not path.is_file():
            problems.append(Problem(path, f"missing (DONE lists protocol {name!r})", f"evaluation:{name}"))
            continue
        guard(path, f"evaluation:{name}", lambda n=name: cd.read_metrics(n))
    if cd.model_path.exists():
        guard(cd.model_path, "model", cd.read_model)
    if cd.timings_path.exists():
        guard(cd.timings_path, "timings", lambda: _json(cd.timings_path))
    if check_archives:
        for rel in cell_files(cd.root):
            if rel.endswith((".npz", ".pt")):
                what = _zip_problem(cd.root / rel)
                if what:
                    problems.append(Problem(cd.root / rel, what, part_of(rel)))
    return problems


def _json(path: Path) -> None:
    try:
        json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise VibenchError(f"{path}: not valid JSON ({exc})") from None


def _zip_problem(path: Path) -> str | None:
    """None when the archive reads with correct CRCs, else what is wrong."""
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        return f"not a readable archive ({exc}; truncated or overwritten)"
    return None if bad is None else f"member {bad} fails its CRC check (corrupted)"


def _without_path(message: str, path: Path) -> str:
    prefix = f"{path}: "
    return message[len(prefix):] if message.startswith(prefix) else message


def check_cells(out: Path, *, deep: bool = True) -> Iterator[CellCheck]:
    """A verdict for every entry of ``<out>/cells`` (directories and stray files), in name order."""
    cells = Path(out) / "cells"
    if not cells.is_dir():
        return
    for path in sorted(cells.iterdir()):
        if path.name.startswith("."):
            continue
        yield verify_cell(CellDir(path), deep=deep)


def repair_targets(cd: CellDir, problems: list[Problem]) -> tuple[list[Path], list[str]]:
    """What to delete so that resuming the cell recomputes exactly the damaged parts, and the
    steps that will run (module docstring). ``DONE`` is always deleted first."""
    parts = {p.part for p in problems}
    evaluation = [cd.root / "metrics", cd.root / "rankings"]
    targets: list[Path] = [cd.done_path]
    steps: list[str] = []
    if "train" in parts:
        targets += [cd.train_dir, cd.features_path, cd.untrained_features_path, cd.model_path, *evaluation]
        steps.append("retrain")
    if parts & {"features", "untrained"}:
        targets += [cd.features_path if "features" in parts else cd.untrained_features_path, *evaluation]
        steps.append("re-extract")
    if "spec" in parts:
        targets += [cd.spec_path, *evaluation]
    protocols = sorted(p.split(":", 1)[1] for p in parts if p.startswith("evaluation:"))
    if evaluation[0] in targets:
        steps.append("re-evaluate every protocol")
    elif protocols:
        for name in protocols:
            targets += [cd.metrics_path(name), cd.root / "rankings" / name]
        steps.append("re-evaluate " + ", ".join(protocols))
    for part, path, step in (("model", cd.model_path, "re-measure model statistics"),
                             ("timings", cd.timings_path, None), ("log", cd.train_dir / "train_log.jsonl", None)):
        if part in parts:
            targets.append(path)
            if step and "retrain" not in steps:
                steps.append(step)
    targets += [p.path for p in problems if p.part == "other" and p.path != cd.root]
    return list(dict.fromkeys(targets)), steps or ["rewrite DONE"]
