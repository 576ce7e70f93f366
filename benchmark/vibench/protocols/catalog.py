"""The protocol catalogue: every ``protocols/*.yaml`` family file, names and groups.

Groups (ARCHITECTURE.md "Protocols"): each family file is a group named after it (``sysu``,
``regdb``, ``llcm``, ``mixed``, ``unimodal``, ``imbalance``), and ``all`` is every protocol of
every family (training variants included; pass ``kind="evaluation"`` to keep only evaluations).
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from vibench.errors import VibenchError, unknown_name
from vibench.paths import PROTOCOLS_DIR
from vibench.protocols.spec import KINDS, ProtocolSpec, load_protocol_file

#: Families listed first, in this order; any other family file follows in name order.
FAMILY_ORDER: tuple[str, ...] = ("sysu", "regdb", "llcm", "mixed", "unimodal", "imbalance")
ALL_GROUP = "all"


class Catalog:
    """All protocols of one protocols directory, validated together (names unique across
    files, ``evaluate_with`` pointing at existing evaluation protocols of the same dataset)."""

    def __init__(self, directory: str | os.PathLike[str] = PROTOCOLS_DIR) -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise VibenchError(f"{self.directory}: protocols directory not found "
                               "(expected the folder holding the <family>.yaml files)")
        files = sorted(self.directory.glob("*.yaml"))
        if not files:
            raise VibenchError(f"{self.directory}: no protocol files (*.yaml) found")
        rank = {f: i for i, f in enumerate(FAMILY_ORDER)}
        files.sort(key=lambda p: (rank.get(p.stem, len(rank)), p.stem))
        self.families: dict[str, tuple[ProtocolSpec, ...]] = {}
        self.protocols: dict[str, ProtocolSpec] = {}
        for path in files:
            specs = load_protocol_file(path)
            for spec in specs:
                if spec.name in self.protocols:
                    raise VibenchError(f"{path}: protocol {spec.name!r} is already defined in "
                                       f"{self.protocols[spec.name].source}")
                if spec.name in rank or spec.name == ALL_GROUP or spec.name in (p.stem for p in files):
                    raise VibenchError(f"{path}: protocol name {spec.name!r} clashes with a group name")
                self.protocols[spec.name] = spec
            self.families[path.stem] = tuple(specs)
        for spec in self.protocols.values():
            for target in spec.evaluate_with:
                other = self.protocols.get(target)
                if other is None:
                    raise VibenchError(f"{spec.source} (protocol {spec.name!r}): evaluate_with names "
                                       f"{str(unknown_name('protocol', target, self.protocols))}")
                if other.is_training or other.dataset != spec.dataset:
                    raise VibenchError(f"{spec.source} (protocol {spec.name!r}): evaluate_with "
                                       f"{target!r} must be an evaluation protocol of {spec.dataset}")

    def groups(self) -> dict[str, tuple[str, ...]]:
        """Group name -> protocol names (families in FAMILY_ORDER, then ``all``)."""
        out = {fam: tuple(s.name for s in specs) for fam, specs in self.families.items()}
        out[ALL_GROUP] = tuple(self.protocols)
        return out

    def get(self, name: str) -> ProtocolSpec:
        spec = self.protocols.get(name)
        if spec is None:
            raise unknown_name("protocol", name, self.protocols)
        return spec

    def resolve(self, expr: str | Iterable[str], kind: str | None = None) -> list[ProtocolSpec]:
        """Protocols named by a comma-separated list (or an iterable) of protocol and group
        names, in order, without repeats; `kind` keeps only "evaluation" or "training" specs."""
        if kind is not None and kind not in KINDS:
            raise unknown_name("protocol kind", kind, KINDS)
        tokens = expr.split(",") if isinstance(expr, str) else list(expr)
        tokens = [t.strip() for t in tokens if t and t.strip()]
        if not tokens:
            raise VibenchError("no protocol named: expected protocol or group names, e.g. "
                               f"'sysu-all-single' or one of the groups {', '.join(self.groups())}")
        groups = self.groups()
        names: list[str] = []
        for token in tokens:
            if token in groups:
                names.extend(groups[token])
            elif token in self.protocols:
                names.append(token)
            else:
                raise unknown_name("protocol or group", token, [*self.protocols, *groups])
        seen: set[str] = set()
        out: list[ProtocolSpec] = []
        for n in names:
            if n not in seen:
                seen.add(n)
                spec = self.protocols[n]
                if kind is None or spec.kind == kind:
                    out.append(spec)
        return out


@lru_cache(maxsize=8)
def _catalog(directory: str) -> Catalog:
    return Catalog(directory)


def get_catalog(directory: str | os.PathLike[str] | None = None) -> Catalog:
    """The (cached) catalogue of `directory` (default: the repository's ``protocols/``)."""
    return _catalog(str(Path(directory) if directory is not None else PROTOCOLS_DIR))


def get_protocol(name: str, directory: str | os.PathLike[str] | None = None) -> ProtocolSpec:
    """The protocol called `name`; VibenchError with a did-you-mean when it is unknown."""
    return get_catalog(directory).get(name)


def list_protocols(directory: str | os.PathLike[str] | None = None) -> list[ProtocolSpec]:
    """Every protocol, families in FAMILY_ORDER, each in file order."""
    return list(get_catalog(directory).protocols.values())


def protocol_groups(directory: str | os.PathLike[str] | None = None) -> dict[str, tuple[str, ...]]:
    """Group name -> protocol names."""
    return get_catalog(directory).groups()


def resolve_protocols(expr: str | Iterable[str], directory: str | os.PathLike[str] | None = None,
                      *, kind: str | None = None) -> list[ProtocolSpec]:
    """Resolve "mixed" or "sysu-all-single,regdb-v2t" (groups and names) to specs."""
    return get_catalog(directory).resolve(expr, kind=kind)
