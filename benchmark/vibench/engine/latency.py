"""Parameter counts and test-time latency, measured the same way for every method.

* :func:`count_parameters` -> {"registered": every parameter the module holds,
  "effective": parameters of the modules that run when the method embeds one image of each
  modality (the inference path; classifiers and training-only heads excluded)} (docs/methods.md#parameter-count-convention).
* :func:`measure_latency` -> {"device", "ms_per_image", ...}: `warmup` untimed calls, then
  `repeats` timed calls of :meth:`Method.embed` on a random batch, synchronising CUDA before and
  after each; the median time divided by the batch size. Latency per query of two-stage methods
  (BIT) is measured by that method on top of this.
* :func:`paper_parameter_counts` -> {dataset: registered count} of the `paper` config, built on
  the meta device (no memory, no weights), as ``vibench methods list --json`` prints.
* :func:`count_flops` / :func:`embed_flops`: FLOPs counted by ``torch.utils.flop_counter`` (2 per
  multiply-accumulate of matmuls, convolutions and attention; element-wise work is not counted),
  so MACs = FLOPs / 2 (the unit most papers call "GFLOPs").
* :func:`paper_costs`: parameters, FLOPs per test image and per query, and latency per image and
  per query of one method's `paper` config, as ``vibench methods costs`` records them
  (docs/methods.md#measured-costs-of-the-paper-configs).
"""
from __future__ import annotations

import platform
import statistics
import time
from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from vibench.engine.api import Method
from vibench.engine.config import config_hash, load_config
from vibench.engine.pretrained import without_weights
from vibench.engine.sections import input_settings
from vibench.errors import VibenchError
from vibench.registry import get_method_class

#: training identities per dataset (SYSU 395, RegDB 206 per split, LLCM 713)
NUM_CLASSES = {"sysu": 395, "regdb": 206, "llcm": 713}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    proc = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    proc = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"cpu ({proc}, {torch.get_num_threads()} threads)"


def _input_size(cfg: Mapping[str, Any]) -> tuple[int, int]:
    return input_settings(cfg).size


def _timing_setup(method: Method, model: nn.Module, device: str | torch.device,
                  input_size: tuple[int, int] | None) -> tuple[torch.device, tuple[int, int], nn.Module, bool]:
    """(device, input size, the model on it in eval mode, AMP on?) as both latency measurements
    use them: bf16 autocast only on CUDA and only when the config enables AMP."""
    dev = torch.device(device) if not isinstance(device, torch.device) else device
    size = input_size or _input_size(method.cfg)
    amp = dev.type == "cuda" and bool(method.cfg.get("amp", True))
    return dev, size, model.to(dev).eval(), amp


def _sync(dev: torch.device) -> None:
    """Wait for queued CUDA work so wall-clock times cover it (a no-op elsewhere)."""
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def count_parameters(model: nn.Module, method: Method | None = None, input_size: tuple[int, int] | None = None) -> dict[str, int]:
    """{"registered": n, "effective": n}; `effective` needs `method` (else equals registered).

    The effective count runs :meth:`Method.embed` once per modality on a 1-image batch (on the
    model's device, meta included) under a ``TorchFunctionMode`` that records every parameter
    passed to a torch operation; each such parameter counts once.
    """
    params = {id(p): p for p in model.parameters()}
    registered = sum(p.numel() for p in params.values())
    if method is None:
        return {"registered": registered, "effective": registered}
    size = input_size or _input_size(method.cfg)
    used: dict[int, torch.Tensor] = {}

    def visit(obj: Any) -> None:
        if isinstance(obj, torch.Tensor):
            if id(obj) in params:
                used[id(obj)] = obj
        elif isinstance(obj, (list, tuple)):
            for o in obj:
                visit(o)
        elif isinstance(obj, dict):
            for o in obj.values():
                visit(o)

    class _Record(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
            visit(args)
            visit(kwargs or {})
            return func(*args, **(kwargs or {}))

    was_training = model.training
    try:
        model.eval()
        p0 = next(iter(params.values()), None)
        dev = p0.device if p0 is not None else torch.device("cpu")
        x = torch.zeros((1, 3, *size), device=dev)
        with torch.no_grad(), _Record():
            for modality in ("visible", "infrared"):
                method.embed(model, x, modality)
    finally:
        model.train(was_training)
    effective = sum(p.numel() for p in used.values())
    return {"registered": registered, "effective": effective}


def measure_latency(
    method: Method,
    model: nn.Module,
    device: str | torch.device = "cpu",
    *,
    batch: int = 1,
    warmup: int = 10,
    repeats: int = 50,
    modality: str = "infrared",
    input_size: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Median wall time of one :meth:`Method.embed` call on `batch` images, per image (ms)."""
    dev, size, model, amp = _timing_setup(method, model, device, input_size)
    channels_last = dev.type == "cuda" and bool(method.cfg.get("channels_last", True))
    x = torch.randn((batch, 3, *size), device=dev, generator=None)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    times = []
    with torch.inference_mode(), torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp):
        for _ in range(warmup):
            method.embed(model, x, modality)
        _sync(dev)
        for _ in range(repeats):
            _sync(dev)
            t0 = time.perf_counter()
            method.embed(model, x, modality)
            _sync(dev)
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return {
        "device": device_name(dev),
        "ms_per_image": 1000.0 * med / batch,
        "ms_per_batch_median": 1000.0 * med,
        "ms_per_batch_min": 1000.0 * min(times),
        "batch": batch,
        "warmup": warmup,
        "repeats": repeats,
        "input_size": list(size),
        "precision": "bf16-autocast" if amp else "fp32",
    }


def paper_method(method_name: str, dataset: str, config: str = "paper",
                 overrides: tuple[str, ...] = ()) -> tuple[Method, str]:
    """(the method built from its `config` (with `overrides`) for `dataset`, that config's hash).
    The hash is of the config as loaded; the method gets random initialisation (``model.init:
    random``, no ``model.weights``) so that no weight file is read: parameter counts, FLOPs and
    timings do not depend on the weights' values."""
    cfg = load_config(method_name, config, dataset=dataset, overrides=overrides)
    digest = config_hash(cfg)
    without_weights(cfg)
    return get_method_class(method_name)(cfg, dataset), digest


def paper_parameter_counts(method_name: str, datasets: tuple[str, ...] = ("sysu", "regdb", "llcm")) -> dict[str, Any]:
    """{"params": {dataset: registered}, "effective": {dataset: n}} of the `paper` config,
    built on the meta device (fast, no weights loaded: the config's weights path is ignored)."""
    params: dict[str, int] = {}
    effective: dict[str, int] = {}
    for ds in datasets:
        method, _ = paper_method(method_name, ds)
        with torch.device("meta"):
            model = method.build_model(NUM_CLASSES[ds])
        counts = count_parameters(model, method)
        params[ds] = counts["registered"]
        effective[ds] = counts["effective"]
    return {"params": params, "effective": effective}


def _cpu_sdpa_flops(query_shape: Any, key_shape: Any, value_shape: Any, *args: Any,
                    out_shape: Any = None, **kwargs: Any) -> int:
    """FLOPs of CPU fused attention, which torch's counter does not register (its CUDA kernels
    are registered): the two attention matmuls, 2 per MAC, as for the CUDA kernels."""
    return sdpa_flop_count(query_shape, key_shape, value_shape)


#: operators counted in addition to torch's registry (see :func:`_cpu_sdpa_flops`)
_EXTRA_FLOP_FORMULAS = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_flops}


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of ``fn()`` by ``torch.utils.flop_counter`` (2 per multiply-accumulate of matmul,
    convolution and attention; element-wise operations, norms and softmax are not counted)."""
    with FlopCounterMode(display=False, custom_mapping=_EXTRA_FLOP_FORMULAS) as counter:
        fn()
    return int(counter.get_total_flops())


def embed_flops(method: Method, model: nn.Module, *, input_size: tuple[int, int] | None = None,
                modality: str = "infrared") -> dict[str, Any]:
    """FLOPs of one test-time embedding (:meth:`Method.embed`) of one image, on the model's device."""
    size = input_size or _input_size(method.cfg)
    param = next(model.parameters())
    x = torch.zeros((1, 3, *size), device=param.device)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            flops = count_flops(lambda: method.embed(model, x, modality))
    finally:
        model.train(was_training)
    return {"per_image": flops, "macs_per_image": flops // 2, "input_size": list(size),
            "counter": "torch.utils.flop_counter"}


def measure_query_latency(
    method: Method,
    model: nn.Module,
    device: str | torch.device = "cpu",
    *,
    gallery: int = 301,
    warmup: int = 5,
    repeats: int = 20,
    input_size: tuple[int, int] | None = None,
    query_modality: str = "infrared",
    flops: bool = False,
) -> dict[str, Any]:
    """Median wall time of answering one query against a precomputed gallery.

    Gallery embeddings (and, for BIT, gallery patch tokens) are computed once beforehand, as a
    deployed system would. One query = :meth:`Method.embed` of one image (batch 1) ->
    :meth:`Method.distance` to the gallery -> :meth:`Method.refine` (BIT: top-K decoder
    re-scoring; identity for PMT and every other method) -> ``argsort``. CUDA is synchronised
    around each query; bf16 autocast on CUDA when the config enables AMP (the same for both
    methods). ``gallery`` = 301 is the SYSU all-search single-shot gallery size. With `flops`,
    one more (untimed) query is counted: ``flops_per_query`` (embedding, distance and refine).
    """
    dev, size, model, amp = _timing_setup(method, model, device, input_size)
    g_mod = "visible" if query_modality == "infrared" else "infrared"
    gen = torch.Generator().manual_seed(0)
    extra: dict[str, Any] = {}

    with torch.inference_mode(), torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp):
        g_emb: dict[str, list[torch.Tensor]] = {}
        for s in range(0, gallery, 32):
            n = min(32, gallery - s)
            for k, v in method.embed(model, torch.randn(n, 3, *size, generator=gen).to(dev), g_mod).items():
                g_emb.setdefault(k, []).append(v)
        g = {k: torch.cat(v) for k, v in g_emb.items()}
        g_mods = np.array([g_mod] * gallery)
        q_mods = np.array([query_modality])
        excluded = torch.zeros(1, gallery, dtype=torch.bool, device=dev)

        def answer(x: torch.Tensor) -> torch.Tensor:
            q = method.embed(model, x, query_modality)
            d = method.distance(q, g, q_mods, g_mods)
            d = method.refine(model, q, g, d, excluded)
            return torch.argsort(d, dim=1)

        queries = [torch.randn(1, 3, *size, generator=gen).to(dev) for _ in range(warmup + repeats + int(flops))]
        times = []
        for i, x in enumerate(queries[:warmup + repeats]):
            _sync(dev)
            t0 = time.perf_counter()
            answer(x)
            _sync(dev)
            if i >= warmup:
                times.append(time.perf_counter() - t0)
        if flops:
            extra["flops_per_query"] = count_flops(lambda: answer(queries[-1]))
    med = statistics.median(times)
    return {
        "device": device_name(dev),
        "ms_per_query": 1000.0 * med,
        "ms_per_query_min": 1000.0 * min(times),
        "gallery": gallery,
        "warmup": warmup,
        "repeats": repeats,
        "input_size": list(size),
        "precision": "bf16-autocast" if amp else "fp32",
        "refine": type(method).refine is not Method.refine,
        "refine_k": getattr(method, "refine_k", None),
        **extra,
    }


def paper_costs(method_name: str, *, dataset: str = "sysu", config: str = "paper",
                device: str | torch.device = "cpu", gallery: int = 64, warmup: int = 2,
                repeats: int = 5, seed: int = 0) -> dict[str, Any]:
    """Costs of one method's `config` (default `paper`) on `dataset`'s class count, as recorded by
    ``vibench methods costs``: parameters (registered, effective), FLOPs of one test embedding and
    of one query (embedding + distance + refine: BIT's decoder over its K candidates), and the
    median latency of one image (batch 1) and of one query against a `gallery`-image gallery.

    The model is randomly initialised (seeded); costs do not depend on the weights. The gallery
    must hold at least K images for BIT (K = 50 in the paper config), so that every query re-scores
    K candidates; the gallery size changes only the (negligible) distance and sort work.
    """
    method, digest = paper_method(method_name, dataset, config)
    k = getattr(method, "refine_k", None)
    if k is not None and gallery < k:
        raise VibenchError(f"gallery {gallery} is smaller than {method_name}'s K = {k} re-scored "
                           "candidates; use a gallery of at least K images")
    torch.manual_seed(seed)
    model = method.build_model(NUM_CLASSES[dataset])
    params = count_parameters(model, method)
    fl = embed_flops(method, model)
    per_image = measure_latency(method, model, device, batch=1, warmup=warmup, repeats=repeats)
    per_query = measure_query_latency(method, model, device, gallery=gallery, warmup=warmup,
                                      repeats=repeats, flops=True)
    fl["per_query"] = per_query.pop("flops_per_query")
    fl["macs_per_query"] = fl["per_query"] // 2
    return {
        "config": config, "config_hash": digest, "dataset": dataset,
        "num_classes": NUM_CLASSES[dataset], "input_size": fl["input_size"],
        "params": params, "flops": fl,
        "latency": {"device": per_image["device"], "precision": per_image["precision"],
                    "batch": 1, "ms_per_image": per_image["ms_per_image"],
                    "ms_per_image_min": per_image["ms_per_batch_min"],
                    "ms_per_query": per_query["ms_per_query"],
                    "ms_per_query_min": per_query["ms_per_query_min"],
                    "gallery": gallery, "refine_k": per_query["refine_k"],
                    "warmup": warmup, "repeats": repeats},
    }


#: how FLOPs are counted, written into every costs document
FLOPS_CONVENTION = ("flops = torch.utils.flop_counter total: 2 FLOPs per multiply-accumulate of "
                    "matmul, convolution and attention; element-wise work (norms, activations, "
                    "softmax) not counted. macs = flops / 2, the unit most papers print as 'GFLOPs'.")


def costs_document(entries: Mapping[str, Mapping[str, Any]], *, device: str, threads: int,
                   note: str, command: str, date: str, previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The document ``vibench methods costs --out`` writes: one entry per method (from
    :func:`paper_costs`), each with when, where and how it was measured; entries of methods not
    measured now are kept from `previous` (a re-measurement of some methods keeps the others)."""
    measured = {"date": date, "device": device, "threads": threads, "torch": torch.__version__,
                "note": note, "command": command}
    methods: dict[str, Any] = dict((previous or {}).get("methods", {}))
    for name, entry in entries.items():
        methods[name] = {**entry, "measured": measured}
    return {"schema": "vibench-costs/1", "flops_convention": FLOPS_CONVENTION,
            "latency_convention": ("median wall time after warm-up; ms_per_image: Method.embed of "
                                   "one image (batch 1); ms_per_query: embed one query, distance "
                                   "to a precomputed gallery, Method.refine (BIT: decoder over "
                                   "its K candidates), argsort"),
            "last_run": measured, "methods": dict(sorted(methods.items()))}
