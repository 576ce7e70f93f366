"""The result store: one directory per cell, every file written atomically, ``DONE`` last.

Layout (docs/ARCHITECTURE.md, "Result store")::

    <out>/cells/<cell_id>/spec.json, features.npz, metrics/<protocol>.json,
                          rankings/<protocol>/trial-<t>.npz, model.json, timings.json, DONE
    <out>/cells/<cell_id>/train/       the engine's work directory: last.pt (resume), model.pt
    <out>/cells/<cell_id>/error.txt    traceback of the last failure (removed on success)

A metrics file is the completion marker of one protocol (its rankings are written before it);
``DONE`` lists the protocols the cell completed and is rewritten when protocols are added.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from vibench.errors import VibenchError
from vibench.io import read_json, write_json_atomic, write_text_atomic
from vibench.runner.cells import Cell

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class CellDir:
    root: Path

    @classmethod
    def of(cls, out: Path, cell: Cell) -> "CellDir":
        return cls(Path(out) / "cells" / cell.cell_id)

    # ---- paths ---------------------------------------------------------------------------
    @property
    def spec_path(self) -> Path:
        return self.root / "spec.json"

    @property
    def done_path(self) -> Path:
        return self.root / "DONE"

    @property
    def features_path(self) -> Path:
        return self.root / "features.npz"

    @property
    def train_dir(self) -> Path:
        return self.root / "train"

    @property
    def error_path(self) -> Path:
        return self.root / "error.txt"

    def metrics_path(self, protocol: str) -> Path:
        return self.root / "metrics" / f"{protocol}.json"

    def rankings_path(self, protocol: str, trial: int) -> Path:
        return self.root / "rankings" / protocol / f"trial-{trial}.npz"

    # ---- state ---------------------------------------------------------------------------
    def is_done(self) -> bool:
        return self.done_path.exists()

    def done_protocols(self) -> set[str]:
        if not self.done_path.exists():
            return set()
        try:
            return set(json.loads(self.done_path.read_text())["protocols"])
        except (ValueError, KeyError):
            return set()

    def completed_trials(self, protocol: str) -> set[int]:
        path = self.metrics_path(protocol)
        if not path.exists():
            return set()
        return {int(t) for t in read_json(path)["trials"]}

    def mark_done(self, protocols: list[str]) -> None:
        write_text_atomic(self.done_path, json.dumps({"protocols": sorted(protocols)}) + "\n")

    def clear(self) -> None:
        if self.root.exists():
            shutil.rmtree(self.root)

    def write_error(self, text: str) -> None:
        write_text_atomic(self.error_path, text)

    def clear_error(self) -> None:
        if self.error_path.exists():
            self.error_path.unlink()

    def write_spec(self, spec: dict[str, Any]) -> None:
        """Freeze the spec; a cell produced with another config hash is refused, not mixed."""
        if self.spec_path.exists():
            old = read_json(self.spec_path)
            if old.get("config_hash") != spec.get("config_hash") or old.get("data", {}).get("manifest_hash") != spec.get("data", {}).get("manifest_hash"):
                raise VibenchError(
                    f"{self.spec_path} was produced with another config or dataset "
                    f"(config hash {old.get('config_hash', '?')[:12]} vs {spec.get('config_hash', '?')[:12]}, "
                    f"manifest {str(old.get('data', {}).get('manifest_hash', '?'))[:12]} vs "
                    f"{str(spec.get('data', {}).get('manifest_hash', '?'))[:12]}); "
                    "use --overwrite always or another --out"
                )
            merged = dict(old)
            protocols = dict(old.get("protocols", {}))
            protocols.update(spec.get("protocols", {}))
            merged["protocols"] = protocols
            spec = merged
        write_json_atomic(self.spec_path, spec)


def iter_cell_dirs(out: Path, *, done_only: bool = True) -> Iterator[CellDir]:
    cells = Path(out) / "cells"
    if not cells.is_dir():
        return
    for path in sorted(cells.iterdir()):
        if path.is_dir() and (not done_only or (path / "DONE").exists()):
            yield CellDir(path)

