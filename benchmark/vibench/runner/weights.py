"""Which weight files a run gives its backbones, and the initialisation each cell records.

``vibench run --weights resnet50=/a.pth --weights vit_base=/b.pth`` gives each method the file of
its own backbone (``model.backbone`` / ``model.size``), so one ``--suite paper`` run serves the
ResNet-50 and the ViT-B/16 methods; ``--weights-dir DIR`` points every ``model.init: imagenet``
backbone at its known file name in DIR. Both become a ``model.weights=PATH`` override of the
cells concerned (part of their resolved config and its hash). :func:`planned_init` applies the
random-initialisation rule (:func:`vibench.engine.pretrained.check_random_init`) and locates and
verifies the files before the first cell starts; the runner stores its record in every cell's spec.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from vibench.engine.config import CONFIG_NAMES, config_dir
from vibench.engine.pretrained import KNOWN_WEIGHTS, check_random_init, init_label, init_spec, resolve_init
from vibench.errors import VibenchError, did_you_mean


@dataclass
class WeightChoices:
    """Weight files given on the command line: backbone name -> file, and a folder of known files.
    `seen` collects the backbones of the configs it was asked about (for :meth:`check_used`)."""

    files: tuple[tuple[str, str], ...] = ()
    folder: str | None = None
    seen: set[str] = field(default_factory=set)

    @classmethod
    def parse(cls, items: Iterable[str] = (), folder: str | Path | None = None) -> "WeightChoices":
        """From ``--weights NAME=PATH`` items (repeatable) and ``--weights-dir DIR``."""
        files: dict[str, str] = {}
        for item in items:
            name, sep, path = item.partition("=")
            name, path = name.strip(), path.strip()
            if not sep or not name or not path:
                raise VibenchError(f"--weights {item!r}: expected BACKBONE=PATH, e.g. resnet50=/data/resnet50-0676ba61.pth "
                                   f"(backbones with known ImageNet weights: {', '.join(sorted(KNOWN_WEIGHTS))})")
            if name in files and files[name] != path:
                raise VibenchError(f"--weights names two files for {name}: {files[name]} and {path}")
            file = Path(path).expanduser()
            if not file.is_file():
                raise VibenchError(f"--weights {item}: {file} is not a file")
            files[name] = str(file.resolve())
        if folder is not None and not Path(folder).expanduser().is_dir():
            raise VibenchError(f"--weights-dir {folder}: not a directory")
        return cls(tuple(sorted(files.items())), str(Path(folder).expanduser().resolve()) if folder else None)

    def __bool__(self) -> bool:
        return bool(self.files or self.folder)

    def overrides_for(self, cfg: Mapping[str, Any]) -> tuple[str, ...]:
        """The ``model.weights=PATH`` override for a resolved config whose backbone was given a file
        (only for ``model.init`` imagenet or file; a random-init config keeps no weights)."""
        spec = init_spec(cfg)
        if spec is not None:
            self.seen.add(spec.arch)
        if spec is None or spec.kind == "random":
            return ()
        path = dict(self.files).get(spec.arch)
        if path is None and self.folder and spec.kind == "imagenet" and spec.arch in KNOWN_WEIGHTS:
            candidate = Path(self.folder) / KNOWN_WEIGHTS[spec.arch].file
            if not candidate.is_file():
                raise VibenchError(f"--weights-dir {self.folder} holds no {KNOWN_WEIGHTS[spec.arch].file} "
                                   f"(the ImageNet weights of {spec.arch}, {KNOWN_WEIGHTS[spec.arch].name})")
            path = str(candidate)
        return (f"model.weights={json.dumps(path)}",) if path else ()

    def check_used(self) -> None:
        """Every ``--weights`` name must be the backbone of some planned cell's config."""
        seen = sorted(self.seen)
        for name, _ in self.files:
            if name not in seen:
                raise VibenchError(f"--weights {name}=...: no selected method uses backbone {name!r}"
                                   f"{did_you_mean(name, seen)} (the selection's backbones: {', '.join(seen) or 'none'})")


def config_source(method: str, config: str) -> str:
    """The file a config name stands for (``paper`` -> the method's paper.yaml)."""
    return str(config_dir(method) / f"{config}.yaml") if config in CONFIG_NAMES else str(config)


def is_paper_config(method: str, config: str) -> bool:
    """True for the method's ``paper`` config, by name or by its file path."""
    if config == "paper":
        return True
    path = Path(config).expanduser()
    return path.suffix in (".yaml", ".yml") and path.is_file() and \
        path.resolve() == (config_dir(method) / "paper.yaml").resolve()


def planned_init(method: str, config: str, cfg: Mapping[str, Any], overrides: Sequence[str],
                 allow_random_init: bool, *, locate: bool = True) -> dict[str, Any]:
    """The initialisation record of a cell, as stored in its spec: the random-init rule applied
    (a refusal is a VibenchError), the weight file located (fetched once) and verified, and a
    ``label`` for reports. With ``locate=False`` (``--dry-run``) only the rule is applied and
    the record names what would be loaded."""
    allowed = check_random_init(method, config, config_source(method, config), cfg, overrides,
                                paper=is_paper_config(method, config), allow=allow_random_init)
    spec = init_spec(cfg)
    if spec is None:
        record: dict[str, Any] = {"kind": "not declared by the method"}
    elif locate or spec.kind == "random":
        record = resolve_init(spec)
    else:
        record = {"kind": spec.kind, "arch": spec.arch, "file": spec.weights}
    if allowed:
        record["allowed"] = allowed
    record["label"] = init_label(record)
    return record
