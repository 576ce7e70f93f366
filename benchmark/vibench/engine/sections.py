"""The config sections every method shares, declared once with their defaults and ranges:
``input``, ``sampler``, ``augment``, ``optimizer``, ``schedule``, ``stages``, ``test`` and the
engine switches (``amp``, ``channels_last``, ``num_workers``). :class:`MethodConfig` is the
schema of a method without sections of its own; a method's schema subclasses it and adds
``model``, ``loss`` and its own section (see docs/training.md, "Config schema").

The image size is ``input.size`` only: training, feature extraction, latency and the models that
depend on it (ViT position embeddings) all read it through :func:`input_settings`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Literal, Mapping

from vibench.engine.augment import IMAGENET_MEAN, IMAGENET_STD, build_pipeline
from vibench.engine.schema import Problem, Section, deep_merge, option, to_dict, validate
from vibench.errors import VibenchError

DATASETS = ("sysu", "regdb", "llcm")


@dataclass(frozen=True)
class InputConfig(Section):
    """Image size [H, W] of training and test images, and the normalisation."""

    size: tuple[int, int] = option((256, 128), gt=0)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = option(IMAGENET_STD, gt=0)


@dataclass(frozen=True)
class SamplerConfig(Section):
    """Cross-modal identity sampler: P identities x K images per modality per batch."""

    ids_per_batch: int = option(8, gt=0)
    images_per_id: int = option(4, gt=0)
    iterations: int | None = option(None, gt=0, doc="null = max(#visible, #infrared) // (P*K)")
    missing_modality: Literal["skip", "error"] = "skip"
    with_replacement: bool = True


@dataclass(frozen=True)
class AugmentConfig(Section):
    """Augmentation parts per modality, each ``{op: name, ...params, epochs: [start, stop]}``;
    ``<modality>_extra_view``: a second, independent pipeline over the same sampled images whose
    outputs join the batch as extra rows (CAJ's colour + channel-exchanged views; empty = none)."""

    visible: tuple[dict[str, Any], ...] = ()
    infrared: tuple[dict[str, Any], ...] = ()
    visible_extra_view: tuple[dict[str, Any], ...] = ()
    infrared_extra_view: tuple[dict[str, Any], ...] = ()

    def problems(self) -> Iterable[Problem]:
        for name in ("visible", "infrared", "visible_extra_view", "infrared_extra_view"):
            try:
                build_pipeline(list(getattr(self, name)))
            except VibenchError as exc:
                yield name, str(exc)


@dataclass(frozen=True)
class OptimizerConfig(Section):
    """SGD (momentum, nesterov) or Adam/AdamW (betas, eps); ``lr_mult`` maps parameter-name
    prefixes to lr multipliers (longest prefix wins, ``default`` for the rest)."""

    name: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float | None = option(None, gt=0)
    weight_decay: float = option(0.0, ge=0)
    momentum: float = option(0.9, ge=0, lt=1)
    nesterov: bool = True
    betas: tuple[float, float] = option((0.9, 0.999), ge=0, lt=1)
    eps: float = option(1e-8, gt=0)
    lr_mult: dict[str, float] = option(factory=dict, ge=0)

    def problems(self) -> Iterable[Problem]:
        for key, mult in self.lr_mult.items():
            if mult < 0:
                yield f"lr_mult.{key}", f"must be >= 0, got {mult}"


@dataclass(frozen=True)
class ScheduleConfig(Section):
    """Per-epoch lr factor: warmup_step (linear warm-up, x gamma at each milestone),
    warmup_cosine (warm-up from warmup_factor, cosine down to min_factor) or constant."""

    name: Literal["warmup_step", "warmup_cosine", "constant"] = "constant"
    epochs: int | None = option(None, ge=1)
    warmup_epochs: int = option(0, ge=0)
    warmup_factor: float = option(0.01, gt=0, le=1)
    milestones: tuple[int, ...] = option((), ge=0)
    gamma: float = option(0.1, gt=0)
    min_factor: float = option(0.0, ge=0, le=1)


@dataclass(frozen=True)
class StageConfig(Section):
    """One training stage: its sections are merged over the top-level ones of the same name."""

    name: str | None = None
    epochs: int | None = option(None, ge=1)
    optimizer: dict[str, Any] = option(factory=dict)
    schedule: dict[str, Any] = option(factory=dict)
    sampler: dict[str, Any] = option(factory=dict)
    augment: dict[str, Any] = option(factory=dict)
    freeze: tuple[str, ...] = ()
    options: dict[str, Any] = option(factory=dict)


@dataclass(frozen=True)
class TestConfig(Section):
    """Feature extraction: batch size, stored feature name, flip test-time augmentation."""

    moved = {"size": "the image size is input.size (training and testing read the same key)"}

    batch_size: int = option(64, gt=0)
    feature: str = "feat"
    flip: Literal["none", "mean", "sum"] = "none"


STAGE_SECTIONS = {"optimizer": OptimizerConfig, "schedule": ScheduleConfig, "sampler": SamplerConfig,
                  "augment": AugmentConfig}


@dataclass(frozen=True)
class MethodConfig(Section):
    """The schema every method config starts from; methods subclass it."""

    method: str = ""
    description: str = ""
    dataset: Literal["sysu", "regdb", "llcm"] | None = None
    input: InputConfig = InputConfig()
    sampler: SamplerConfig = SamplerConfig()
    augment: AugmentConfig = AugmentConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    stages: tuple[StageConfig, ...] | None = None
    test: TestConfig = TestConfig()
    amp: bool = True
    channels_last: bool = True
    num_workers: Literal["auto"] | int = option("auto", ge=0)
    options: dict[str, Any] = option(factory=dict, doc="free-form options of a method without its own schema")

    def training_problems(self) -> Iterable[Problem]:
        """What a config needs to train, beyond valid keys: a learning rate and, for every stage,
        a number of epochs (its own or schedule.epochs). Checked when a config is loaded; a
        Method built only to embed (extraction, latency) does not need them."""
        if self.optimizer.lr is None:
            yield "optimizer.lr", "is required (the base learning rate, > 0)"
        if self.stages is None and self.schedule.epochs is None:
            yield "schedule.epochs", "is required (>= 1) when the config has no stages"
        for i, stage in enumerate(self.stages or ()):
            if stage.epochs is None and (stage.schedule.get("epochs") or self.schedule.epochs) is None:
                yield f"stages[{i}].epochs", "is required (>= 1): the stage sets none and schedule.epochs is unset"

    def problems(self) -> Iterable[Problem]:
        """Stages: each stage's sections merged over the top level must be valid."""
        if self.stages is None:
            return
        if not self.stages:
            yield "stages", "must list at least one stage"
        names = [s.name or f"stage{i + 1}" for i, s in enumerate(self.stages)]
        for i, (stage, name) in enumerate(zip(self.stages, names)):
            if names.index(name) != i:
                yield f"stages[{i}].name", f"duplicate stage name {name!r}"
            for sec, cls in STAGE_SECTIONS.items():
                own = getattr(stage, sec)
                if own:
                    try:
                        validate(cls, deep_merge(to_dict(getattr(self, sec)), own), "")
                    except VibenchError as exc:
                        for line in str(exc).splitlines()[1:]:
                            sub, _, msg = line.strip().partition(": ")
                            yield f"stages[{i}].{sec}.{sub}", msg


def input_settings(cfg: Mapping[str, Any]) -> InputConfig:
    """The ``input`` section of a resolved config (size, mean, std): the one place training,
    extraction, latency and size-dependent models read the image size from."""
    return validate(InputConfig, cfg.get("input") or {}, "input section")
