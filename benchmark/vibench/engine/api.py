"""The contract between the engine and a method (the plug-in interface).

A method is a model, its losses and its configs. The engine owns everything else: data,
sampling, augmentation, optimisers, schedules, AMP, checkpoints, feature extraction and
evaluation. Register a subclass with :func:`vibench.registry.register_method`.

Batches given to :meth:`Method.training_step` are dicts with (B = P*K images per modality)::

    "vis": float tensor (B, 3, H, W), augmented and normalised visible images
    "ir":  float tensor (B, 3, H, W), augmented and normalised infrared images
    "vis_label", "ir_label": long tensors (B,), training labels 0..C-1; the sampler aligns them,
                             vis_label[i] == ir_label[i]
    "vis_index", "ir_index": long tensors (B,), positions in the training record lists
    "vis_<name>", "ir_<name>": float tensors (B, 3, H', W'), further views of the same images
                             (name from :meth:`Method.extra_views`), normalised like "vis"/"ir"

With ``augment.visible_extra_view`` (or ``infrared_extra_view``) set, that modality holds 2B rows,
view-major: rows i and B + i are two augmentations of one sampled image, and its label and index
tensors are repeated ([y, y]), so vis_label[i] == ir_label[i % B].

:class:`StepState` ``extra`` carries ``stage_index`` (0-based) and the stage's ``options``. The
engine sums the returned loss terms, backpropagates and logs each term per epoch. State that must
survive a checkpoint/resume (memory banks, centres, step counters) belongs in model buffers.

Feature extraction calls :meth:`Method.embed` on batches of test images of one modality; the
named embeddings are stored (features.npz) and :meth:`Method.distance` turns a query block and a
gallery block into a lower-is-closer distance matrix.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping

import numpy as np
import torch
from torch import nn

from vibench.engine.optim import groups_by_prefix
from vibench.engine.schema import deep_merge, raise_problems, to_dict, validate
from vibench.engine.sections import MethodConfig
from vibench.errors import VibenchError


@dataclass
class StepState:
    """Where training is: the engine passes it to every training step."""

    stage: str
    epoch: int  # 0-based, within the stage
    epochs: int  # epochs in the stage
    iteration: int  # 0-based, within the epoch
    iterations: int  # iterations per epoch
    device: torch.device
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def progress(self) -> float:
        """Fraction of the stage done, in [0, 1)."""
        return (self.epoch + self.iteration / max(1, self.iterations)) / max(1, self.epochs)


@dataclass(frozen=True)
class Stage:
    """One training stage, read from the config's ``stages`` list (see docs/training.md).

    `freeze` lists parameter-name prefixes that get ``requires_grad=False`` during the stage
    (BIT stage 2 freezes its PMT encoder); `optimizer`, `schedule`, `sampler` and `augment` are
    the stage's sections, already merged over the config's top-level defaults.
    """

    name: str
    epochs: int
    optimizer: dict[str, Any]
    schedule: dict[str, Any]
    sampler: dict[str, Any]
    augment: dict[str, Any]
    freeze: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)


class Method(abc.ABC):
    """Base class of every VI-ReID method.

    Required: :meth:`build_model`, :meth:`training_step`, :meth:`embed`. Optional hooks, all with
    working defaults: :meth:`stages` (multi-stage training), :meth:`param_groups` (per-group lr
    multipliers), :meth:`on_stage_start` / :meth:`set_train_mode` (e.g. keep a frozen encoder in
    eval mode), :meth:`distance`, :meth:`refine`.
    """

    #: registry name (lower case), set by @register_method
    name: ClassVar[str] = ""
    #: one-line citation of the paper
    paper: ClassVar[str] = ""
    #: folder holding paper.yaml, tiny.yaml and metafile.yaml
    config_dir: ClassVar[Path]

    #: the config schema (a frozen dataclass subclassing MethodConfig): keys, types, defaults
    config_schema: ClassVar[type[MethodConfig]] = MethodConfig

    def __init__(self, cfg: dict[str, Any], dataset: str) -> None:
        self.cfg = cfg
        self.dataset = dataset
        #: the typed, validated form of `cfg` (``self.config.model.gem_p`` ...)
        self.config = validate(self.config_schema, cfg, f"of {self.name or type(self).__name__}")

    @classmethod
    def resolve_config(cls, raw: Mapping[str, Any], source: str,
                       origin: Callable[[str], str] | None = None) -> dict[str, Any]:
        """`raw` validated against :attr:`config_schema`, as the resolved plain dict with every
        default filled in (what the runner stores and hashes); a VibenchError names `source`,
        each bad key path and, through `origin`, the ``--set`` item a value came from."""
        config = validate(cls.config_schema, raw, source, origin)
        raise_problems(source, config.training_problems(), origin)
        return to_dict(config)

    # ---- model -----------------------------------------------------------------------------
    @abc.abstractmethod
    def build_model(self, num_classes: int) -> nn.Module:
        """The full model for `num_classes` training identities."""

    # ---- training --------------------------------------------------------------------------
    @abc.abstractmethod
    def training_step(self, model: nn.Module, batch: dict[str, torch.Tensor], state: StepState) -> dict[str, torch.Tensor]:
        """The weighted loss terms for one batch; the engine backpropagates their sum and logs each."""

    def stages(self) -> list[Stage]:
        """The training stages, in order; default: the config's ``stages`` list (engine-parsed)."""

        return parse_stages(self.cfg)

    def extra_views(
        self,
        image: np.ndarray,
        modality: str,
        augment: Callable[[np.ndarray, np.random.Generator], np.ndarray],
        rng: np.random.Generator,
    ) -> dict[str, np.ndarray]:
        """Further training views of one image, drawn independently of its main view.

        `image` is the decoded, un-augmented (H, W, 3) uint8 training image, `modality` "visible"
        or "infrared", `augment` the stage's pipeline for that modality (epoch window applied) and
        `rng` a generator of this image's own, seeded separately from the main view's draw. Returns
        name -> (H', W', 3) uint8 array (the same shape for every image of a modality); the batch
        then holds "vis_<name>" / "ir_<name>" tensors. Default: none (AMINet's upper-body crop).
        """
        return {}

    def param_groups(self, model: nn.Module, stage: Stage) -> list[dict[str, Any]]:
        """Optimiser parameter groups for `stage`: dicts with "params" and "lr_mult".

        Default: the stage optimiser's ``lr_mult`` mapping (parameter-name prefix -> multiplier,
        longest prefix wins, key "default" for the rest) over the trainable parameters.
        """
        return groups_by_prefix(model, stage.optimizer.get("lr_mult") or {})

    def on_stage_start(self, model: nn.Module, stage: Stage) -> None:
        """Called once when a stage starts (and again when a run resumes inside it)."""

    def set_train_mode(self, model: nn.Module, stage: Stage) -> None:
        """Put the model in training mode for an epoch; frozen parts may stay in eval mode."""
        model.train()
        if stage.freeze:
            for name, module in model.named_modules():
                if name and any(name == p or name.startswith(p + ".") for p in stage.freeze):
                    module.eval()

    # ---- inference -------------------------------------------------------------------------
    @abc.abstractmethod
    def embed(self, model: nn.Module, images: torch.Tensor, modality: str) -> dict[str, torch.Tensor]:
        """Named test embeddings (N, D) for a batch of one modality; 'feat' is the default one."""

    def distance(
        self,
        query: dict[str, torch.Tensor],
        gallery: dict[str, torch.Tensor],
        q_modalities: np.ndarray,
        g_modalities: np.ndarray,
    ) -> torch.Tensor:
        """Lower-is-closer distances; default: :func:`cosine_distance` of the 'feat' embeddings."""
        return cosine_distance(query["feat"], gallery["feat"])

    def refine(
        self,
        model: nn.Module,
        query: dict[str, torch.Tensor],
        gallery: dict[str, torch.Tensor],
        distmat: torch.Tensor,
        excluded: torch.Tensor,
    ) -> torch.Tensor:
        """Optional second stage after :meth:`distance` (BIT's coarse-to-fine re-scoring).

        `excluded` is a bool (nq, ng) mask of the gallery items the protocol's rule removes for
        each query, so a refinement picks its candidates after exclusion. Default: no change.
        """
        return distmat


def cosine_distance(query: torch.Tensor, gallery: torch.Tensor) -> torch.Tensor:
    """-(q . g^T) on L2-normalised rows: the default lower-is-closer distance (nq, ng)."""
    q = nn.functional.normalize(query.float(), dim=1)
    g = nn.functional.normalize(gallery.float(), dim=1)
    return -(q @ g.T)


def two_stream_embed(model: nn.Module, images: torch.Tensor, modality: str, pool: str) -> dict[str, torch.Tensor]:
    """The test embeddings of a two-stream model called as ``model(vis=...)`` or ``model(ir=...)``:
    'feat' = l2norm(out["feat"]) (the BN-neck output) and 'pool' = l2norm(out[pool])."""
    out = model(vis=images) if modality == "visible" else model(ir=images)
    return {"feat": nn.functional.normalize(out["feat"].float(), dim=1),
            "pool": nn.functional.normalize(out[pool].float(), dim=1)}


def parse_stages(cfg: Mapping[str, Any]) -> list["Stage"]:
    """The config's ``stages`` list as :class:`~vibench.engine.api.Stage` objects.

    Each stage may set name, epochs, optimizer, schedule, sampler, augment, freeze and options;
    optimizer/schedule/sampler/augment are merged over the top-level sections of the same name.
    Without a ``stages`` list there is one stage "main" whose epochs come from ``schedule.epochs``.
    """
    raw_stages = cfg.get("stages")
    if raw_stages is None:
        raw_stages = [{"name": "main"}]
    if not isinstance(raw_stages, list) or not raw_stages:
        raise VibenchError("config 'stages' must be a non-empty list of mappings")
    out: list[Stage] = []
    seen: set[str] = set()
    for i, st in enumerate(raw_stages):
        if not isinstance(st, Mapping):
            raise VibenchError(f"config stages[{i}] must be a mapping, got {st!r}")
        extra = set(st) - {"name", "epochs", "optimizer", "schedule", "sampler", "augment", "freeze", "options"}
        if extra:
            raise VibenchError(f"config stages[{i}]: unknown key(s) {sorted(extra)}")
        name = str(st.get("name") or f"stage{i + 1}")
        if name in seen:
            raise VibenchError(f"config stages: duplicate stage name {name!r}")
        seen.add(name)
        sections = {}
        for sec in ("optimizer", "schedule", "sampler", "augment"):
            sections[sec] = deep_merge(cfg.get(sec) or {}, st.get(sec) or {})
        epochs = st.get("epochs", sections["schedule"].get("epochs"))
        if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 0:
            raise VibenchError(f"config stage {name!r}: epochs must be an integer >= 0, got {epochs!r}")
        freeze = st.get("freeze") or ()
        if isinstance(freeze, str):
            freeze = (freeze,)
        out.append(
            Stage(
                name=name,
                epochs=epochs,
                optimizer=sections["optimizer"],
                schedule=sections["schedule"],
                sampler=sections["sampler"],
                augment=sections["augment"],
                freeze=tuple(str(f) for f in freeze),
                options=dict(st.get("options") or {}),
            )
        )
    return out
