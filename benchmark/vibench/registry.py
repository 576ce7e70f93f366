"""The method registry: the ``vibench.methods`` entry-point group and the
``@register_method`` decorator its classes use. The built-in methods (package
``vibench_methods``) register through the same entry-point group as any external package, so an
external package adds a method without touching vibench.

An external package declares, in its own pyproject.toml::

    [project.entry-points."vibench.methods"]
    mymethod = "my_package.my_module:MyMethod"

and ``vibench run --methods mymethod`` finds it.
"""
from __future__ import annotations

import importlib
import os
from importlib import metadata
from typing import TYPE_CHECKING, Callable, TypeVar

from vibench.engine.api import Method
from vibench.errors import VibenchError, unknown_name

if TYPE_CHECKING:
    from vibench.engine.api import Method

M = TypeVar("M", bound=type)

_METHODS: dict[str, type["Method"]] = {}
_loaded = False

ENTRY_POINT_GROUP = "vibench.methods"
#: comma-separated modules imported at registry load (registers methods without packaging)
PLUGINS_ENV = "VIBENCH_PLUGINS"


def register_method(name: str | None = None) -> Callable[[M], M]:
    """Class decorator: register a :class:`~vibench.engine.api.Method` subclass under `name`."""

    def decorator(cls: M) -> M:
        if not (isinstance(cls, type) and issubclass(cls, Method)):
            raise TypeError(f"@register_method expects a Method subclass, got {cls!r}")
        key = name or cls.name
        if not key or not key.replace("_", "").replace("-", "").isalnum() or key != key.lower():
            raise VibenchError(f"invalid method name {key!r}: use lower-case letters, digits, '-' or '_'")
        existing = _METHODS.get(key)
        if existing is not None and existing is not cls:
            raise VibenchError(
                f"method name {key!r} is already registered by {existing.__module__}.{existing.__qualname__}; "
                f"refusing the duplicate from {cls.__module__}.{cls.__qualname__}"
            )
        cls.name = key
        _METHODS[key] = cls
        return cls

    return decorator


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        cls = ep.load()
        if _METHODS.get(ep.name) is not cls:
            register_method(ep.name)(cls)
    for module in os.environ.get(PLUGINS_ENV, "").split(","):
        if module.strip():
            load_plugin(module.strip())


def load_plugin(module: str) -> None:
    """Import a module that registers methods with @register_method (``--plugins`` / $VIBENCH_PLUGINS)."""
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise VibenchError(f"cannot import plugin module {module!r}: {exc}") from None


def available_methods() -> list[str]:
    _load_all()
    return sorted(_METHODS)


def get_method_class(name: str) -> type["Method"]:
    _load_all()
    try:
        return _METHODS[name]
    except KeyError:
        raise unknown_name("method", name, _METHODS) from None


def resolve_methods(selection: str) -> list[str]:
    """'all' or a comma-separated list of names -> validated method names, in the given order."""
    names = available_methods() if selection.strip() == "all" else [s.strip() for s in selection.split(",") if s.strip()]
    for n in names:
        get_method_class(n)
    return names
