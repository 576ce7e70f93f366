"""Reading a result store: every reader (report, check, score) goes through these functions,
so every reader sees the same migrated, checked documents."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from vibench.errors import VibenchError
from vibench.store.identity import STANDARD, Cell
from vibench.store.layout import CellDir, iter_cell_dirs
from vibench.store.verify import CellCheck, check_cells


@dataclass
class StoredCell:
    """One completed cell: its identity, spec (current schema) and per-protocol metrics."""

    path: Path
    spec: dict[str, Any]
    metrics: dict[str, dict[str, Any]]
    model: dict[str, Any] | None
    #: test metrics during training (``vibench run --eval-every``), or None
    curve: dict[str, Any] | None = None

    @property
    def cell(self) -> dict[str, Any]:
        """spec["cell"]: method, dataset, variant, split, seed, config, config_hash, data, cell_id."""
        return self.spec["cell"]

    @property
    def identity(self) -> Cell:
        return Cell.from_dict(self.cell)

    @property
    def method(self) -> str:
        return str(self.cell["method"])

    @property
    def dataset(self) -> str:
        return str(self.cell["dataset"])

    @property
    def variant(self) -> str | None:
        """The training variant; None for the standard training set."""
        v = self.cell.get("variant")
        return None if v in (None, STANDARD) else str(v)

    @property
    def split(self) -> int:
        return int(self.cell["split"])

    @property
    def seed(self) -> int:
        return int(self.cell["seed"])

    @property
    def config_name(self) -> str:
        return str(self.cell["config"])

    @property
    def config_hash(self) -> str:
        return str(self.cell["config_hash"])

    @property
    def data_source(self) -> str:
        """The data-source id (vibench.store.identity): synthetic-<scale>-s<seed> or real-<sha>."""
        return str(self.cell["data"])

    @property
    def config_label(self) -> str:
        return self.identity.config_label

    @property
    def data_label(self) -> str:
        return self.identity.data_label

    @property
    def init_label(self) -> str:
        """How the backbone was initialised: the spec's ``init.label`` (ImageNet name and sha256
        prefix, a file, random, or random explicitly allowed); for cells stored before the spec
        held it, the kind model.json recorded."""
        init = self.spec.get("init")
        if isinstance(init, dict) and init.get("label"):
            return str(init["label"])
        kind = ((self.model or {}).get("init") or {}).get("kind")
        return str(kind) if kind else "not recorded"

    @property
    def data_kind(self) -> str:
        """'synthetic', 'real' or 'unknown' (spec.json 'data.kind')."""
        return str((self.spec.get("data") or {}).get("kind", "unknown"))

    @property
    def commit(self) -> str | None:
        return ((self.spec.get("provenance") or {}).get("git") or {}).get("commit")

    @property
    def dirty(self) -> bool | None:
        return ((self.spec.get("provenance") or {}).get("git") or {}).get("dirty")

    @property
    def hardware(self) -> str:
        hw = (self.spec.get("provenance") or {}).get("hardware") or {}
        return str(hw.get("gpu") or hw.get("cpu") or self.spec.get("device") or "unknown")


def read_cell(path: Path) -> StoredCell:
    """Load one cell directory (spec.json, metrics/*.json, model.json), migrated and checked."""
    cd = CellDir(Path(path))
    metrics = {}
    for protocol in cd.metrics_protocols():
        doc = cd.read_metrics(protocol)
        metrics[str(doc.get("protocol", protocol))] = doc
    return StoredCell(cd.root, cd.read_spec(), metrics, cd.read_model(), cd.read_curve())


@dataclass
class StoreScan:
    """A store read by :func:`scan_store`: the usable cells and everything left out."""

    cells: list[StoredCell] = field(default_factory=list)
    damaged: list[CellCheck] = field(default_factory=list)
    incomplete: list[Path] = field(default_factory=list)
    stray: list[CellCheck] = field(default_factory=list)
    unverified: list[Path] = field(default_factory=list)

    def notes(self) -> list[str]:
        """One line per problem of a cell left out (damaged) or entry ignored (stray)."""
        lines = [f"Damaged cell (not used): {p}" for c in self.damaged for p in c.problems]
        return lines + [f"Stray entry under cells/ (ignored): {p}" for c in self.stray for p in c.problems]

    def unverified_note(self) -> list[str]:
        """A note on cells written before manifests (read, contents not verifiable), if any."""
        if not self.unverified:
            return []
        names = ", ".join(p.name for p in self.unverified[:3]) + (", ..." if len(self.unverified) > 3 else "")
        return [f"{len(self.unverified)} cell(s) written before manifests, read unverified ({names})"]


def scan_store(out: Path) -> StoreScan:
    """Every entry of ``<out>/cells``, verified (without hashing checkpoints and features, which
    no number is read from): completed intact cells are read, damaged and stray entries are
    named with their problems, cells without DONE are listed as incomplete."""
    scan = StoreScan()
    for check in check_cells(out, deep=False):
        if check.status in ("ok", "unverified"):
            scan.cells.append(read_cell(check.cell.root))
            if check.status == "unverified":
                scan.unverified.append(check.cell.root)
        elif check.status == "damaged":
            scan.damaged.append(check)
        elif check.status == "stray":
            scan.stray.append(check)
        else:
            scan.incomplete.append(check.cell.root)
    return scan


def iter_completed_cells(out: Path) -> Iterator[StoredCell]:
    """Every completed (DONE) cell of store `out`, in directory-name order, verified against its
    manifest; a damaged cell raises a VibenchError naming the file (use :func:`scan_store` to
    go on with the others)."""
    for check in check_cells(out, deep=False):
        if check.status == "damaged":
            raise VibenchError(f"{check.problems[0]} (cell {check.name} is damaged; `vibench store "
                               "verify` lists every problem, `vibench run` recomputes it)")
        if check.status in ("ok", "unverified"):
            yield read_cell(check.cell.root)


def incomplete_cells(out: Path) -> list[Path]:
    """Cell directories without DONE (interrupted or failed attempts; never read for numbers)."""
    return [cd.root for cd in iter_cell_dirs(out, done_only=False) if not cd.is_done()]


def check_store_root(out: Path) -> None:
    """A folder that exists but has no ``cells/`` is not a result store (probably a wrong path)."""
    if Path(out).exists() and not (Path(out) / "cells").is_dir():
        raise VibenchError(f"{out}: not a result store (expected a 'cells/' folder written by "
                           "`vibench run`)")


@dataclass(frozen=True)
class RankingsFile:
    """One stored ``rankings/<protocol>/trial-<t>.npz`` and the cell directory holding it."""

    cell: CellDir
    protocol: str
    trial: int
    path: Path


def find_rankings(root: Path) -> list[RankingsFile]:
    """Every rankings file below `root`: a store, one cell directory, or a ``vibench eval --out``
    directory (which has a cell directory's metrics/ and rankings/)."""
    found = []
    for p in sorted(Path(root).rglob("trial-*.npz")):
        trial = p.stem[len("trial-"):]
        if p.parent.parent.name != "rankings" or not trial.lstrip("-").isdigit():
            continue
        found.append(RankingsFile(CellDir(p.parent.parent.parent), p.parent.name, int(trial), p))
    return found
