"""The method registry: duplicates refused, did-you-mean, entry-point plug-ins."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from vibench import registry
from vibench.engine.api import Method
from vibench.errors import VibenchError


class _Plugin(Method):
    def build_model(self, num_classes):
        raise NotImplementedError

    def training_step(self, model, batch, state):
        raise NotImplementedError

    def embed(self, model, images, modality):
        raise NotImplementedError


def test_builtin_methods_and_did_you_mean():
    names = registry.available_methods()
    assert {"agw", "pmt"} <= set(names)
    assert registry.get_method_class("agw").name == "agw"
    with pytest.raises(VibenchError, match="did you mean 'agw'"):
        registry.get_method_class("agww")


def test_duplicate_name_is_refused(monkeypatch):
    monkeypatch.setattr(registry, "_METHODS", dict(registry._METHODS))

    class Other(_Plugin):
        pass

    with pytest.raises(VibenchError, match="already registered"):
        registry.register_method("agw")(Other)
    with pytest.raises(VibenchError, match="invalid method name"):
        registry.register_method("Bad Name")(type("X", (_Plugin,), {}))


def test_entry_point_plugin_is_loaded(monkeypatch):
    monkeypatch.setattr(registry, "_METHODS", {})
    monkeypatch.setattr(registry, "_loaded", False)
    plugin = type("ExtMethod", (_Plugin,), {})
    ep = SimpleNamespace(name="extmethod", load=lambda: plugin)

    def fake_entry_points(group=None):
        return [ep] if group == registry.ENTRY_POINT_GROUP else []

    monkeypatch.setattr(registry.metadata, "entry_points", fake_entry_points)
    assert "extmethod" in registry.available_methods()
    assert registry.get_method_class("extmethod") is plugin
    assert registry.resolve_methods("extmethod") == ["extmethod"]
