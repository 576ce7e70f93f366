"""Metrics engine: exact CMC / mAP / mINP (docs/metrics.md#reference-arithmetic), exclusion rules,
re-ranking, raw rankings and the features -> metrics pipeline. See docs/metrics.md.

The public entry point is ``vibench.evaluate`` (= ``vibench.metrics.evaluate.evaluate``); the
name ``vibench.metrics.evaluate`` is the submodule (``vibench/__init__.py`` re-exports from it).
"""
from __future__ import annotations

from vibench.metrics.evaluate import EvalResult, evaluate_features
from vibench.metrics.rules import exclusion_mask, rule_names

__all__ = ["EvalResult", "evaluate_features", "exclusion_mask", "rule_names"]
