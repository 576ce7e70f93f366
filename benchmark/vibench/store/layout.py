"""One directory per cell, every file written atomically, ``DONE`` last.

Layout (docs/ARCHITECTURE.md, "Result store")::

    <out>/cells/<cell_id>/spec.json, features.npz, metrics/<protocol>.json,
                          rankings/<protocol>/trial-<t>.npz, model.json, timings.json, DONE
    <out>/cells/<cell_id>/train/       the engine's work directory: last.pt (resume), model.pt
    <out>/cells/<cell_id>/error.txt    traceback of the last failure (removed on success)

A metrics file is the completion marker of one protocol (its rankings are written before it);
``DONE`` lists the protocols the cell completed and the manifest (size, sha256) of every file
(:mod:`vibench.store.manifest`); it is rewritten when protocols are added.
``vibench eval --out DIR`` writes the same ``metrics/`` and ``rankings/`` below DIR.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from vibench.errors import VibenchError
from vibench.io import read_json, write_json_atomic, write_text_atomic
from vibench.store.identity import Cell
from vibench.store.manifest import build_manifest
from vibench.store.format import migrate_metrics, migrate_spec


def read_json_file(path: Path, what: str) -> Any:
    """JSON from `path`; unreadable or invalid files raise VibenchError naming the file."""
    try:
        return read_json(path)
    except json.JSONDecodeError as exc:
        raise VibenchError(f"{path}: not valid JSON ({exc.msg}); expected the {what}") from exc
    except OSError as exc:
        raise VibenchError(f"{path}: cannot read ({exc.strerror}); expected the {what}") from exc


@dataclass(frozen=True)
class CellDir:
    root: Path

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
    def untrained_features_path(self) -> Path:
        return self.root / "features_untrained.npz"

    @property
    def train_dir(self) -> Path:
        return self.root / "train"

    @property
    def error_path(self) -> Path:
        return self.root / "error.txt"

    @property
    def model_path(self) -> Path:
        return self.root / "model.json"

    @property
    def timings_path(self) -> Path:
        return self.root / "timings.json"

    @property
    def curve_path(self) -> Path:
        """Test metrics during training (``vibench run --eval-every``; vibench.runner.curve)."""
        return self.root / "curve.json"

    def metrics_path(self, protocol: str) -> Path:
        return self.root / "metrics" / f"{protocol}.json"

    def rankings_path(self, protocol: str, trial: int) -> Path:
        return self.root / "rankings" / protocol / f"trial-{trial}.npz"

    # ---- readers -------------------------------------------------------------------------
    def is_done(self) -> bool:
        return self.done_path.exists()

    def done_protocols(self) -> set[str]:
        if not self.done_path.exists():
            return set()
        try:
            return set(json.loads(self.done_path.read_text())["protocols"])
        except (ValueError, KeyError, TypeError):
            return set()

    def read_spec(self) -> dict[str, Any]:
        """spec.json, migrated to the current schema."""
        return migrate_spec(read_json_file(self.spec_path, "cell spec (spec.json)"), self.spec_path)

    def read_metrics(self, protocol: str) -> dict[str, Any] | None:
        """metrics/<protocol>.json, checked and migrated; None when the protocol is not done."""
        path = self.metrics_path(protocol)
        if not path.is_file():
            return None
        return migrate_metrics(read_json_file(path, "protocol metrics file"), path)

    def read_curve(self) -> dict[str, Any] | None:
        if not self.curve_path.exists():
            return None
        curve = read_json_file(self.curve_path, "training curve (curve.json)")
        if not isinstance(curve, dict) or not isinstance(curve.get("points"), list):
            raise VibenchError(f"{self.curve_path}: expected a mapping with a 'points' list")
        return curve

    def metrics_protocols(self) -> list[str]:
        return sorted(p.stem for p in (self.root / "metrics").glob("*.json"))

    def read_model(self) -> dict[str, Any] | None:
        if not self.model_path.exists():
            return None
        model = read_json_file(self.model_path, "model statistics")
        if not isinstance(model, dict):
            raise VibenchError(f"{self.model_path}: expected a mapping with 'params' and 'latency'")
        return model

    def completed_trials(self, protocol: str) -> set[int]:
        doc = self.read_metrics(protocol)
        return set() if doc is None else {int(t) for t in doc["trials"]}

    def has_output(self) -> bool:
        """True once the cell produced anything: weights, a checkpoint, features or metrics."""
        return any(p.exists() for p in (self.train_dir / "model.pt", self.train_dir / "last.pt",
                                        self.features_path)) or bool(self.metrics_protocols())

    # ---- writers -------------------------------------------------------------------------
    def mark_done(self, protocols: list[str]) -> None:
        """Write ``DONE`` last: the completed protocols and the manifest (size and sha256) of
        every file the cell holds now (:mod:`vibench.store.manifest`)."""
        doc = {"protocols": sorted(protocols), "manifest": build_manifest(self.root)}
        write_text_atomic(self.done_path, json.dumps(doc, indent=1, sort_keys=True) + "\n")

    def clear(self) -> None:
        if self.root.exists():
            shutil.rmtree(self.root)

    def write_error(self, text: str) -> None:
        write_text_atomic(self.error_path, text)

    def clear_error(self) -> None:
        if self.error_path.exists():
            self.error_path.unlink()

    def write_metrics(self, doc: dict[str, Any]) -> None:
        write_json_atomic(self.metrics_path(doc["protocol"]), doc)

    def write_rankings(self, protocol: str, trial: int, rankings: Any) -> None:
        # lazy: it imports torch; the store stays torch-free (report, spawned workers)
        from vibench.metrics.rankings import save_rankings

        save_rankings(self.rankings_path(protocol, trial), rankings)

    def write_curve(self, curve: dict[str, Any]) -> None:
        write_json_atomic(self.curve_path, curve)

    def write_model(self, stats: dict[str, Any]) -> None:
        write_json_atomic(self.model_path, stats)

    def append_timings(self, timings: dict[str, float], device: str,
                       training: dict[str, Any] | None = None) -> None:
        """timings.json: one entry of seconds per phase for every (resumed) run of the cell, and
        `training`: the training run's seconds per iteration, images per second and peak memory
        (vibench.engine.trainer.training_costs, measured when the model was trained)."""
        old = read_json_file(self.timings_path, "timings") if self.timings_path.exists() else {}
        doc: dict[str, Any] = {"runs": list(old.get("runs", [])) + [timings], "device": device}
        if training is not None or "training" in old:
            doc["training"] = training if training is not None else old["training"]
        write_json_atomic(self.timings_path, doc)

    def read_timings(self) -> dict[str, Any] | None:
        """timings.json, or None when the cell has none yet."""
        return read_json_file(self.timings_path, "timings") if self.timings_path.exists() else None

    def write_spec(self, spec: dict[str, Any]) -> None:
        """Freeze the spec. A spec of another identity is refused once the cell produced
        anything (never mixed); an attempt that failed before producing anything does not
        freeze the cell. Protocols are merged into the frozen spec as they are added."""
        if self.spec_path.exists():
            try:
                old = self.read_spec()
            except VibenchError:
                old = None
            same = old is not None and Cell.from_dict(old["cell"]) == Cell.from_dict(spec["cell"])
            if same:
                protocols = dict(old.get("protocols", {}))
                protocols.update(spec.get("protocols", {}))
                spec = {**old, "protocols": protocols}
            elif self.has_output():
                raise VibenchError(
                    f"{self.spec_path} belongs to another cell ({(old or {}).get('cell')}) than "
                    f"{spec['cell']}; use another --out or --overwrite always")
        write_json_atomic(self.spec_path, spec)


def open_cell(out: Path, cell: Cell) -> CellDir:
    """The directory of `cell` in store `out`. A schema-1 directory (named by the grid position
    only) whose migrated identity is exactly `cell` is renamed to the current name first, so an
    old store is extended instead of recomputed; any other schema-1 directory is left alone."""
    cd = CellDir(Path(out) / "cells" / cell.cell_id)
    legacy = CellDir(Path(out) / "cells" / cell.legacy_id)
    if not cd.root.exists() and legacy.spec_path.is_file():
        try:
            spec = legacy.read_spec()
        except VibenchError:
            return cd
        if spec.get("migrated_from") and Cell.from_dict(spec["cell"]) == cell:
            os.replace(legacy.root, cd.root)
            write_json_atomic(cd.spec_path, spec)
    return cd


def iter_cell_dirs(out: Path, *, done_only: bool = True) -> Iterator[CellDir]:
    """The cell directories of store `out` in name order (only completed ones by default)."""
    cells = Path(out) / "cells"
    if not cells.is_dir():
        return
    for path in sorted(cells.iterdir()):
        if path.is_dir() and (not done_only or (path / "DONE").exists()):
            yield CellDir(path)
