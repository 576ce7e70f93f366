"""Method configs: ``methods/vibench_methods/configs/<method>/{paper,tiny}.yaml`` or any YAML file, with
per-dataset overrides (the ``datasets:`` section) and dotted command-line overrides
(``train.epochs=2``). The format is documented in docs/training.md.

Resolution order (later wins): the method schema's defaults -> the YAML file ->
``datasets.<dataset>`` of that file -> dotted overrides. The result is validated against the
method's schema (:attr:`vibench.engine.api.Method.config_schema`) before anything runs; the
resolved dict (every default filled in, without the ``datasets`` section) is what the runner
stores and hashes.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import yaml

from vibench.engine.schema import deep_merge
from vibench.engine.sections import DATASETS
from vibench.errors import VibenchError, did_you_mean
from vibench.io import stable_hash
from vibench.registry import get_method_class

CONFIG_NAMES = ("paper", "tiny")


def config_dir(method: str) -> Path:
    """The folder holding a registered method's configs (its class's ``config_dir``; the
    built-in ones are ``methods/vibench_methods/configs/<method>/``)."""
    cls = get_method_class(method)
    folder = getattr(cls, "config_dir", None)
    if folder is None:
        raise VibenchError(f"method {method!r} ({cls.__module__}.{cls.__qualname__}) sets no config_dir: "
                           "a Method class names the folder holding its tiny.yaml and paper.yaml")
    return Path(folder)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from `path` (yaml.safe_load) or a VibenchError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise VibenchError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.constructor.ConstructorError as exc:
        raise VibenchError(f"config file {path}: {_tag_refused(exc)}") from None
    except yaml.YAMLError as exc:
        raise VibenchError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise VibenchError(f"config file {path} must hold a mapping at top level, got {type(data).__name__}")
    return data


def _tag_refused(exc: yaml.constructor.ConstructorError) -> str:
    """The message for a YAML tag safe_load will not build (``!!python/object`` and the like)."""
    mark = f" (line {exc.problem_mark.line + 1})" if exc.problem_mark is not None else ""
    return (f"refused YAML tag{mark}: {exc.problem}; configs hold plain values only "
            "(mappings, lists, numbers, strings, booleans, null), never Python objects")


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
    except yaml.constructor.ConstructorError as exc:
        raise VibenchError(f"config override {item!r}: {_tag_refused(exc)}") from None
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
    overrides = list(overrides)
    cfg = resolve_config(raw, dataset=dataset, overrides=overrides, source=str(path))
    if cfg.get("method", method) != method:
        raise VibenchError(f"config {path} is for method {cfg['method']!r}, not {method!r}")
    cfg["method"] = method
    return validate_config(method, cfg, source=str(path), overrides=overrides)


def validate_config(method: str, cfg: Mapping[str, Any], *, source: str, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """`cfg` checked against `method`'s schema and resolved (defaults filled in); an error names
    `source` and every bad key path, and the ``--set`` item for keys an override set."""
    return get_method_class(method).resolve_config(cfg, source, _override_origin(overrides))


def _override_origin(overrides: Iterable[str]) -> Callable[[str], str]:
    """path -> the ``--set`` item that set it (or a key above or below it), or ""."""
    keys = []
    for item in overrides:
        parts = item.split("=", 1)[0].strip().split(".")
        keys.append(("".join(f"[{p}]" if p.lstrip("-").isdigit() else f".{p}" for p in parts if p).lstrip("."), item))

    def origin(path: str) -> str:
        for key, item in reversed(keys):
            if path == key or path.startswith(key + ".") or path.startswith(key + "[") or key.startswith(path + "."):
                return f"--set {item}"
        return ""

    return origin


def resolve_config(
    raw: Mapping[str, Any],
    *,
    dataset: str | None = None,
    overrides: Iterable[str] = (),
    source: str = "<config>",
) -> dict[str, Any]:
    """Merge the dataset section and the overrides into `raw` (validation against the method's
    schema follows in :func:`validate_config`)."""
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


#: keys configs written before the typed schema (resolved-config format 1) may hold and that the
#: schema no longer accepts: they were never read (latency, seed_offset, guesses) or duplicated
#: input.size (test.size, model.img_size)
_RETIRED_TOP_LEVEL = ("latency", "seed_offset", "guesses")


def upgrade_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """A config stored by an earlier vibench (e.g. in a model.pt) in today's form: the retired keys
    dropped, ``test.size`` and ``model.img_size`` folded into ``input.size`` (refused when they
    disagree with it, since the old code then trained and tested at different sizes), and
    ``model.init`` stated (``file`` where ``model.weights`` was set, else ``random``)."""
    out = copy.deepcopy(dict(cfg))
    for key in _RETIRED_TOP_LEVEL:
        out.pop(key, None)
    model = out.get("model")
    if isinstance(model, dict) and "init" not in model and ("backbone" in model or "size" in model):
        # before model.init, a weights path meant "load this file" and null meant random
        model["init"] = "file" if model.get("weights") else "random"
    size = (out.get("input") or {}).get("size")
    for section, key in (("test", "size"), ("model", "img_size")):
        block = out.get(section)
        if isinstance(block, dict) and key in block:
            old = block.pop(key)
            if old is not None and size is not None and list(old) != list(size):
                raise VibenchError(f"stored config: {section}.{key} {list(old)} differs from input.size {list(size)}; "
                                   "the image size is now input.size alone")
    return out


def config_hash(cfg: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON form of a resolved config."""
    return stable_hash(dict(cfg))


