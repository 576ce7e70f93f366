"""Typed, validated method configs: the machinery (the shared sections are in
:mod:`vibench.engine.sections`, each method's schema next to its code).

A schema is a frozen dataclass whose fields are typed (``int``, ``float``, ``bool``, ``str``,
``Literal[...]``, ``X | None``, ``tuple[X, ...]``, ``tuple[X, Y]``, ``dict[str, X]``, another
schema, or ``Any`` for free-form values) and carry their default. :func:`validate` turns a raw
mapping (a YAML file after the dataset section and ``--set`` overrides) into an instance or
raises one :class:`~vibench.errors.VibenchError` listing every problem with its dotted key path:
unknown keys (with a did-you-mean), wrong types and values outside a field's range (see
:func:`option`). :func:`to_dict` gives the resolved plain dict, every default filled in, which is
what the runner stores and hashes: two configs that resolve to the same values hash the same.
"""
from __future__ import annotations

import copy
import dataclasses
import types
import typing
from typing import Any, Callable, Iterable, Iterator, Literal, Mapping, TypeVar, Union

from vibench.errors import VibenchError, did_you_mean

T = TypeVar("T")

#: a cross-field problem: (dotted key path relative to the section, message)
Problem = tuple[str, str]


def option(
    default: Any = dataclasses.MISSING,
    *,
    gt: float | None = None,
    ge: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    doc: str = "",
    factory: Callable[[], Any] | None = None,
) -> Any:
    """A schema field with its default and range: ``gt``/``ge``/``lt``/``le`` bound every number
    the value holds (a scalar, or each item of a list or size)."""
    meta = {"gt": gt, "ge": ge, "le": le, "lt": lt, "doc": doc}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    if isinstance(default, (list, dict, set)):
        raise TypeError("mutable schema defaults need factory=")
    return dataclasses.field(default=default, metadata=meta)


class Section:
    """Base of every schema dataclass. Override :meth:`problems` for checks that involve more
    than one field (they run only when every field has a valid type)."""

    #: key -> message for a key that moved elsewhere (its error names the new place)
    moved: typing.ClassVar[dict[str, str]] = {}

    def problems(self) -> Iterable[Problem]:
        return ()


class _Errors:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.items.append((path, message))


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is type(None):
        return "null"
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_type_name(args[0])}"
        return f"a list of {len(args)} ({', '.join(_type_name(a) for a in args)})"
    if origin is dict:
        return f"a mapping to {_type_name(typing.get_args(tp)[1])}"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def _bounds(value: Any, meta: Mapping[str, Any], path: str, errors: _Errors) -> None:
    nums = [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else (
        [v for v in value if isinstance(v, (int, float)) and not isinstance(v, bool)] if isinstance(value, (list, tuple)) else [])
    for v in nums:
        for key, ok, word in (("gt", lambda a, b: a > b, ">"), ("ge", lambda a, b: a >= b, ">="),
                              ("lt", lambda a, b: a < b, "<"), ("le", lambda a, b: a <= b, "<=")):
            bound = meta.get(key)
            if bound is not None and not ok(v, bound):
                errors.add(path, f"must be {word} {bound}, got {v!r}")
                return


def _convert(tp: Any, value: Any, path: str, errors: _Errors) -> Any:
    """`value` as type `tp` (tuples for lists, schema instances for mappings); on a mismatch the
    problem goes to `errors` and the raw value comes back."""
    if tp is Any:
        return value
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for alt in (a for a in args if a is not type(None)):
            trial = _Errors()
            out = _convert(alt, value, path, trial)
            if not trial.items:
                return out
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1 and not (value is None):
            return _convert(inner[0], value, path, errors)
        errors.add(path, f"must be {_type_name(tp)}, got {value!r}")
        return value
    if origin is Literal:
        if value in args and type(value) in {type(a) for a in args}:
            return value
        errors.add(path, f"must be one of {', '.join(repr(a) for a in args)}, got {value!r}"
                   f"{did_you_mean(str(value), [str(a) for a in args])}")
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        errors.add(path, f"must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            errors.add(path, f"must be an integer, got {value!r} (write {int(value)})")
        else:
            errors.add(path, f"must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        errors.add(path, f"must be a number, got {value!r}")
        return value
    if tp is str:
        if isinstance(value, str):
            return value
        errors.add(path, f"must be a string, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            errors.add(path, f"must be {_type_name(tp)}, got {value!r}")
            return value
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{path}[{i}]", errors) for i, v in enumerate(value))
        if len(value) != len(args):
            errors.add(path, f"must be {_type_name(tp)}, got {len(value)} item(s): {list(value)!r}")
            return value
        return tuple(_convert(a, v, f"{path}[{i}]", errors) for i, (a, v) in enumerate(zip(args, value)))
    if origin is dict:
        if not isinstance(value, Mapping):
            errors.add(path, f"must be {_type_name(tp)}, got {value!r}")
            return value
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                errors.add(path, f"keys must be strings, got {k!r}")
                continue
            out[k] = _convert(args[1], v, _join(path, k), errors)
        return out
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path, errors)
    raise TypeError(f"schema type {tp!r} at {path} is not supported")


def _build(cls: type[T], data: Any, path: str, errors: _Errors) -> T:
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        errors.add(path or "(top level)", f"must be a mapping, got {data!r}")
        return data  # type: ignore[return-value]
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    moved = getattr(cls, "moved", {})
    for key in data:
        if key not in fields:
            where = _join(path, key)
            if key in moved:
                errors.add(where, f"is not a config key: {moved[key]}")
            else:
                errors.add(where, f"unknown key{did_you_mean(str(key), list(fields))}"
                           f" (known in {path or 'the top level'}: {', '.join(sorted(fields))})")
    before = len(errors.items)
    kwargs = {}
    for name, f in fields.items():
        if name not in data:
            continue
        where = _join(path, name)
        value = _convert(hints[name], data[name], where, errors)
        _bounds(value, f.metadata, where, errors)
        kwargs[name] = value
    if len(errors.items) > before or any(k not in fields for k in data):
        return data  # type: ignore[return-value]
    try:
        obj = cls(**kwargs)
    except TypeError as exc:  # a required field is missing
        missing = [n for n, f in fields.items() if n not in data and f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING]  # type: ignore[misc]
        for n in missing:
            errors.add(_join(path, n), "is required")
        if not missing:
            errors.add(path or "(top level)", str(exc))
        return data  # type: ignore[return-value]
    if isinstance(obj, Section):
        for sub, message in obj.problems():
            errors.add(_join(path, sub), message)
    return obj


def validate(cls: type[T], data: Mapping[str, Any], source: str, origin: Callable[[str], str] | None = None) -> T:
    """`data` as an instance of schema `cls`, or a VibenchError naming `source` and every bad key.

    `origin(path)` may name where a key's value came from (e.g. a ``--set`` item); its text
    replaces `source` in that key's line."""
    errors = _Errors()
    obj = _build(cls, data, "", errors)
    raise_problems(source, errors.items, origin)
    return obj


def raise_problems(source: str, problems: Iterable[Problem], origin: Callable[[str], str] | None = None) -> None:
    """One VibenchError listing `problems` (dotted path, message) of config `source`, if any."""
    lines = []
    for path, message in problems:
        where = origin(path) if origin else ""
        lines.append(f"  {path}: {message}" + (f"  [from {where}]" if where else ""))
    if lines:
        raise VibenchError(f"config {source}: {len(lines)} problem(s)\n" + "\n".join(lines))


def to_dict(obj: Any) -> Any:
    """The plain resolved form of a schema instance: dicts, lists and scalars (JSON-ready)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, Mapping):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def key_paths(cls: type, prefix: str = "") -> Iterator[str]:
    """Every dotted key a schema accepts (nested schemas expanded), for docs and tests."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        path = _join(prefix, f.name)
        tp = hints[f.name]
        inner = [a for a in typing.get_args(tp) if dataclasses.is_dataclass(a)] if typing.get_origin(tp) in (Union, types.UnionType) else []
        if dataclasses.is_dataclass(tp):
            yield from key_paths(tp, path)
        elif inner:
            yield from key_paths(inner[0], path)
        else:
            yield path


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; lists and scalars in `update` replace those in `base`."""
    out = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
