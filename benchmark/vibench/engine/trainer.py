"""The training loop shared by every method: :func:`train` and :func:`load_trained`.

``train`` builds the method's model, runs its stages (each: optimiser, schedule, sampler and
augmentations from config, frozen prefixes), and after every epoch writes ``last.pt`` (model,
optimiser, epoch, stage, RNG states, history) atomically into the work directory plus a
``train_log.jsonl`` line per epoch (losses, lr, seconds, images/s). When the work directory holds
``last.pt`` from the same run (same method, config hash, seed and training-record hash) training
resumes from it and ends with bit-identical weights on CPU; when it holds ``model.pt`` the
trained model is loaded and nothing is trained.

Method state that must survive a resume (memory banks, centres) lives in model buffers.
"""
from __future__ import annotations

import functools
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from vibench.data.records import DatasetIndex, ImageRecord, records_sha256
from vibench.engine.api import Method, Stage, StepState
from vibench.engine.augment import build_views, to_tensor_batch
from vibench.engine.batch_sampler import CrossModalSampler
from vibench.engine.checkpoint import get_rng_state, load_checkpoint, save_checkpoint, seed_everything, set_rng_state
from vibench.engine.config import config_hash, upgrade_config
from vibench.engine.images import load_images
from vibench.engine.optim import build_optimizer, build_schedule
from vibench.engine.peak_memory import read_peak, reset_peak
from vibench.engine.sections import input_settings
from vibench.errors import VibenchError
from vibench.io import write_text_atomic
from vibench.registry import get_method_class

FINAL_NAME = "model.pt"
STATE_NAME = "last.pt"
LOG_NAME = "train_log.jsonl"
CHECKPOINT_VERSION = 1


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """"auto" -> cuda when available, else cpu; "cuda" without CUDA is a VibenchError."""
    d = str(device)
    if d == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if d.startswith("cuda") and not torch.cuda.is_available():
        raise VibenchError("device 'cuda' requested but CUDA is not available (use --device cpu or auto)")
    try:
        return torch.device(d)
    except RuntimeError:
        raise VibenchError(f"unknown device {d!r}: use auto, cpu, cuda or cuda:N") from None


@dataclass
class TrainedModel:
    """A trained (or loaded) model with what the runner needs to extract, evaluate and record."""

    method: Method
    model: nn.Module
    cfg: dict[str, Any]
    num_classes: int
    label_map: dict[int, int]
    checkpoint: Path | None
    init: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    train_seconds: float = 0.0
    resumed: bool = False
    complete: bool = True
    skipped_ids: int = 0


def _init_info(model: nn.Module) -> dict[str, Any]:
    info = getattr(model, "init_info", None)
    return dict(info) if isinstance(info, Mapping) else {"kind": "random"}


def label_map_for(records: Sequence[ImageRecord]) -> dict[int, int]:
    """Dataset pid -> training label 0..C-1 (sorted pids of the full training split)."""
    return {pid: i for i, pid in enumerate(sorted({r.pid for r in records}))}


def _fingerprint(method: str, cfg: Mapping[str, Any], seed: int, records: Sequence[ImageRecord], num_classes: int) -> dict[str, Any]:
    return {
        "method": method,
        "config_hash": config_hash(cfg),
        "seed": int(seed),
        "train_records_sha256": records_sha256(records),
        "num_classes": int(num_classes),
        "version": CHECKPOINT_VERSION,
    }


def _apply_freeze(model: nn.Module, base_trainable: Mapping[str, bool], freeze: Sequence[str]) -> None:
    names = [n for n, _ in model.named_parameters()]
    for p in freeze:
        if not any(n == p or n.startswith(p + ".") for n in names):
            raise VibenchError(f"stage freeze prefix {p!r} matches no parameter of the model")
    for n, param in model.named_parameters():
        frozen = any(n == p or n.startswith(p + ".") for p in freeze)
        param.requires_grad_(base_trainable[n] and not frozen)


#: the last element of the generator key of a `Method.extra_views` draw; config views use their
#: view number (1 for ``augment.<modality>_extra_view``), so the two never share a stream
HOOK_VIEW_TAG = 0x7E


class _EpochBatches(torch.utils.data.Dataset):
    """Batch b of an epoch plan: augmented uint8 images (decoded once, in `images`)."""

    def __init__(self, images: np.ndarray, plan: Any, vis_pipes: Sequence[Any], ir_pipes: Sequence[Any],
                 key: Sequence[int], epoch: int, views: Callable[..., Mapping[str, np.ndarray]] | None = None):
        self.images, self.plan = images, plan
        self.vis_pipes, self.ir_pipes = list(vis_pipes), list(ir_pipes)
        self.key, self.epoch = list(key), epoch
        self.views = views  # Method.extra_views when the method overrides it

    def __len__(self) -> int:
        return len(self.plan)

    def __getstate__(self) -> dict[str, Any]:
        # loader workers started with spawn/forkserver: send a memory map by file name, not by value
        state = self.__dict__.copy()
        arr = self.images
        if isinstance(arr, np.memmap) and getattr(arr, "filename", None):
            state["images"] = ("memmap", str(arr.filename), int(arr.offset), tuple(arr.shape), arr.dtype.str)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        img = state["images"]
        if isinstance(img, tuple) and img and img[0] == "memmap":
            _, fn, offset, shape, dtype = img
            state["images"] = np.memmap(fn, dtype=np.dtype(dtype), mode="r", offset=offset, shape=shape)
        self.__dict__.update(state)

    def __getitem__(self, b: int) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for tag, idx, pipes, mod in (("vis", self.plan.vis[b], self.vis_pipes, 0), ("ir", self.plan.ir[b], self.ir_pipes, 1)):
            imgs = []
            extra: dict[str, list[np.ndarray]] = {}
            for view, pipe in enumerate(pipes):  # view-major: rows view*B + slot (docs/training.md)
                for slot, i in enumerate(idx):
                    key = [self.epoch, b, mod, slot] + ([view] if view else [])
                    rng = np.random.default_rng(self.key + key)
                    imgs.append(pipe(self.images[i], rng, self.epoch))
            if self.views is not None:  # Method.extra_views: own generators, the base pipeline
                aug = functools.partial(pipes[0], epoch=self.epoch)
                for slot, i in enumerate(idx):
                    vrng = np.random.default_rng(self.key + [self.epoch, b, mod, slot, HOOK_VIEW_TAG])
                    for name, arr in self.views(self.images[i], ("visible", "infrared")[mod], aug, vrng).items():
                        extra.setdefault(name, []).append(arr)
            n = len(pipes)
            out[tag] = torch.from_numpy(np.stack(imgs))
            for name, arrs in extra.items():
                out[f"{tag}_{name}"] = torch.from_numpy(np.stack(arrs))
            out[f"{tag}_index"] = torch.from_numpy(np.tile(idx, n))
            out[f"{tag}_label"] = torch.from_numpy(np.tile(self.plan.labels[b], n))
        return out


def _num_workers(cfg: Mapping[str, Any], device: torch.device) -> int:
    nw = cfg.get("num_workers", "auto")
    if nw == "auto" or nw is None:
        return 4 if device.type == "cuda" else 0
    if not isinstance(nw, int) or nw < 0:
        raise VibenchError(f"num_workers must be 'auto' or an integer >= 0, got {nw!r}")
    return nw


def _write_log(workdir: Path, history: Sequence[Mapping[str, Any]]) -> None:
    write_text_atomic(workdir / LOG_NAME, "".join(json.dumps(h, sort_keys=True) + "\n" for h in history))


def _input_cfg(cfg: Mapping[str, Any]) -> tuple[tuple[int, int], tuple[float, ...], tuple[float, ...]]:
    inp = input_settings(cfg)
    return inp.size, inp.mean, inp.std


def train(
    method_name: str,
    cfg: dict[str, Any],
    index: DatasetIndex,
    split: int | None = None,
    *,
    train_records: Sequence[ImageRecord] | None = None,
    seed: int = 0,
    device: str | torch.device = "auto",
    workdir: str | Path,
    root: str | Path | None = None,
    progress: bool = True,
    max_epochs: int | None = None,
    log: Callable[[str], None] | None = None,
    on_epoch_end: Callable[["TrainedModel", dict[str, Any]], None] | None = None,
) -> TrainedModel:
    """Train `method_name` with the resolved `cfg` on `index.train(split)` (or `train_records`,
    e.g. an imbalance-reduced subset; labels still come from the full split so the classifier
    size is the dataset's), resuming from `workdir` when it holds this run's checkpoint.

    `max_epochs` stops after that many epochs in this call (the result has complete=False);
    the next call resumes. Images are read from `root` (default `index.root`).

    `on_epoch_end(model, point)` is called after each epoch's checkpoint with the model so far
    (complete=False) and ``point = {"stage", "stage_epoch", "epoch"}`` (epoch counted over all
    stages, from 1); the RNG states are restored after it, so a run with the hook trains the
    same model as one without (``vibench run --eval-every``).
    """
    dev = resolve_device(device)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    full = index.train(split)
    records = tuple(train_records) if train_records is not None else tuple(full)
    if not records:
        raise VibenchError(f"no training records for {index.name} split {split}")
    label_map = label_map_for(full)
    missing = sorted({r.pid for r in records} - set(label_map))
    if missing:
        raise VibenchError(f"train_records hold pids {missing[:5]} that are not in {index.name} split {split}")
    num_classes = len(label_map)
    method = get_method_class(method_name)(cfg, index.name)
    fp = _fingerprint(method_name, cfg, seed, records, num_classes)

    seed_everything(seed)
    model = method.build_model(num_classes)
    final_path = workdir / FINAL_NAME
    if final_path.is_file():
        ck = load_checkpoint(final_path)
        if ck.get("fingerprint") != fp:
            raise VibenchError(f"{final_path} was trained with a different method/config/seed/data; use another work dir")
        model.load_state_dict(ck["model"])
        model.to(dev)
        return TrainedModel(method, model.eval(), cfg, num_classes, label_map, final_path, ck["init"],
                            json.loads(ck["history"]), float(ck["train_seconds"]), True, True, int(ck.get("skipped_ids", 0)))

    channels_last = dev.type == "cuda" and bool(cfg.get("channels_last", True))
    amp = dev.type == "cuda" and bool(cfg.get("amp", True))
    model.to(dev)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    base_trainable = {n: p.requires_grad for n, p in model.named_parameters()}
    init = _init_info(model)
    stages = method.stages()
    size, mean, std = _input_cfg(cfg)
    root_path = Path(root) if root is not None else Path(index.root)
    images = load_images(records, root_path, size)
    labels = np.array([label_map[r.pid] for r in records], dtype=np.int64)
    modalities = [r.modality for r in records]

    history: list[dict[str, Any]] = []
    start_stage, start_epoch, train_seconds, resumed = 0, 0, 0.0, False
    state_path = workdir / STATE_NAME
    ck = None
    if state_path.is_file():
        ck = load_checkpoint(state_path)
        if ck.get("fingerprint") != fp:
            raise VibenchError(f"{state_path} belongs to a different run (method/config/seed/data); use another work dir")
        model.load_state_dict(ck["model"])
        start_stage, start_epoch = int(ck["stage"]), int(ck["epoch"])
        history = json.loads(ck["history"])
        train_seconds = float(ck["train_seconds"])
        resumed = True
        while start_stage < len(stages) and start_epoch >= stages[start_stage].epochs:
            start_stage, start_epoch = start_stage + 1, 0
        if start_epoch == 0:
            # resuming at a stage boundary: the new stage starts with a fresh optimiser, exactly
            # as it does after the previous stage's last epoch in an uninterrupted run
            set_rng_state(ck["rng"])
            ck = None

    say = log or (lambda s: None)
    epochs_run = 0
    skipped = 0
    for si in range(start_stage, len(stages)):
        stage = stages[si]
        first_epoch = start_epoch if si == start_stage else 0
        if first_epoch >= stage.epochs:
            continue
        _apply_freeze(model, base_trainable, stage.freeze)
        method.on_stage_start(model, stage)
        groups = method.param_groups(model, stage)
        optimizer = build_optimizer(stage.optimizer, groups)
        schedule = build_schedule(stage.schedule, stage.epochs)
        base_lr = float(stage.optimizer["lr"])
        sampler = CrossModalSampler.from_config(stage.sampler, labels, modalities, seed=seed, stage=si)
        skipped = len(sampler.skipped)
        views = method.extra_views if type(method).extra_views is not Method.extra_views else None
        vis_pipes = build_views(stage.augment, "visible")
        ir_pipes = build_views(stage.augment, "infrared")
        if ck is not None and si == start_stage:
            if int(ck["optimizer_stage"]) == si and ck.get("optimizer") is not None:
                optimizer.load_state_dict(ck["optimizer"])
            set_rng_state(ck["rng"])
            ck = None
        for epoch in range(first_epoch, stage.epochs):
            if max_epochs is not None and epochs_run >= max_epochs:
                return TrainedModel(method, model, cfg, num_classes, label_map, state_path, init, history,
                                    train_seconds, resumed, False, skipped)
            was_reset = reset_peak(dev)
            t0 = time.perf_counter()
            first_iteration_s = 0.0
            factor = schedule.apply(optimizer, base_lr, epoch)
            method.set_train_mode(model, stage)
            plan = sampler.epoch(epoch)
            data = _EpochBatches(images, plan, vis_pipes, ir_pipes, [seed, si], epoch, views)
            nw = _num_workers(cfg, dev)
            loader = torch.utils.data.DataLoader(data, batch_size=None, shuffle=False, num_workers=nw,
                                                 pin_memory=dev.type == "cuda", persistent_workers=False)
            sums: dict[str, float] = {}
            bar = _progress(loader, progress, f"{method_name} {stage.name} {epoch + 1}/{stage.epochs}")
            for it, batch in enumerate(bar):
                # images (the main views and any extra_views) are (B, H, W, 3) uint8; the rest labels/indices
                feed = {k: to_tensor_batch(v, dev, mean, std, channels_last) if v.dtype == torch.uint8 and v.ndim == 4
                        else v.to(dev, non_blocking=True) for k, v in batch.items()}
                st = StepState(stage.name, epoch, stage.epochs, it, len(plan), dev, {"stage_index": si, "options": stage.options})
                with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp):
                    terms = method.training_step(model, feed, st)
                if not terms:
                    raise VibenchError(f"{method_name}.training_step returned no loss terms")
                loss = sum(v.float() for v in terms.values())
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"{method_name}: non-finite loss at stage {stage.name} epoch {epoch} iteration {it}: "
                        + ", ".join(f"{k}={float(v):.4g}" for k, v in terms.items())
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                for k, v in terms.items():
                    sums[k] = sums.get(k, 0.0) + float(v.detach())
                sums["loss"] = sums.get("loss", 0.0) + float(loss.detach())
                if it == 0:
                    first_iteration_s = time.perf_counter() - t0
                if hasattr(bar, "set_postfix"):
                    bar.set_postfix(loss=f"{sums['loss'] / (it + 1):.3f}", lr=f"{base_lr * factor:.2e}")
            seconds = time.perf_counter() - t0
            train_seconds += seconds
            n_img = len(plan) * sampler.images_per_iteration
            entry = {
                "stage": stage.name, "epoch": epoch, "lr": base_lr * factor, "iterations": len(plan),
                "seconds": round(seconds, 4), "images_per_s": round(n_img / max(seconds, 1e-9), 2),
                "images_per_iteration": sampler.images_per_iteration,
                "seconds_per_iteration": round(seconds / max(1, len(plan)), 4),
                "first_iteration_s": round(first_iteration_s, 4),
                "peak_memory": read_peak(dev, was_reset),
                "losses": {k: v / max(1, len(plan)) for k, v in sums.items()},
            }
            history.append(entry)
            say(f"{stage.name} epoch {epoch + 1}/{stage.epochs}: loss {entry['losses']['loss']:.4f} lr {entry['lr']:.3g} ({seconds:.1f}s)")
            save_checkpoint(state_path, {
                "fingerprint": fp, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "optimizer_stage": si, "stage": si, "epoch": epoch + 1, "sampler": {"stage": si, "epoch": epoch + 1, "position": 0},
                "schedule": {"name": schedule.name, "epoch": epoch + 1}, "rng": get_rng_state(),
                "history": json.dumps(history), "train_seconds": train_seconds,
            })
            _write_log(workdir, history)
            epochs_run += 1
            if on_epoch_end is not None:
                rng = get_rng_state()
                on_epoch_end(TrainedModel(method, model, cfg, num_classes, label_map, state_path, init, history,
                                          train_seconds, resumed, False, skipped),
                             {"stage": stage.name, "stage_epoch": epoch + 1,
                              "epoch": sum(s.epochs for s in stages[:si]) + epoch + 1})
                set_rng_state(rng)
        start_epoch = 0
    # all stages done: restore the base trainability and write the final weights
    for n, p in model.named_parameters():
        p.requires_grad_(base_trainable[n])
    model.eval()
    save_checkpoint(final_path, {
        "fingerprint": fp, "method": method_name, "config": json.dumps(cfg, sort_keys=True), "dataset": index.name,
        "num_classes": num_classes, "label_map": json.dumps({str(k): v for k, v in label_map.items()}),
        "model": model.state_dict(), "init": init, "history": json.dumps(history), "train_seconds": train_seconds,
        "skipped_ids": skipped,
    })
    _write_log(workdir, history)
    if state_path.exists():
        state_path.unlink()
    return TrainedModel(method, model, cfg, num_classes, label_map, final_path, init, history, train_seconds,
                        resumed, True, skipped)


def training_costs(history: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Seconds per iteration, images per second and peak memory of a training run, overall and
    per stage, from its per-epoch history (epochs written before these fields existed count
    only where they have them). Peak memory is the largest epoch peak."""
    def summarise(entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        iters = sum(int(e.get("iterations", 0)) for e in entries)
        seconds = sum(float(e.get("seconds", 0.0)) for e in entries)
        images = sum(int(e.get("images_per_iteration", 0)) * int(e.get("iterations", 0)) for e in entries)
        peaks = [e["peak_memory"] for e in entries if e.get("peak_memory")]
        peak = max(peaks, key=lambda p: p["bytes"]) if peaks else None
        # without each epoch's first iteration (loader start, allocator and kernel warm-up)
        later = [e for e in entries if int(e.get("iterations", 0)) > 1]
        later_s = sum(float(e["seconds"]) - float(e.get("first_iteration_s", 0.0)) for e in later)
        later_n = sum(int(e["iterations"]) - 1 for e in later)
        return {"epochs": len(entries), "iterations": iters, "seconds": round(seconds, 4),
                "seconds_per_iteration": round(seconds / iters, 4) if iters else None,
                "images_per_iteration": round(images / iters, 2) if iters and images else None,
                "steady_seconds_per_iteration": round(later_s / later_n, 4) if later_n else None,
                "images_per_s": round(images / seconds, 2) if images and seconds > 0 else None,
                "peak_memory": peak}

    timed = [e for e in history if "seconds_per_iteration" in e]
    stages: dict[str, list[Mapping[str, Any]]] = {}
    for e in timed:
        stages.setdefault(str(e["stage"]), []).append(e)
    return {**summarise(timed), "stages": {name: summarise(entries) for name, entries in stages.items()}}


def _progress(it: Any, enabled: bool, desc: str) -> Any:
    if not enabled:
        return it

    return tqdm(it, desc=desc, leave=False, dynamic_ncols=True)


def load_trained(path: str | Path, device: str | torch.device = "cpu") -> TrainedModel:
    """The TrainedModel stored in a ``model.pt`` written by :func:`train` (weights_only load)."""
    dev = resolve_device(device)
    ck = load_checkpoint(path)
    for key in ("method", "config", "model", "num_classes", "dataset"):
        if key not in ck:
            raise VibenchError(f"{path} is not a vibench final checkpoint (missing {key!r})")

    cls = get_method_class(ck["method"])
    cfg = cls.resolve_config(upgrade_config(json.loads(ck["config"])), str(path))
    method = cls(cfg, ck["dataset"])
    model = method.build_model(int(ck["num_classes"]))
    model.load_state_dict(ck["model"])
    model.to(dev).eval()
    label_map = {int(k): int(v) for k, v in json.loads(ck["label_map"]).items()}
    return TrainedModel(method, model, cfg, int(ck["num_classes"]), label_map, Path(path), ck["init"],
                        json.loads(ck["history"]), float(ck["train_seconds"]), True, True, int(ck.get("skipped_ids", 0)))


def untrained(method_name: str, cfg: dict[str, Any], dataset: str, num_classes: int, *, seed: int = 0,
              device: str | torch.device = "cpu") -> TrainedModel:
    """The freshly initialised model (seeded exactly as :func:`train` seeds it): the baseline of
    learnability checks."""
    dev = resolve_device(device)
    method = get_method_class(method_name)(cfg, dataset)
    seed_everything(seed)
    model = method.build_model(num_classes).to(dev).eval()
    return TrainedModel(method, model, cfg, num_classes, {}, None, _init_info(model), [], 0.0, False, False)
