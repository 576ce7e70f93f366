"""What a cell is: everything that changes one of its numbers.

A cell is identified by (method, dataset, training variant, split, seed, config name,
resolved-config hash, data source). The data source is the built-in synthetic generator's scale
and seed (``synthetic-<scale>-s<seed>``) or the real tree's manifest hash (``real-<sha256>``,
:meth:`vibench.data.records.DatasetIndex.manifest_hash`). Two requests that differ in any of
these are two cells, in two directories; nothing is answered from a cell made under other
settings.

Directory name (readable prefix + a short hash of the whole identity)::

    <method>__<dataset>__<variant>__split<k>__seed<s>__<config>__<data tag>__<hash8>
    agw__sysu__standard__split0__seed0__tiny__syn-tiny-s0__3f9c01ab

``<data tag>`` is ``syn-<scale>-s<seed>`` or ``real-<first 8 hex of the manifest hash>``;
``<hash8>`` is the first 8 hex digits of the sha256 of the identity (so two configs with the same
name but other values, e.g. another ``--set``, get two directories).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vibench.errors import VibenchError
from vibench.io import stable_hash

STANDARD = "standard"
UNKNOWN = "unknown"
_SLUG = re.compile(r"[^A-Za-z0-9.-]+")


def synthetic_data_id(scale: str, seed: int) -> str:
    """The data-source id of the built-in synthetic dataset at `scale`, generator seed `seed`."""
    return f"synthetic-{scale}-s{int(seed)}"


def real_data_id(manifest_hash: str) -> str:
    """The data-source id of a dataset tree: its manifest hash (record lists of every split)."""
    return f"real-{manifest_hash}"


def data_id_from_spec(data: dict[str, Any] | None) -> str:
    """The data-source id recorded in a spec's ``data`` section (used to migrate old specs)."""
    data = data or {}
    if data.get("kind") == "synthetic" and data.get("scale") is not None:
        return synthetic_data_id(str(data["scale"]), int(data.get("seed", 0)))
    if data.get("kind") == "real" and data.get("manifest_hash"):
        return real_data_id(str(data["manifest_hash"]))
    return UNKNOWN


def data_label(data_id: str) -> str:
    """Human-readable data source: 'synthetic tiny s0', 'real 1a2b3c4d' or 'unknown'."""
    if data_id.startswith("synthetic-"):
        return "synthetic " + data_id[len("synthetic-"):].replace("-", " ", 1)
    if data_id.startswith("real-"):
        return "real " + data_id[len("real-"):][:8]
    return data_id


def data_tag(data_id: str) -> str:
    """The data source as it appears in a directory name: 'syn-tiny-s0' or 'real-1a2b3c4d'."""
    if data_id.startswith("synthetic-"):
        return "syn-" + data_id[len("synthetic-"):]
    if data_id.startswith("real-"):
        return "real-" + data_id[len("real-"):][:8]
    return _slug(data_id)


def config_name(config: str | Path) -> str:
    """The config's name in a cell identity: 'tiny', 'paper', or a YAML file's stem."""
    text = str(config)
    if text.endswith((".yaml", ".yml")) or "/" in text:
        return Path(text).stem
    return text


def config_label(name: str, config_hash: str) -> str:
    """'tiny a1b2c3d4': the config name and the first 8 hex digits of its resolved hash."""
    return f"{name} {config_hash[:8]}" if config_hash else name


def _slug(text: str) -> str:
    return _SLUG.sub("_", text).strip("_") or "x"


@dataclass(frozen=True, order=True)
class Cell:
    """One trained model and everything evaluated on it (see the module docstring)."""

    method: str
    dataset: str
    variant: str
    split: int
    seed: int
    config: str
    config_hash: str
    data: str

    def __post_init__(self) -> None:
        if not self.config_hash or not self.data:
            raise VibenchError(f"cell {self.method}/{self.dataset}: the identity needs a config hash "
                               "and a data source (plan cells with vibench.runner.cells.plan_cells)")

    @property
    def identity(self) -> dict[str, Any]:
        return {"method": self.method, "dataset": self.dataset, "variant": self.variant,
                "split": self.split, "seed": self.seed, "config": self.config,
                "config_hash": self.config_hash, "data": self.data}

    @property
    def cell_id(self) -> str:
        """The directory name (module docstring)."""
        return "__".join([self.legacy_id, _slug(self.config), data_tag(self.data),
                          stable_hash(self.identity)[:8]])

    @property
    def legacy_id(self) -> str:
        """The directory name stores of schema version 1 used: only the grid position."""
        return f"{self.method}__{self.dataset}__{self.variant}__split{self.split}__seed{self.seed}"

    @property
    def config_label(self) -> str:
        return config_label(self.config, self.config_hash)

    @property
    def data_label(self) -> str:
        return data_label(self.data)

    def to_dict(self) -> dict[str, Any]:
        return {**self.identity, "cell_id": self.cell_id}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Cell":
        return cls(str(d["method"]), str(d["dataset"]), str(d.get("variant") or STANDARD),
                   int(d["split"]), int(d["seed"]), str(d["config"]), str(d["config_hash"]),
                   str(d["data"]))
