"""The store's schema version, the metrics-file builder, validation, and migration on read.

Schema versions:

* 1: cell directories named ``<method>__<dataset>__<variant>__split<k>__seed<s>``; ``spec.json``
  ``cell`` held only those five keys (config name, config hash and data source sat elsewhere in
  the spec, or were missing in hand-written stores); metrics ``summary`` could be empty.
* 2: the cell identity (:mod:`vibench.store.identity`) is in ``spec.json`` ``cell`` (config,
  config_hash, data) and in the directory name; every metrics file carries ``summary`` =
  :func:`vibench.store.summary.summarize_trials` of its trials.

Readers call :func:`migrate_spec` / :func:`migrate_metrics`, which bring a version-1 document
to version 2 in memory (files are not rewritten): the identity is rebuilt from the version-1
spec's ``config_name``, ``config_hash`` and ``data`` (``unknown`` where absent), and a missing
summary is recomputed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from vibench.errors import VibenchError
from vibench.store.identity import STANDARD, UNKNOWN, Cell, data_id_from_spec
from vibench.store.summary import summarize_trials

SCHEMA_VERSION = 2


def metrics_doc(spec: Any, rerank: dict[str, Any] | None) -> dict[str, Any]:
    """An empty ``metrics/<protocol>.json`` document for ProtocolSpec `spec`; the caller adds
    trial records, then :func:`finish_metrics_doc`. `rerank` is the resolved re-ranking."""
    return {"schema_version": SCHEMA_VERSION, "protocol": spec.name,
            "protocol_version": spec.version, "dataset": spec.dataset, "rule": spec.rule,
            "cmc_mode": spec.cmc, "max_rank": spec.max_rank, "rerank": rerank, "trials": {}}


def finish_metrics_doc(doc: dict[str, Any]) -> dict[str, Any]:
    """(Re)compute the summaries of `doc` and of its untrained reference from their trials."""
    doc["summary"] = summarize_trials(doc["trials"]) if doc["trials"] else {}
    if doc.get("untrained"):
        doc["untrained"]["summary"] = summarize_trials(doc["untrained"]["trials"])
    return doc


def _version(doc: dict[str, Any], path: Path) -> int:
    version = doc.get("schema_version", 1)
    if not isinstance(version, int) or version < 1:
        raise VibenchError(f"{path}: schema_version {version!r} is not a positive integer")
    if version > SCHEMA_VERSION:
        raise VibenchError(f"{path}: schema_version {version} was written by a newer vibench "
                           f"(this one reads up to {SCHEMA_VERSION}); upgrade vibench")
    return version


def migrate_spec(spec: Any, path: Path) -> dict[str, Any]:
    """Check a ``spec.json`` document and bring it to the current schema (module docstring)."""
    cell = spec.get("cell") if isinstance(spec, dict) else None
    if not isinstance(cell, dict) or not {"method", "dataset", "split", "seed"} <= set(cell):
        raise VibenchError(f"{path}: expected 'cell' with method, dataset, variant, split, seed")
    if not isinstance(cell["method"], str) or not isinstance(cell["dataset"], str):
        raise VibenchError(f"{path}: cell method and dataset must be strings")
    try:
        split, seed = int(cell["split"]), int(cell["seed"])
    except (TypeError, ValueError):
        raise VibenchError(f"{path}: cell split and seed must be integers") from None
    version = _version(spec, path)
    if version == SCHEMA_VERSION:
        if not {"config", "config_hash", "data"} <= set(cell):
            raise VibenchError(f"{path}: a version-{version} cell needs config, config_hash, data")
        return spec
    ident = Cell(cell["method"], cell["dataset"], str(cell.get("variant") or STANDARD), split, seed,
                 str(spec.get("config_name") or UNKNOWN), str(spec.get("config_hash") or UNKNOWN),
                 data_id_from_spec(spec.get("data")))
    return {**spec, "schema_version": SCHEMA_VERSION, "migrated_from": version,
            "cell": ident.to_dict()}


def migrate_metrics(doc: Any, path: Path) -> dict[str, Any]:
    """Check a ``metrics/<protocol>.json`` document (trial keys are integers, metric values are
    fractions in [0, 1]) and bring it to the current schema (module docstring)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("trials"), dict):
        raise VibenchError(f"{path}: expected a metrics file with 'protocol' and 'trials' "
                           "(docs/ARCHITECTURE.md, Result store)")
    for t, tr in doc["trials"].items():
        try:
            int(t)
        except ValueError:
            raise VibenchError(f"{path}: trial key {t!r} is not an integer") from None
        if not isinstance(tr, dict) or not isinstance(tr.get("cmc"), list) or "mAP" not in tr:
            raise VibenchError(f"{path}: trial {t} needs 'cmc' (list), 'mAP' and 'mINP'")
        for x in tr["cmc"] + [tr["mAP"], tr.get("mINP", 0.0)]:
            if not isinstance(x, (int, float)) or not (0.0 <= float(x) <= 1.0):
                raise VibenchError(f"{path}: trial {t} has {x!r}; metric values are fractions "
                                   "in [0, 1]")
    version = _version(doc, path)
    if version < SCHEMA_VERSION or not doc.get("summary"):
        doc = finish_metrics_doc({**doc, "schema_version": SCHEMA_VERSION})
    doc.setdefault("protocol", path.stem)
    return doc
