"""Fidelity cards: how closely a method's implementation follows its paper.

Each method's ``metafile.yaml`` holds a ``fidelity:`` list, one item per component, loss term and
recipe item (batch composition, augmentation, optimiser, schedule, initialisation, test feature)::

    - item: "PedMix: region-wise patch mixing of a visible/infrared pair"
      kind: component            # component | loss | recipe
      paper: "§III-B, Eq. 1-3"   # where the paper states it; "not stated" when it is silent
      code: "vibench_methods/mixing/pedmix.py:pedmix"   # vibench_methods/... or vibench/...[:symbol]
      config: [tmpa.mixing.pedmix.ratios]               # optional: keys of the paper config
      status: as_written         # as_written | official_code | guessed | deviates
      why: "..."                 # required unless as_written

and an optional ``variants:`` list ({name, config, what}) naming released-code behaviours that are
kept as non-default variants (`config`: ``--set`` items or a YAML file beside the metafile).

:func:`read_card` parses and checks a card: statuses and kinds from the fixed sets, a reason for
every item that is not as written, the code file (and symbol) present, every config key present
in the method's resolved paper config. ``vibench methods show NAME`` prints a card and the report
renders all of them (docs/methods.md#fidelity-cards).
"""
from __future__ import annotations

import ast
import functools
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from vibench.engine.config import config_dir, load_config, read_yaml
from vibench.errors import VibenchError, did_you_mean
from vibench.registry import get_method_class

#: status -> how the report and `vibench methods show` name it
STATUSES: dict[str, str] = {
    "as_written": "as written",
    "official_code": "from the official code",
    "guessed": "guessed",
    "deviates": "deviates",
}
KINDS = ("component", "loss", "recipe")
_ITEM_KEYS = {"item", "kind", "paper", "code", "config", "status", "why"}
_VARIANT_KEYS = {"name", "config", "what"}


@dataclass(frozen=True)
class CardItem:
    """One line of a fidelity card (module docstring)."""

    item: str
    kind: str
    paper: str
    code: str
    status: str
    why: str = ""
    config: tuple[str, ...] = ()


@dataclass(frozen=True)
class Variant:
    """A named non-default variant: `config` (``--set`` items or a YAML file) and what it changes."""

    name: str
    config: tuple[str, ...]
    what: str


@dataclass(frozen=True)
class FidelityCard:
    method: str
    source: str
    items: tuple[CardItem, ...]
    variants: tuple[Variant, ...] = ()

    def counts(self) -> dict[str, int]:
        """Items per status, every status present (in :data:`STATUSES` order)."""
        return {s: sum(1 for i in self.items if i.status == s) for s in STATUSES}

    def summary(self) -> str:
        """'23 items: 12 as written, 3 from the official code, 6 guessed, 2 deviates'."""
        parts = [f"{n} {STATUSES[s]}" for s, n in self.counts().items() if n]
        return f"{len(self.items)} items: " + ", ".join(parts)


def _text(value: Any, where: str, key: str, *, required: bool = True) -> str:
    if value is None or value == "":
        if required:
            raise VibenchError(f"{where}: '{key}' is missing (a non-empty string)")
        return ""
    if not isinstance(value, str):
        raise VibenchError(f"{where}: '{key}' must be a string, got {type(value).__name__} {value!r}")
    return value.strip()


def _strings(value: Any, where: str, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise VibenchError(f"{where}: '{key}' must be a string or a list of strings, got {value!r}")


def _choice(value: Any, where: str, key: str, choices: Any) -> str:
    text = _text(value, where, key)
    if text not in choices:
        raise VibenchError(f"{where}: {key} {text!r} is not one of {', '.join(choices)}{did_you_mean(text, choices)}")
    return text


def parse_card(method: str, data: Mapping[str, Any], source: str) -> FidelityCard:
    """The card in a metafile's parsed YAML `data`; a VibenchError names `source`, the item and
    the key for every malformed entry (structure only: see :func:`card_problems` for the checks
    against the code and the config)."""
    raw = data.get("fidelity")
    if not isinstance(raw, list) or not raw:
        raise VibenchError(f"{source}: 'fidelity' must be a non-empty list of items (docs/methods.md#fidelity-cards)")
    items = []
    for n, entry in enumerate(raw, 1):
        where = f"{source}: fidelity item {n}"
        if not isinstance(entry, Mapping):
            raise VibenchError(f"{where} must be a mapping, got {entry!r}")
        if isinstance(entry.get("item"), str):
            where += f" ({entry['item'][:40]!r})"
        unknown = sorted(set(entry) - _ITEM_KEYS)
        if unknown:
            raise VibenchError(f"{where}: unknown key {unknown[0]!r}{did_you_mean(unknown[0], _ITEM_KEYS)}; "
                               f"known: {', '.join(sorted(_ITEM_KEYS))}")
        status = _choice(entry.get("status"), where, "status", STATUSES)
        why = _text(entry.get("why"), where, "why", required=False)
        if status != "as_written" and not why:
            raise VibenchError(f"{where}: status {status!r} needs a 'why' (what was guessed, what the "
                               "official code does, or why vibench deviates)")
        items.append(CardItem(
            item=_text(entry.get("item"), where, "item"),
            kind=_choice(entry.get("kind"), where, "kind", KINDS),
            paper=_text(entry.get("paper"), where, "paper"),
            code=_text(entry.get("code"), where, "code"),
            status=status, why=why, config=_strings(entry.get("config"), where, "config")))
    variants = []
    raw_variants = data.get("variants") or []
    if not isinstance(raw_variants, list):
        raise VibenchError(f"{source}: 'variants' must be a list of {{name, config, what}}")
    for n, entry in enumerate(raw_variants, 1):
        where = f"{source}: variant {n}"
        if not isinstance(entry, Mapping) or set(entry) - _VARIANT_KEYS:
            raise VibenchError(f"{where} must be a mapping with keys name, config, what; got {entry!r}")
        variants.append(Variant(_text(entry.get("name"), where, "name"),
                                _strings(entry.get("config"), where, "config"),
                                _text(entry.get("what"), where, "what")))
    return FidelityCard(method, source, tuple(items), tuple(variants))


@functools.lru_cache(maxsize=None)
def _symbols(path: Path) -> frozenset[str]:
    """Names of the functions, classes and methods defined in a Python file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return frozenset(n.name for n in ast.walk(tree)
                     if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)))


def _has_key(cfg: Any, dotted: str) -> bool:
    node = cfg
    for part in dotted.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


def card_problems(card: FidelityCard, roots: Path | Sequence[Path], paper_configs: list[Mapping[str, Any]],
                  folder: Path | None = None) -> list[str]:
    """What in `card` does not match the code and the configs: a code file that exists under none
    of `roots` (the method's source root, and the engine's for shared parts such as
    augmentations) or escapes them, a symbol not defined in it, a config key absent from every
    resolved paper config in `paper_configs`, a variant's YAML file missing from `folder`."""
    problems = []
    bases = [r.resolve() for r in ([roots] if isinstance(roots, Path) else roots)]
    for n, it in enumerate(card.items, 1):
        where = f"{card.source}: fidelity item {n} ({it.item[:40]!r})"
        rel, _, symbol = it.code.partition(":")
        inside = [(b / rel).resolve() for b in bases if (b / rel).resolve().is_relative_to(b)]
        found = [p for p in inside if p.is_file()]
        path = found[0] if found else None
        if not inside:
            problems.append(f"{where}: code {rel!r} is outside the source roots {', '.join(map(str, bases))}")
        elif path is None:
            problems.append(f"{where}: code file {rel!r} does not exist under {', '.join(map(str, bases))}")
        elif symbol and path.suffix == ".py" and symbol.split(".")[-1] not in _symbols(path):
            problems.append(f"{where}: {rel} defines no {symbol!r}")
        for key in it.config:
            if not any(_has_key(cfg, key) for cfg in paper_configs):
                problems.append(f"{where}: config key {key!r} is not in the paper config")
    for v in card.variants:
        for item in v.config:
            if item.endswith((".yaml", ".yml")):
                if folder is None or not (folder / item).is_file():
                    problems.append(f"{card.source}: variant {v.name!r}: config file {item!r} does not exist"
                                    f"{'' if folder is None else f' in {folder}'}")
            elif "=" not in item:
                problems.append(f"{card.source}: variant {v.name!r}: config {item!r} is neither a "
                                "key=value override nor a YAML file")
            elif not any(_has_key(cfg, item.split("=", 1)[0].strip()) for cfg in paper_configs):
                problems.append(f"{card.source}: variant {v.name!r}: key {item.split('=', 1)[0]!r} "
                                "is not in the paper config")
    return problems


def source_roots(method: str) -> list[Path]:
    """Where a card's code paths are looked up: the folder holding the top-level package of
    `method`'s class (``vibench_methods/...``), then the one holding ``vibench`` (``vibench/...``)."""
    top = get_method_class(method).__module__.split(".")[0]
    roots = [Path(sys.modules[top].__file__ or "").resolve().parent.parent]
    engine = Path(sys.modules["vibench"].__file__ or "").resolve().parent.parent
    return roots + ([engine] if engine not in roots else [])


def read_card(method: str, *, check: bool = True) -> FidelityCard:
    """`method`'s fidelity card from its metafile; with `check`, any problem from
    :func:`card_problems` (checked against the paper config of every dataset) is an error."""
    folder = config_dir(method)
    path = folder / "metafile.yaml"
    card = parse_card(method, read_yaml(path), str(path))
    if check:
        configs = [load_config(method, "paper", dataset=d) for d in ("sysu", "regdb", "llcm")]
        problems = card_problems(card, source_roots(method), configs, folder)
        for v in card.variants:  # every variant resolves to a valid config
            overrides = [c for c in v.config if "=" in c]
            files = [c for c in v.config if c.endswith((".yaml", ".yml")) and (folder / c).is_file()]
            try:
                for f in files or ["paper"]:
                    load_config(method, folder / f if f != "paper" else f, dataset="sysu", overrides=overrides)
            except VibenchError as exc:
                problems.append(f"{path}: variant {v.name!r} does not resolve: {exc}")
        if problems:
            raise VibenchError(f"fidelity card of {method} has {len(problems)} problem(s):\n  "
                               + "\n  ".join(problems))
    return card


def card_rows(card: FidelityCard) -> list[dict[str, str]]:
    """The card as plain rows (JSON output, report tables), in the metafile's order."""
    return [{"item": i.item, "kind": i.kind, "paper": i.paper, "status": i.status,
             "status_text": STATUSES[i.status], "why": i.why, "code": i.code,
             "config": ", ".join(i.config)} for i in card.items]
