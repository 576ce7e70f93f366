"""The runner's bridge to the training engine: config, training (resumable), the cached
feature table of a cell and the parameter/latency record."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from vibench.data.records import DatasetIndex, ImageRecord, records_sha256
from vibench.engine.api import Method
from vibench.engine.config import load_config
from vibench.engine.extract import extract_features
from vibench.engine.latency import _input_size, count_parameters, measure_latency, measure_query_latency
from vibench.engine.latency import embed_flops as latency_embed_flops
from vibench.engine.trainer import resolve_device as _resolve
from vibench.engine.trainer import train, training_costs, untrained
from vibench.errors import VibenchError
from vibench.registry import get_method_class
from vibench.io import save_npz_atomic
from vibench.metrics.pipeline import evaluate_lists

FEATURE_PREFIX = "features_"


def resolve_device(device: str) -> str:
    return str(_resolve(device))


def load_method_config(method: str, config: str, dataset: str, overrides: Sequence[str]) -> dict[str, Any]:
    return load_config(method, config, dataset=dataset, overrides=overrides)


@dataclass
class Trained:
    """A trained model plus the hooks the evaluation pipeline calls."""

    inner: Any  # vibench.engine.trainer.TrainedModel

    @property
    def method(self) -> Any:
        return self.inner.method

    @property
    def model(self) -> torch.nn.Module:
        return self.inner.model

    def refine_for(self, query: dict[str, torch.Tensor], gallery: dict[str, torch.Tensor]
                   ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None:
        """`Method.refine` bound to this model and these features, as refine_fn(distmat, excluded);
        None when the method does not override it."""
        if type(self.method).refine is Method.refine:
            return None
        return lambda distmat, excluded: self.method.refine(self.model, query, gallery, distmat, excluded)

    def evaluate_trial(self, spec: Any, lists: Any, feats: "FeatureTable", device: str) -> tuple[Any, Any]:
        """One gallery trial of a protocol scored with this model: the query and gallery rows of
        `feats`, the method's distance and refine hooks, `evaluate_lists`; returns (EvalResult,
        rankings). The one place the runner scores a trial (cells, untrained references, curves)."""
        qf = feats.select([r.path for r in lists.query])
        gf = feats.select([r.path for r in lists.gallery])
        return evaluate_lists(spec, lists, qf, gf, distance_fn=self.method.distance,
                              refine_fn=self.refine_for(qf, gf), device=device)


def train_or_load(method: str, cfg: dict[str, Any], index: DatasetIndex, split: int,
                  train_records: Sequence[ImageRecord], *, seed: int, device: str, workdir: Path,
                  root: Path | None = None,
                  on_epoch_end: Callable[[Any, dict[str, Any]], None] | None = None) -> Trained:
    """Train (resuming from `workdir`) or load the finished model stored there; `on_epoch_end`
    is the trainer's per-epoch hook (vibench.runner.curve)."""
    inner = train(method, cfg, index, split, train_records=train_records, seed=seed, device=device,
                  workdir=workdir, root=root, progress=False, on_epoch_end=on_epoch_end)
    if not inner.complete:
        raise VibenchError(f"training of {method} did not complete")
    return Trained(inner)


def stages_of(method: str, cfg: dict[str, Any], dataset: str) -> list[Any]:
    """The training stages `method` runs with the resolved `cfg` (each has ``epochs``)."""
    return get_method_class(method)(cfg, dataset).stages()


def training_record(trained: Trained) -> dict[str, Any]:
    """What the cell records about its training run: seconds per iteration, images per second,
    peak memory (overall and per stage) and the initialisation the model started from."""
    return {**training_costs(trained.inner.history), "init": trained.inner.init}


def untrained_model(method: str, cfg: dict[str, Any], dataset: str, num_classes: int, *, seed: int,
                    device: str) -> Trained:
    """The freshly initialised model, seeded as training seeds it: the learnability reference."""
    return Trained(untrained(method, cfg, dataset, num_classes, seed=seed, device=device))


class FeatureTable:
    """Named test embeddings keyed by image path (the cell's features.npz)."""

    def __init__(self, paths: Sequence[str], embeddings: dict[str, torch.Tensor]) -> None:
        self.paths = list(paths)
        self.embeddings = embeddings
        self.row = {p: i for i, p in enumerate(self.paths)}

    def select(self, paths: Sequence[str]) -> dict[str, torch.Tensor]:
        missing = [p for p in paths if p not in self.row]
        if missing:
            raise VibenchError(f"{len(missing)} listed images have no features, e.g. {missing[:3]}")
        idx = torch.as_tensor([self.row[p] for p in paths], dtype=torch.long)
        return {name: emb.index_select(0, idx) for name, emb in self.embeddings.items()}

    def save(self, path: Path, records_hash: str) -> None:
        arrays: dict[str, Any] = {"paths": np.asarray(self.paths), "records_sha256": np.asarray(records_hash)}
        for name, emb in self.embeddings.items():
            key = "features" if name == "feat" else FEATURE_PREFIX + name
            arrays[key] = emb.numpy()
        save_npz_atomic(path, **arrays)

    @classmethod
    def load(cls, path: Path) -> tuple["FeatureTable", str]:
        with np.load(path, allow_pickle=False) as z:
            paths = [str(p) for p in z["paths"]]
            emb = {"feat": torch.from_numpy(z["features"])}
            for key in z.files:
                if key.startswith(FEATURE_PREFIX):
                    emb[key[len(FEATURE_PREFIX):]] = torch.from_numpy(z[key])
            return cls(paths, emb), str(z["records_sha256"])


def extract_table(trained: Trained, records: Sequence[ImageRecord], root: Path, *, device: str) -> FeatureTable:
    """The test-set embeddings of the model as it is now (no cache)."""
    emb = extract_features(trained.method, trained.model, records, root, trained.inner.cfg, device)
    return FeatureTable([r.path for r in records], emb)


def features_for(trained: Trained, records: Sequence[ImageRecord], root: Path, *, device: str, cache: Path) -> FeatureTable:
    """The test-set embeddings, from the cell's cache when it matches the records."""
    digest = records_sha256(records)
    if cache.exists():
        table, cached_digest = FeatureTable.load(cache)
        if cached_digest == digest:
            return table
    table = extract_table(trained, records, root, device=device)
    table.save(cache, digest)
    return table


def model_stats(trained: Trained, *, device: str) -> dict[str, Any]:
    """Parameters (registered and effective) and test-time latency, measured the same way for all."""
    params = count_parameters(trained.model, trained.method)
    latency = measure_latency(trained.method, trained.model, device, warmup=3, repeats=10)
    per_query = measure_query_latency(trained.method, trained.model, device, warmup=3, repeats=10)
    latency.update({k: v for k, v in per_query.items() if k not in latency or k.startswith("ms_per_query")})
    latency["query"] = per_query
    return {"params": params, "latency": latency, "flops": embed_flops(trained),
            "init": trained.inner.init, "num_classes": trained.inner.num_classes}


def embed_flops(trained: Trained) -> dict[str, Any]:
    """FLOPs of one test-time embedding of one image (vibench.engine.latency.embed_flops)."""
    return latency_embed_flops(trained.method, trained.model, input_size=_input_size(trained.inner.cfg))
