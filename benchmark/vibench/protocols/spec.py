"""Protocol specifications: the frozen dataclasses read from ``protocols/*.yaml``.

One YAML file per family (``protocols/<family>.yaml``):

```yaml
family: sysu              # must equal the file name stem
schema_version: 1
defaults: {...}           # optional: keys merged (shallowly) into every protocol entry
protocols:
  - name: sysu-all-single
    ...                   # the ProtocolSpec fields, see docs/protocols.md
```

Every problem found while reading a file raises :class:`VibenchError` naming the file, the
protocol entry and the field, with what was expected. Files are read with ``yaml.safe_load``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import yaml

from vibench.data.records import MODALITIES
from vibench.errors import VibenchError, did_you_mean

SCHEMA_VERSION = 1

#: Exclusion rules of ``vibench.evaluate``: the standard ones (issue 3; docs/metrics.md#exclusion-rules) and the mixed-/uni-modal ones defined in docs/protocols.md.
STANDARD_RULES: tuple[str, ...] = ("sysu", "llcm", "regdb", "market", "none")
MIXED_RULES: tuple[str, ...] = ("mix", "mix-cam", "mix-cam-id", "mix-id", "mix-p", "unimodal")
RULES: tuple[str, ...] = STANDARD_RULES + MIXED_RULES
#: Rules that need the modality arrays and/or the query's own gallery position.
RULES_NEEDING_MODALITIES: frozenset[str] = frozenset({"mix-id", "mix-p"})

CMC_MODES: tuple[str, ...] = ("unique", "image")
KINDS: tuple[str, ...] = ("evaluation", "training")
SAMPLERS: tuple[str, ...] = ("all", "single-shot", "multi-shot", "official")
ORDERS: tuple[str, ...] = ("grouped", "index")
TRIAL_SOURCES: tuple[str, ...] = ("seed", "split")
RERANK_METHODS: tuple[str, ...] = ("k-reciprocal", "aim")

#: Cameras of each dataset per modality (docs/datasets.md#layouts).
DATASET_CAMERAS: Mapping[str, Mapping[str, tuple[int, ...]]] = MappingProxyType({
    "sysu": MappingProxyType({"visible": (1, 2, 4, 5), "infrared": (3, 6)}),
    "regdb": MappingProxyType({"visible": (1,), "infrared": (2,)}),
    "llcm": MappingProxyType({"visible": tuple(range(1, 10)), "infrared": tuple(range(1, 10))}),
})

_FIELDS_COMMON = {"name", "version", "dataset", "description", "kind", "flags", "notes"}
_FIELDS_EVAL = {"query", "gallery", "sampler", "trials", "trial_source", "rule", "cmc",
                "max_rank", "rerank"}
_FIELDS_TRAIN = {"reduction", "evaluate_with"}
_ALL_FIELDS = _FIELDS_COMMON | _FIELDS_EVAL | _FIELDS_TRAIN


class FrozenMapping(dict):  # type: ignore[type-arg]
    """A read-only, hashable dict (keeps ProtocolSpec hashable; used for `rerank`). A dict
    subclass so ``json.dumps`` writes it as an object."""

    def _readonly(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("protocol specs are read-only")

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = __ior__ = _readonly  # type: ignore[assignment]

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items())))

    def __repr__(self) -> str:
        return f"FrozenMapping({dict(self)!r})"


@dataclass(frozen=True)
class ImageSetSpec:
    """A query set or gallery pool: the test images of `modalities`, each from its cameras.

    `modality_cams` pairs each modality (in visiting order) with its cameras (in visiting order);
    YAML gives ``cams`` as one list for every listed modality, or as a mapping modality -> list.
    order "grouped" (AGW, docs/protocols.md#samplers-and-list-order): pids ascending, then for each modality in the
    listed order each of its cameras in the listed order, then the files of that (pid, modality,
    camera) folder sorted by path. order "index": the dataset index's own order (RegDB's files).
    """

    modality_cams: tuple[tuple[str, tuple[int, ...]], ...]
    order: str = "grouped"

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(m for m, _ in self.modality_cams)

    @property
    def modality(self) -> str:
        """The set's modality, or "mixed" when it spans both."""
        return self.modalities[0] if len(self.modality_cams) == 1 else "mixed"

    @property
    def cams(self) -> tuple[int, ...]:
        """Every camera number of the set, first-listed order, without repeats."""
        out: list[int] = []
        for _, cams in self.modality_cams:
            out.extend(c for c in cams if c not in out)
        return tuple(out)

    def contains(self, modality: str, cam: int) -> bool:
        return any(m == modality and cam in cams for m, cams in self.modality_cams)

    def to_dict(self) -> dict[str, Any]:
        return {"modalities": list(self.modalities),
                "cams": {m: list(c) for m, c in self.modality_cams}, "order": self.order}


@dataclass(frozen=True)
class SamplerSpec:
    """How one side is drawn per trial (docs/protocols.md#samplers-and-list-order).

    kind "all": every image of the set; "single-shot": AGW Sampler A, one ``random.choice`` per
    folder; "multi-shot": ``random.Random(trial).sample(sorted_files, min(shots, n))`` per folder;
    "official": the first `shots` numbers of row `trial` of ``rand_perm_cam.mat`` (Sampler B).
    `applies_to` names the side that is sampled ("gallery"; "query" only for DEEN's transposed
    test.py); the other side always takes all of its images.
    """

    kind: str
    shots: int = 1
    applies_to: str = "gallery"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "shots": self.shots, "applies_to": self.applies_to}


@dataclass(frozen=True)
class ReductionSpec:
    """Imbalance training variant (BIT supplementary §8): remove round-half-up(fraction * n) of
    each identity's `modality` training images, seeded."""

    modality: str
    fraction: float

    def to_dict(self) -> dict[str, Any]:
        return {"modality": self.modality, "fraction": self.fraction}


@dataclass(frozen=True)
class ProtocolSpec:
    """One protocol, as declared in ``protocols/<family>.yaml`` (ARCHITECTURE.md "Protocols").

    Evaluation protocols have query, gallery, sampler, trials, rule, cmc and max_rank; training
    variants (kind "training") have `reduction` and `evaluate_with` instead.
    """

    name: str
    family: str
    version: int
    dataset: str
    description: str
    kind: str
    query: ImageSetSpec | None = None
    gallery: ImageSetSpec | None = None
    sampler: SamplerSpec | None = None
    trials: tuple[int, ...] = ()
    trial_source: str = "seed"
    rule: str | None = None
    cmc: str | None = None
    max_rank: int | None = None
    rerank: Mapping[str, Any] | None = None
    flags: tuple[str, ...] = ()
    notes: str = ""
    reduction: ReductionSpec | None = None
    evaluate_with: tuple[str, ...] = ()
    source: str = field(default="", compare=False)

    @property
    def is_training(self) -> bool:
        return self.kind == "training"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready metadata (used by ``vibench protocols show`` and result stores)."""
        return {
            "name": self.name, "family": self.family, "version": self.version,
            "dataset": self.dataset, "description": self.description, "kind": self.kind,
            "query": self.query.to_dict() if self.query else None,
            "gallery": self.gallery.to_dict() if self.gallery else None,
            "sampler": self.sampler.to_dict() if self.sampler else None,
            "trials": list(self.trials), "trial_source": self.trial_source,
            "rule": self.rule, "cmc": self.cmc, "max_rank": self.max_rank,
            "rerank": dict(self.rerank) if self.rerank is not None else None,
            "flags": list(self.flags), "notes": self.notes,
            "reduction": self.reduction.to_dict() if self.reduction else None,
            "evaluate_with": list(self.evaluate_with),
        }


# --------------------------------------------------------------------------- parsing


class _Ctx:
    """Error context: the file and the protocol entry being read."""

    def __init__(self, path: Path, where: str = "") -> None:
        self.path, self.where = path, where

    def at(self, where: str) -> "_Ctx":
        return _Ctx(self.path, where)

    def error(self, message: str) -> VibenchError:
        loc = f" (protocol {self.where!r})" if self.where else ""
        return VibenchError(f"{self.path}{loc}: {message}")


def _choice(ctx: _Ctx, key: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        hint = did_you_mean(value, choices) if isinstance(value, str) else ""
        raise ctx.error(f"{key}: {value!r} is not one of {', '.join(choices)}{hint}")
    return value


def _int(ctx: _Ctx, key: str, value: Any, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ctx.error(f"{key}: expected an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ctx.error(f"{key}: expected an integer >= {minimum}, got {value}")
    return value


def _int_list(ctx: _Ctx, key: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, list) or not value:
        raise ctx.error(f"{key}: expected a non-empty list of integers, got {value!r}")
    out = tuple(_int(ctx, key, v) for v in value)
    if len(set(out)) != len(out):
        raise ctx.error(f"{key}: duplicate entries in {list(out)}")
    return out


def _str(ctx: _Ctx, key: str, value: Any, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not empty and not value.strip()):
        raise ctx.error(f"{key}: expected a {'' if empty else 'non-empty '}string, got {value!r}")
    return value


def _mapping(ctx: _Ctx, key: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ctx.error(f"{key}: expected a mapping, got {value!r}")
    return value


def _image_set(ctx: _Ctx, key: str, value: Any, dataset: str) -> ImageSetSpec:
    m = _mapping(ctx, key, value)
    unknown = sorted(set(m) - {"modalities", "cams", "order"})
    if unknown:
        raise ctx.error(f"{key}: unknown field(s) {unknown}; expected modalities, cams, order")
    for required in ("modalities", "cams"):
        if required not in m:
            raise ctx.error(f"{key}: missing field {required!r}")
    mods = m["modalities"]
    if not isinstance(mods, list) or not mods:
        raise ctx.error(f"{key}.modalities: expected a non-empty list of {list(MODALITIES)}, got {mods!r}")
    modalities = tuple(_choice(ctx, f"{key}.modalities", v, MODALITIES) for v in mods)
    if len(set(modalities)) != len(modalities):
        raise ctx.error(f"{key}.modalities: duplicate entries in {list(modalities)}")
    raw = m["cams"]
    available = DATASET_CAMERAS[dataset]
    if isinstance(raw, dict):
        extra = sorted(set(raw) - set(modalities), key=str)
        missing = [mod for mod in modalities if mod not in raw]
        if extra or missing:
            raise ctx.error(f"{key}.cams: expected one camera list per modality {list(modalities)}"
                            f" (missing {missing}, unexpected {extra})")
        per_mod = {mod: _int_list(ctx, f"{key}.cams.{mod}", raw[mod]) for mod in modalities}
        for mod, cams in per_mod.items():
            bad = [c for c in cams if c not in available[mod]]
            if bad:
                raise ctx.error(f"{key}.cams.{mod}: camera(s) {bad} do not exist for {dataset} "
                                f"{mod} (cameras {list(available[mod])})")
    else:
        cams = _int_list(ctx, f"{key}.cams", raw)
        for cam in cams:
            if not any(cam in available[mod] for mod in modalities):
                raise ctx.error(f"{key}.cams: camera {cam} does not exist for {dataset} in modalities "
                                f"{list(modalities)} (cameras: "
                                + ", ".join(f"{mod} {list(available[mod])}" for mod in modalities) + ")")
        per_mod = {mod: tuple(c for c in cams if c in available[mod]) for mod in modalities}
        for mod, cams_m in per_mod.items():
            if not cams_m:
                raise ctx.error(f"{key}.cams: none of {list(cams)} is a {dataset} {mod} camera "
                                f"(cameras {list(available[mod])})")
    order = _choice(ctx, f"{key}.order", m.get("order", "grouped"), ORDERS)
    return ImageSetSpec(tuple((mod, per_mod[mod]) for mod in modalities), order)


def _sampler(ctx: _Ctx, value: Any, dataset: str) -> SamplerSpec:
    if isinstance(value, str):
        value = {"kind": value}
    m = _mapping(ctx, "sampler", value)
    unknown = sorted(set(m) - {"kind", "shots", "applies_to"})
    if unknown:
        raise ctx.error(f"sampler: unknown field(s) {unknown}; expected kind, shots, applies_to")
    if "kind" not in m:
        raise ctx.error("sampler: missing field 'kind'")
    kind = _choice(ctx, "sampler.kind", m["kind"], SAMPLERS)
    default_shots = {"all": 0, "single-shot": 1, "multi-shot": 10, "official": 1}[kind]
    shots = _int(ctx, "sampler.shots", m.get("shots", default_shots), minimum=0)
    if kind == "all" and shots != 0:
        raise ctx.error(f"sampler.shots: sampler 'all' takes every image; shots must be 0 or absent, got {shots}")
    if kind == "single-shot" and shots != 1:
        raise ctx.error(f"sampler.shots: single-shot takes 1 image per folder, got {shots}")
    if kind in ("multi-shot", "official") and shots < 1:
        raise ctx.error(f"sampler.shots: expected >= 1 for {kind}, got {shots}")
    if kind == "official" and dataset != "sysu":
        raise ctx.error(f"sampler.kind: 'official' reads SYSU-MM01's rand_perm_cam.mat; dataset is {dataset!r}")
    applies_to = _choice(ctx, "sampler.applies_to", m.get("applies_to", "gallery"), ("gallery", "query"))
    return SamplerSpec(kind, shots, applies_to)


def _rerank(ctx: _Ctx, value: Any) -> Mapping[str, Any] | None:
    if value is None:
        return None
    m = _mapping(ctx, "rerank", value)
    if "method" not in m:
        raise ctx.error(f"rerank: missing field 'method' (one of {', '.join(RERANK_METHODS)})")
    _choice(ctx, "rerank.method", m["method"], RERANK_METHODS)
    for k, v in m.items():
        if k != "method" and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise ctx.error(f"rerank.{k}: expected a number, got {v!r}")
    return FrozenMapping(m)


def _flags(ctx: _Ctx, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ctx.error(f"flags: expected a list of strings, got {value!r}")
    return tuple(value)


def parse_protocol(entry: Mapping[str, Any], family: str, ctx: _Ctx) -> ProtocolSpec:
    """Validate one merged protocol entry into a :class:`ProtocolSpec`."""
    unknown = sorted(set(entry) - _ALL_FIELDS)
    if unknown:
        hints = "".join(did_you_mean(u, _ALL_FIELDS) for u in unknown)
        raise ctx.error(f"unknown field(s) {unknown}{hints}; expected some of {sorted(_ALL_FIELDS)}")
    for required in ("version", "dataset", "description", "kind"):
        if required not in entry:
            raise ctx.error(f"missing field {required!r}")
    name = ctx.where
    version = _int(ctx, "version", entry["version"], minimum=1)
    dataset = _choice(ctx, "dataset", entry["dataset"], tuple(DATASET_CAMERAS))
    description = _str(ctx, "description", entry["description"])
    kind = _choice(ctx, "kind", entry["kind"], KINDS)
    flags = _flags(ctx, entry.get("flags"))
    notes = _str(ctx, "notes", entry.get("notes", ""), empty=True)
    common = dict(name=name, family=family, version=version, dataset=dataset,
                  description=description, kind=kind, flags=flags, notes=notes.strip(),
                  source=str(ctx.path))
    if kind == "training":
        stray = sorted(set(entry) & _FIELDS_EVAL)
        if stray:
            raise ctx.error(f"training variants take reduction and evaluate_with, not {stray}")
        for required in ("reduction", "evaluate_with"):
            if required not in entry:
                raise ctx.error(f"missing field {required!r} (kind: training)")
        red = _mapping(ctx, "reduction", entry["reduction"])
        unknown = sorted(set(red) - {"modality", "fraction"})
        if unknown or "modality" not in red or "fraction" not in red:
            raise ctx.error(f"reduction: expected exactly the fields modality and fraction, got {sorted(red)}")
        modality = _choice(ctx, "reduction.modality", red["modality"], MODALITIES)
        fraction = red["fraction"]
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
            raise ctx.error(f"reduction.fraction: expected a number in (0, 1), got {fraction!r}")
        ev = entry["evaluate_with"]
        if not isinstance(ev, list) or not ev or not all(isinstance(v, str) for v in ev):
            raise ctx.error(f"evaluate_with: expected a non-empty list of protocol names, got {ev!r}")
        return ProtocolSpec(**common, reduction=ReductionSpec(modality, float(fraction)),
                            evaluate_with=tuple(ev))
    stray = sorted(set(entry) & _FIELDS_TRAIN)
    if stray:
        raise ctx.error(f"evaluation protocols do not take {stray} (only kind: training does)")
    for required in ("query", "gallery", "sampler", "trials", "rule", "cmc", "max_rank"):
        if required not in entry:
            raise ctx.error(f"missing field {required!r}")
    query = _image_set(ctx, "query", entry["query"], dataset)
    gallery = _image_set(ctx, "gallery", entry["gallery"], dataset)
    sampler = _sampler(ctx, entry["sampler"], dataset)
    sampled = query if sampler.applies_to == "query" else gallery
    if sampler.kind != "all" and sampled.order != "grouped":
        raise ctx.error(f"{sampler.applies_to}.order: a sampled side is drawn folder by folder "
                        f"in the 'grouped' order, got {sampled.order!r}")
    trials = _int_list(ctx, "trials", entry["trials"])
    trial_source = _choice(ctx, "trial_source", entry.get("trial_source", "seed"), TRIAL_SOURCES)
    if trial_source == "split" and sampler.kind != "all":
        raise ctx.error("trial_source 'split' (RegDB split files) takes sampler 'all'")
    if sampler.kind == "all" and trial_source == "seed" and len(trials) != 1:
        raise ctx.error(f"sampler 'all' draws nothing, so seeded trials repeat one list: use one trial, got {list(trials)}")
    rule = _choice(ctx, "rule", entry["rule"], RULES)
    cmc = _choice(ctx, "cmc", entry["cmc"], CMC_MODES)
    max_rank = _int(ctx, "max_rank", entry["max_rank"], minimum=1)
    rerank = _rerank(ctx, entry.get("rerank"))
    return ProtocolSpec(**common, query=query, gallery=gallery, sampler=sampler, trials=trials,
                        trial_source=trial_source, rule=rule, cmc=cmc, max_rank=max_rank,
                        rerank=rerank)


def load_protocol_file(path: str | os.PathLike[str]) -> list[ProtocolSpec]:
    """Read and validate one family file; VibenchError naming the file on any problem."""
    path = Path(path)
    ctx = _Ctx(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ctx.error(f"cannot read the protocol file ({exc.strerror})") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ctx.error(f"not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise ctx.error("expected a mapping with keys family, schema_version, protocols (and optional defaults)")
    unknown = sorted(set(doc) - {"family", "schema_version", "defaults", "protocols", "description"})
    if unknown:
        raise ctx.error(f"unknown top-level key(s) {unknown}; expected family, schema_version, "
                        "description, defaults, protocols")
    family = _str(ctx, "family", doc.get("family"))
    if family != path.stem:
        raise ctx.error(f"family: {family!r} must equal the file name stem {path.stem!r}")
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise ctx.error(f"schema_version: expected {SCHEMA_VERSION}, got {doc.get('schema_version')!r}")
    defaults = doc.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise ctx.error(f"defaults: expected a mapping, got {defaults!r}")
    if "name" in defaults:
        raise ctx.error("defaults: 'name' cannot have a default")
    entries = doc.get("protocols")
    if not isinstance(entries, list) or not entries:
        raise ctx.error("protocols: expected a non-empty list of protocol entries")
    specs: list[ProtocolSpec] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ctx.error(f"protocols[{i}]: expected a mapping, got {entry!r}")
        name = entry.get("name")
        if not isinstance(name, str) or not name or name != name.strip().lower() or " " in name or "," in name:
            raise ctx.error(f"protocols[{i}].name: expected a lower-case name without spaces or commas, got {name!r}")
        if name in seen:
            raise ctx.error(f"protocols[{i}]: duplicate protocol name {name!r}")
        seen.add(name)
        merged = {**defaults, **entry}
        merged.pop("name")
        specs.append(parse_protocol(merged, family, ctx.at(name)))
    return specs
