"""Method configs: ``methods/configs/<method>/{paper,tiny}.yaml`` or any YAML file, with
per-dataset overrides (the ``datasets:`` section) and dotted command-line overrides
(``train.epochs=2``). The format is documented in docs/training.md.

Resolution order (later wins): the YAML file -> ``datasets.<dataset>`` of that file -> dotted
overrides. The resolved dict (without the ``datasets`` section) is what the runner hashes.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from vibench.errors import VibenchError, did_you_mean
from vibench.io import stable_hash

CONFIG_NAMES = ("paper", "tiny")
DATASETS = ("sysu", "regdb", "llcm")

#: top-level keys a method config may use (methods add their own section named after themselves
#: or "method_options"; unknown keys are refused so a typo never passes silently)
TOP_LEVEL_KEYS = {
    "method", "description", "model", "loss", "input", "sampler", "augment", "optimizer",
    "schedule", "stages", "test", "amp", "channels_last", "num_workers", "datasets", "guesses",
    "options", "latency", "seed_offset",
}


def config_dir(method: str) -> Path:
    """``methods/configs/<method>/`` of a registered method (its class may point elsewhere)."""
    from vibench.registry import get_method_class

    cls = get_method_class(method)
    folder = getattr(cls, "config_dir", None)
    if folder is None:
        folder = Path(__file__).resolve().parents[2] / "methods" / "configs" / method
    return Path(folder)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from `path` (yaml.safe_load) or a VibenchError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise VibenchError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise VibenchError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise VibenchError(f"config file {path} must hold a mapping at top level, got {type(data).__name__}")
    return data


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; lists and scalars in `update` replace those in `base`."""
    out = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_override(cfg: dict[str, Any], item: str) -> None:
    """Apply one ``a.b.c=value`` override in place; `value` is parsed as YAML (``2``, ``[1,2]``)."""
    if "=" not in item:
        raise VibenchError(f"config override {item!r} must look like key.sub=value")
    key, raw = item.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise VibenchError(f"config override {item!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise VibenchError(f"config override {item!r}: value is not valid YAML ({exc})") from None
    node: Any = cfg
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            node = _list_item(node, part, item)
            continue
        if part not in node:
            node[part] = {}
        elif not isinstance(node[part], (dict, list)):
            raise VibenchError(f"config override {item!r}: {'.'.join(parts[: i + 1])} is not a mapping")
        node = node[part]
    last = parts[-1]
    if isinstance(node, list):
        idx = int(last) if last.lstrip("-").isdigit() else None
        if idx is None or not -len(node) <= idx < len(node):
            raise VibenchError(f"config override {item!r}: {last!r} is not an index of a {len(node)}-item list")
        node[idx] = value
    else:
        node[last] = value


def _list_item(node: list[Any], part: str, item: str) -> Any:
    if not part.lstrip("-").isdigit() or not -len(node) <= int(part) < len(node):
        raise VibenchError(f"config override {item!r}: {part!r} is not an index of a {len(node)}-item list")
    return node[int(part)]


def load_config(
    method: str,
    config: str | Path = "tiny",
    dataset: str | None = None,
    overrides: Iterable[str] = (),
) -> dict[str, Any]:
    """The resolved config of `method`: `config` is "paper", "tiny" or a YAML file path.

    `dataset` (sysu, regdb, llcm) merges the file's ``datasets.<dataset>`` section; `overrides`
    are dotted ``key=value`` strings applied last.
    """
    name = str(config)
    if name in CONFIG_NAMES:
        path = config_dir(method) / f"{name}.yaml"
    else:
        path = Path(name)
        if not path.suffix and not path.exists():
            raise VibenchError(
                f"unknown config {name!r}{did_you_mean(name, CONFIG_NAMES)}: use paper, tiny or a YAML file path"
            )
    raw = read_yaml(path)
    cfg = resolve_config(raw, dataset=dataset, overrides=overrides, source=str(path))
    if cfg.get("method", method) != method:
        raise VibenchError(f"config {path} is for method {cfg['method']!r}, not {method!r}")
    cfg["method"] = method
    return cfg


def resolve_config(
    raw: Mapping[str, Any],
    *,
    dataset: str | None = None,
    overrides: Iterable[str] = (),
    source: str = "<config>",
) -> dict[str, Any]:
    """Merge the dataset section and the overrides into `raw`; validate the top-level keys."""
    unknown = sorted(set(raw) - TOP_LEVEL_KEYS - {str(raw.get("method", ""))})
    if unknown:
        hints = "".join(did_you_mean(k, TOP_LEVEL_KEYS) for k in unknown)
        raise VibenchError(f"config {source}: unknown top-level key(s) {unknown}{hints}")
    per_dataset = raw.get("datasets") or {}
    if not isinstance(per_dataset, Mapping):
        raise VibenchError(f"config {source}: 'datasets' must map dataset names to overrides")
    for d in per_dataset:
        if d not in DATASETS:
            raise VibenchError(f"config {source}: unknown dataset {d!r} in 'datasets'{did_you_mean(str(d), DATASETS)}")
    cfg = {k: copy.deepcopy(v) for k, v in raw.items() if k != "datasets"}
    if dataset is not None:
        if dataset not in DATASETS:
            raise VibenchError(f"unknown dataset {dataset!r}{did_you_mean(dataset, DATASETS)}; known: {', '.join(DATASETS)}")
        cfg = deep_merge(cfg, per_dataset.get(dataset) or {})
        cfg["dataset"] = dataset
    for item in overrides:
        apply_override(cfg, item)
    return cfg


def config_hash(cfg: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON form of a resolved config."""
    return stable_hash(dict(cfg))


def parse_stages(cfg: Mapping[str, Any]) -> list["Stage"]:
    """The config's ``stages`` list as :class:`~vibench.engine.api.Stage` objects.

    Each stage may set name, epochs, optimizer, schedule, sampler, augment, freeze and options;
    optimizer/schedule/sampler/augment are merged over the top-level sections of the same name.
    Without a ``stages`` list there is one stage "main" whose epochs come from ``schedule.epochs``.
    """
    from vibench.engine.api import Stage

    raw_stages = cfg.get("stages")
    if raw_stages is None:
        raw_stages = [{"name": "main"}]
    if not isinstance(raw_stages, list) or not raw_stages:
        raise VibenchError("config 'stages' must be a non-empty list of mappings")
    out: list[Stage] = []
    seen: set[str] = set()
    for i, st in enumerate(raw_stages):
        if not isinstance(st, Mapping):
            raise VibenchError(f"config stages[{i}] must be a mapping, got {st!r}")
        extra = set(st) - {"name", "epochs", "optimizer", "schedule", "sampler", "augment", "freeze", "options"}
        if extra:
            raise VibenchError(f"config stages[{i}]: unknown key(s) {sorted(extra)}")
        name = str(st.get("name", f"stage{i + 1}"))
        if name in seen:
            raise VibenchError(f"config stages: duplicate stage name {name!r}")
        seen.add(name)
        sections = {}
        for sec in ("optimizer", "schedule", "sampler", "augment"):
            sections[sec] = deep_merge(cfg.get(sec) or {}, st.get(sec) or {})
        epochs = st.get("epochs", sections["schedule"].get("epochs"))
        if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 0:
            raise VibenchError(f"config stage {name!r}: epochs must be an integer >= 0, got {epochs!r}")
        freeze = st.get("freeze") or ()
        if isinstance(freeze, str):
            freeze = (freeze,)
        out.append(
            Stage(
                name=name,
                epochs=epochs,
                optimizer=sections["optimizer"],
                schedule=sections["schedule"],
                sampler=sections["sampler"],
                augment=sections["augment"],
                freeze=tuple(str(f) for f in freeze),
                options=dict(st.get("options") or {}),
            )
        )
    return out
