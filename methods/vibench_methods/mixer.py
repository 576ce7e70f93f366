"""MixER: Mixed Modality-Erased and -Related feature learning (Alehdaghi et al.), MixER.txt.

Architecture (Sec. 3.2, 4.1(c)): a shared backbone ``F_b`` (SAAI without prototype learning:
one fully shared ResNet-50, last stride 1, MPANet's modality-aware module after layer3/layer4)
gives ``z``; the shared head ``F_s`` (the backbone's layer4) gives the modality-*erased* feature
``z^e`` and a clone of layer4 per modality ``F_m`` the modality-*related* feature ``z^r``
(Eq. 6). Losses (Eq. 16)::

    L = L_yme + L_ymr + lambda_m L_m + lambda_o L_o + lambda_f L_f
    L_yme = CE(z^e, y) + L_cc(z^e, y)                       (Eq. 9-10)
    L_ymr = CE(z^r, y') + L_cc(z^r, y'),  y' = 2y (V), 2y+1 (I)   (Eq. 12-14)
    L_m   = CE(W^T GRL(z^e), m)                              (Eq. 11)
    L_o   = E |cos(z^r, z^e)|                                (Eq. 7)
    L_f   = mixed fusion triplet on z^e and z^f = [z^e || z^r] (Eq. 15)

Inference (Sec. 3.2(f)): cross-modal pairs use ``z^e``; same-modality pairs use the fused
``z^f``; :meth:`MixERMethod.distance` picks per pair by modality.

Add-on ("X + MixER", Table 3): :class:`MixERAddon` wraps another method's model. It clones the
base model's last stage (``mixer.addon.split_module``, e.g. AGW's ``layer4``) per modality,
captures that stage's input with a forward-pre-hook and the base's pooled feature (= ``z^e``)
with a forward hook, and adds the MixER heads and losses to the base method's own losses
(``mixer.addon.detach_base: true`` is the "(f)" variant: no MixER gradient into the base).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vibench.engine.api import Method, Stage, StepState, cosine_distance
from vibench.engine.schema import Section, option, to_dict, validate
from vibench.engine.sections import MethodConfig
from vibench.errors import VibenchError
from vibench_methods.layers.backbones import init_info, resnet
from vibench_methods.layers.bnneck import BNNeck
from vibench_methods.layers.gem import GeM
from vibench_methods.layers.grl import GradientReversal, dann_coefficient
from vibench_methods.layers.part_pool import PartWiseMAM
from vibench_methods.layers.resnet_parts import block_channels
from vibench_methods.losses.center_cluster import CenterClusterLoss
from vibench_methods.losses.mixed_fusion_triplet import fuse, mixed_fusion_triplet_loss
from vibench_methods.losses.orthogonal import orthogonality_loss
from vibench_methods.sections import ResNetModel
from vibench.registry import get_method_class, register_method

VISIBLE, INFRARED = 0, 1


@dataclass(frozen=True)
class MixERWeights(Section):
    """Eq. 16 weights (0 drops a term)."""

    erased_id: float = option(1.0, ge=0)
    erased_cc: float = option(1.0, ge=0)
    related_id: float = option(1.0, ge=0)
    related_cc: float = option(1.0, ge=0)
    modality: float = option(0.1, ge=0)
    ortho: float = option(1.0, ge=0)
    fusion: float = option(1.0, ge=0)


@dataclass(frozen=True)
class CenterClusterConfig(Section):
    inter_margin: float = option(0.7, ge=0)
    intra_margin: float = option(0.0, ge=0)


@dataclass(frozen=True)
class FusionTripletConfig(Section):
    margin: float = option(0.3, gt=0)
    metric: Literal["cosine", "euclidean"] = "cosine"


@dataclass(frozen=True)
class GRLConfig(Section):
    """Gradient reversal coefficient: DANN ramp 2/(1+exp(-gamma p)) - 1 times coeff, or constant."""

    schedule: Literal["dann", "constant"] = "dann"
    coeff: float = option(1.0, ge=0)
    gamma: float = option(10.0, gt=0)


@dataclass(frozen=True)
class MixERTest(Section):
    mode: Literal["mixer", "erased", "related"] = "mixer"


@dataclass(frozen=True)
class AddonConfig(Section):
    """"X + MixER": the base method and where the heads attach to its model."""

    base: str = ""
    split_module: str = "layer4"
    erased_module: str = "bnneck"
    erased_from: Literal["input", "output"] = "input"
    detach_base: bool = False
    pool: Literal["avg", "gem"] = "avg"
    dim: int | None = option(None, gt=0, doc="null = the split module's output channels")
    base_options: dict[str, Any] = option(factory=dict, doc="top-level sections replaced for the base method")


@dataclass(frozen=True)
class MixEROptions(Section):
    """The ``mixer`` section. `dual_bnneck` null = true standalone, false as an add-on; `pool`
    null = avg standalone, ``addon.pool`` as an add-on."""

    mam_after: tuple[int, ...] = option((), ge=3, le=4)
    dual_bnneck: bool | None = None
    pool: Literal["avg", "gem"] | None = None
    metric_features: Literal["pool", "bn"] = "pool"
    weights: MixERWeights = MixERWeights()
    center_cluster: CenterClusterConfig = CenterClusterConfig()
    ortho_mode: Literal["abs", "signed", "squared"] = "abs"
    fusion_triplet: FusionTripletConfig = FusionTripletConfig()
    grl: GRLConfig = GRLConfig()
    test: MixERTest = MixERTest()
    addon: AddonConfig | None = None


@dataclass(frozen=True)
class MixERConfig(MethodConfig):
    """Standalone MixER (SAAI baseline)."""

    model: ResNetModel = ResNetModel()
    mixer: MixEROptions = MixEROptions()


@dataclass(frozen=True)
class _MixerSectionOnly(Section):
    """The ``mixer`` section alone: an add-on config's other sections follow the base's schema."""

    mixer: MixEROptions = MixEROptions()


def doubled_labels(labels: torch.Tensor, modalities: torch.Tensor) -> torch.Tensor:
    """Eq. 12: ``y' = 2y`` for visible (modality 0) and ``2y + 1`` for infrared (modality 1)."""
    return 2 * labels + (modalities == INFRARED).to(labels.dtype)


def modality_codes(modalities: Any) -> np.ndarray:
    """'visible'/'infrared' strings (or 0/1) -> int array (0 visible, 1 infrared)."""
    arr = np.asarray(modalities)
    if arr.dtype.kind in "iub":
        return arr.astype(np.int64)
    out = np.empty(arr.shape, dtype=np.int64)
    for i, m in enumerate(arr.reshape(-1)):
        m = str(m)
        if m not in ("visible", "infrared"):
            raise VibenchError(f"unknown modality {m!r}: expected 'visible' or 'infrared'")
        out.reshape(-1)[i] = INFRARED if m == "infrared" else VISIBLE
    return out


def _pool(kind: str) -> nn.Module:
    if kind == "avg":
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
    if kind == "gem":
        return GeM(3.0)
    raise VibenchError(f"mixer pool must be 'avg' or 'gem', got {kind!r}")


class DualBNNeck(nn.Module):
    """SAAI's dual BN-neck: one BatchNorm1d per modality (bias frozen), one shared classifier.
    With ``dual=False`` it is the ordinary BN-neck."""

    def __init__(self, dim: int, num_classes: int, dual: bool = True) -> None:
        super().__init__()
        self.dual = dual
        self.neck = BNNeck(dim, num_classes)
        self.bn_ir = copy.deepcopy(self.neck.bottleneck) if dual else None

    def forward(self, feat: torch.Tensor, modalities: torch.Tensor | int) -> tuple[torch.Tensor, torch.Tensor]:
        """`modalities`: per-row codes (B,) or one int code for the whole batch."""
        if not self.dual:
            return self.neck(feat)
        if isinstance(modalities, int):
            bn = (self.bn_ir if modalities == INFRARED else self.neck.bottleneck)(feat)
            return bn, self.neck.classifier(bn)
        ir = modalities == INFRARED
        bn = torch.empty_like(feat)
        if bool((~ir).any()):
            bn[~ir] = self.neck.bottleneck(feat[~ir])
        if bool(ir.any()):
            bn[ir] = self.bn_ir(feat[ir])
        return bn, self.neck.classifier(bn)


def route_by_modality(branches: nn.ModuleList, x: torch.Tensor, modalities: torch.Tensor | int) -> torch.Tensor:
    """Run ``branches[m]`` on the rows of modality m (0 visible, 1 infrared) and reassemble
    (`modalities` may be one int code for the whole batch)."""
    if isinstance(modalities, int):
        return branches[modalities](x)
    outs: dict[int, torch.Tensor] = {}
    for m in (VISIBLE, INFRARED):
        sel = modalities == m
        if bool(sel.any()):
            outs[m] = branches[m](x[sel])
    ref = next(iter(outs.values()))
    out = ref.new_empty((x.shape[0],) + tuple(ref.shape[1:]))
    for m, val in outs.items():
        out[modalities == m] = val
    return out


class MixERHeads(nn.Module):
    """The reusable MixER part: modality-related branches ``F_m`` (a clone of ``last_stage`` per
    modality) with pooling, a BN-neck and the 2C-way doubled-label classifier (Eq. 12-13), and the
    modality classifier ``W in R^{d x 2}`` behind a gradient reversal layer (Eq. 11)."""

    def __init__(self, last_stage: nn.Module, dim: int, num_classes: int, pool: str = "avg", dual_bnneck: bool = False) -> None:
        super().__init__()
        self.related = nn.ModuleList([copy.deepcopy(last_stage), copy.deepcopy(last_stage)])
        self.pool = _pool(pool)
        self.related_neck = DualBNNeck(dim, 2 * num_classes, dual_bnneck)
        self.grl = GradientReversal(1.0)
        self.modality_classifier = nn.Linear(dim, 2)

    def forward(self, z_map: torch.Tensor, z_e: torch.Tensor, modalities: torch.Tensor) -> dict[str, torch.Tensor]:
        """z_map: input of the last stage (B, C, H, W); z_e: the erased pooled feature (B, d)."""
        r_pool = self.pool(route_by_modality(self.related, z_map, modalities))
        r_bn, r_logits = self.related_neck(r_pool, modalities)
        return {
            "related_pool": r_pool,
            "related_bn": r_bn,
            "related_logits": r_logits,
            "modality_logits": self.modality_classifier(self.grl(z_e)),
        }

    def embed_related(self, z_map: torch.Tensor, modalities: torch.Tensor | int) -> torch.Tensor:
        return self.related_neck(self.pool(route_by_modality(self.related, z_map, modalities)), modalities)[0]


class MixERLoss(nn.Module):
    """The MixER terms of Eq. 16 (the erased identity CE is optional so an add-on can keep the
    base method's own identity loss). Returns a dict of weighted terms."""

    def __init__(self, opts: MixEROptions) -> None:
        super().__init__()
        self.w = to_dict(opts.weights)
        self.cc = CenterClusterLoss(opts.center_cluster.inter_margin, opts.center_cluster.intra_margin)
        self.ortho_mode = opts.ortho_mode
        self.fusion_margin, self.fusion_metric = opts.fusion_triplet.margin, opts.fusion_triplet.metric

    def forward(
        self,
        *,
        labels: torch.Tensor,
        modalities: torch.Tensor,
        erased: torch.Tensor,
        related: torch.Tensor,
        related_logits: torch.Tensor,
        modality_logits: torch.Tensor,
        erased_logits: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        y2 = doubled_labels(labels, modalities)
        out: dict[str, torch.Tensor] = {}
        if erased_logits is not None and self.w["erased_id"]:
            out["erased_id"] = self.w["erased_id"] * F.cross_entropy(erased_logits.float(), labels)
        if self.w["erased_cc"]:
            out["erased_cc"] = self.w["erased_cc"] * self.cc(erased, labels)
        if self.w["related_id"]:
            out["related_id"] = self.w["related_id"] * F.cross_entropy(related_logits.float(), y2)
        if self.w["related_cc"]:
            out["related_cc"] = self.w["related_cc"] * self.cc(related, y2)
        if self.w["modality"]:
            out["modality"] = self.w["modality"] * F.cross_entropy(modality_logits.float(), modalities)
        if self.w["ortho"]:
            out["ortho"] = self.w["ortho"] * orthogonality_loss(related, erased, self.ortho_mode)
        if self.w["fusion"]:
            out["fusion"] = self.w["fusion"] * mixed_fusion_triplet_loss(
                erased, fuse(erased, related), labels, modalities, self.fusion_margin, self.fusion_metric)
        return out


def mixed_distance(
    q_e: torch.Tensor, q_r: torch.Tensor | None, g_e: torch.Tensor, g_r: torch.Tensor | None,
    q_mod: np.ndarray, g_mod: np.ndarray, mode: str = "mixer",
) -> torch.Tensor:
    """Lower-is-closer cosine distances: ``mode="mixer"`` uses -cos(z^e) for cross-modal pairs and
    -cos(z^f) for same-modality pairs; "erased" / "related" use one feature everywhere
    (MixER(E) / MixER(R) rows)."""
    cos = cosine_distance
    if mode == "erased":
        return cos(q_e, g_e)
    if q_r is None or g_r is None:
        raise VibenchError("MixER distance needs the 'related' embeddings (mode 'mixer' or 'related')")
    if mode == "related":
        return cos(q_r, g_r)
    if mode != "mixer":
        raise VibenchError(f"mixer test.mode must be 'mixer', 'erased' or 'related', got {mode!r}")
    d_e = cos(q_e, g_e)
    d_f = -(fuse(q_e, q_r) @ fuse(g_e, g_r).T)
    same = torch.from_numpy(modality_codes(q_mod)[:, None] == modality_codes(g_mod)[None, :]).to(d_e.device)
    return torch.where(same, d_f, d_e)


# ------------------------------------------------------------------------------------------------
# Standalone MixER on the SAAI baseline (without prototype learning)
# ------------------------------------------------------------------------------------------------


def _resnet_trunk(m: ResNetModel) -> nn.Module:
    """The shared torchvision ResNet (``model.backbone``, ``model.last_stride``, ``model.weights``)."""
    net = resnet(m.backbone, last_stride=m.last_stride, weights=m.pretrained)
    net.init_info = {"backbone": m.backbone, **init_info(m.pretrained)}
    return net


class MixER(nn.Module):
    """SAAI-style shared ResNet (stem..layer3 = F_b, layer4 = F_s) + MixER heads."""

    def __init__(self, num_classes: int, model: ResNetModel, opts: MixEROptions) -> None:
        super().__init__()
        r = _resnet_trunk(model)
        self.stem = nn.Sequential(r.conv1, r.bn1, r.relu, r.maxpool)
        self.layer1, self.layer2, self.layer3 = r.layer1, r.layer2, r.layer3
        dim = block_channels(r.layer4)
        mam = set(opts.mam_after)
        self.mam3 = PartWiseMAM(block_channels(r.layer3), parts=1) if 3 in mam else nn.Identity()
        # F_s: layer4 (+ MAM); the modality-related heads clone exactly this stage
        self.shared_head = nn.Sequential(r.layer4, PartWiseMAM(dim, parts=1) if 4 in mam else nn.Identity())
        pool = opts.pool or "avg"
        self.pool = _pool(pool)
        dual = True if opts.dual_bnneck is None else opts.dual_bnneck
        self.erased_neck = DualBNNeck(dim, num_classes, dual)
        self.heads = MixERHeads(self.shared_head, dim, num_classes, pool, dual)
        self.dim = dim
        self.init_info = getattr(r, "init_info", {"kind": "random"})

    def backbone(self, x: torch.Tensor) -> torch.Tensor:
        """F_b: z (B, C3, H, W)."""
        return self.mam3(self.layer3(self.layer2(self.layer1(self.stem(x)))))

    def forward(self, x: torch.Tensor, modalities: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.backbone(x)
        e_pool = self.pool(self.shared_head(z))  # z^e (Eq. 6)
        e_bn, e_logits = self.erased_neck(e_pool, modalities)
        out = self.heads(z, e_pool, modalities)  # z^r, modality classifier
        out.update({"erased_pool": e_pool, "erased_bn": e_bn, "erased_logits": e_logits})
        return out

    @torch.no_grad()
    def embed(self, x: torch.Tensor, modalities: torch.Tensor | int, related: bool = True) -> dict[str, torch.Tensor]:
        z = self.backbone(x)
        e_bn, _ = self.erased_neck(self.pool(self.shared_head(z)), modalities)
        out = {"feat": e_bn}
        if related:
            out["related"] = self.heads.embed_related(z, modalities)
        return out


def _grl_coeff(opts: MixEROptions, state: StepState) -> float:
    g = opts.grl
    if g.schedule == "dann":
        return dann_coefficient(state.progress, g.gamma, g.coeff)
    return g.coeff


def _labels_mods(batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels and modality codes of the batch rows in the order [visible; infrared]."""
    labels = torch.cat([batch["vis_label"], batch["ir_label"]], 0)
    mods = torch.cat([torch.zeros_like(batch["vis_label"]), torch.ones_like(batch["ir_label"])], 0)
    return labels, mods


def _batch(batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    labels, mods = _labels_mods(batch)
    return torch.cat([batch["vis"], batch["ir"]], 0), labels, mods


def _mod_code(modality: str) -> int:
    return int(modality_codes(np.array([modality]))[0])


@register_method("mixer")
class MixERMethod(Method):
    """MixER (standalone on the SAAI baseline, or ``mixer.addon`` on another method)."""

    paper = "Alehdaghi et al., MixER: From Cross-Modal to Mixed-Modal Visible-Infrared Re-Identification"
    config_dir = Path(__file__).resolve().parent / "configs" / "mixer"

    config_schema = MixERConfig

    @classmethod
    def resolve_config(cls, raw: Mapping[str, Any], source: str,
                       origin: Callable[[str], str] | None = None) -> dict[str, Any]:
        """Standalone: :class:`MixERConfig`. Add-on (``mixer.addon``): the ``mixer`` section by
        :class:`MixEROptions`, every other section by the base method's own schema."""
        addon = (raw.get("mixer") or {}).get("addon") if isinstance(raw.get("mixer"), Mapping) else None
        if not addon:
            return super().resolve_config(raw, source, origin)
        mixer = to_dict(validate(_MixerSectionOnly, {"mixer": raw["mixer"]}, source, origin))
        base_name = mixer["mixer"]["addon"]["base"]
        if not base_name or base_name == "mixer":
            raise VibenchError(f"config {source}: mixer.addon.base must name another method, got {base_name!r}")
        base = get_method_class(base_name)
        rest = {k: v for k, v in raw.items() if k != "mixer"}
        resolved = base.resolve_config({**rest, "method": base_name}, source, origin)
        return {**resolved, "method": raw.get("method", "mixer"), **mixer}

    def __init__(self, cfg: dict[str, Any], dataset: str) -> None:
        if (cfg.get("mixer") or {}).get("addon"):
            self._init_addon(cfg, dataset)
        else:
            super().__init__(cfg, dataset)
        self.loss = MixERLoss(self.opts)
        addon = self.opts.addon
        self.base: Method | None = None
        if addon is not None:
            base_cfg = {k: v for k, v in cfg.items() if k != "mixer"}
            base_cfg.update(copy.deepcopy(addon.base_options))
            base_cfg["method"] = addon.base
            self.base = get_method_class(addon.base)(base_cfg, dataset)

    @property
    def opts(self) -> MixEROptions:
        return self.config.mixer

    def _init_addon(self, cfg: dict[str, Any], dataset: str) -> None:
        """An add-on config: only the ``mixer`` section is this method's (the base checks the rest)."""
        self.cfg, self.dataset = cfg, dataset
        self.config = validate(_MixerSectionOnly, {"mixer": cfg["mixer"]}, "of mixer")

    # ---- model -----------------------------------------------------------------------------
    def build_model(self, num_classes: int) -> nn.Module:
        if self.base is not None:
            return MixERAddon(self.base.build_model(num_classes), num_classes, self.opts)
        return MixER(num_classes, self.config.model, self.opts)

    def stages(self) -> list[Stage]:
        return self.base.stages() if self.base is not None else super().stages()

    # ---- training --------------------------------------------------------------------------
    def training_step(self, model: nn.Module, batch: dict[str, torch.Tensor], state: StepState) -> dict[str, torch.Tensor]:
        coeff = _grl_coeff(self.opts, state)
        if self.base is not None:
            return model.training_step(self.base, self.loss, batch, state, coeff)
        x, labels, mods = _batch(batch)
        model.heads.grl.coeff = coeff
        out = model(x, mods)
        pooled = self.opts.metric_features == "pool"
        e = out["erased_pool"] if pooled else out["erased_bn"]
        r = out["related_pool"] if pooled else out["related_bn"]
        return self.loss(labels=labels, modalities=mods, erased=e, related=r, related_logits=out["related_logits"],
                         modality_logits=out["modality_logits"], erased_logits=out["erased_logits"])

    # ---- inference -------------------------------------------------------------------------
    def _test_mode(self) -> str:
        return self.opts.test.mode

    @torch.no_grad()
    def embed(self, model: nn.Module, images: torch.Tensor, modality: str) -> dict[str, torch.Tensor]:
        mods = _mod_code(modality)  # one modality per embed call: no data-dependent routing
        related = self._test_mode() != "erased"
        if self.base is not None:
            return model.embed(self.base, images, modality, mods, related)
        return model.embed(images, mods, related)

    def distance(self, query: dict[str, torch.Tensor], gallery: dict[str, torch.Tensor],
                 q_modalities: np.ndarray, g_modalities: np.ndarray) -> torch.Tensor:
        """Per pair: -cos(z^e) across modalities, -cos(z^f) within a modality (Sec. 3.2(f))."""
        return mixed_distance(query["feat"], query.get("related"), gallery["feat"], gallery.get("related"),
                              q_modalities, g_modalities, self._test_mode())


# ------------------------------------------------------------------------------------------------
# "X + MixER": the heads and losses on top of another method's model
# ------------------------------------------------------------------------------------------------


class MixERAddon(nn.Module):
    """A base method's model plus :class:`MixERHeads`.

    ``split_module`` names the base's last stage (its input is z, its clone per modality is
    F_m); ``erased_module`` names the module whose output (``erased_from: output``) or input
    (``erased_from: input``) is the base's pooled feature z^e (e.g. AGW's BN-neck input).
    """

    def __init__(self, base: nn.Module, num_classes: int, opts: MixEROptions) -> None:
        super().__init__()
        addon = opts.addon
        assert addon is not None
        self.base = base
        self.split_name, self.erased_name = addon.split_module, addon.erased_module
        self.erased_from, self.detach = addon.erased_from, addon.detach_base
        self.metric_features = opts.metric_features
        modules = dict(base.named_modules())
        for key, name in (("split_module", self.split_name), ("erased_module", self.erased_name)):
            if name not in modules:
                raise VibenchError(
                    f"mixer.addon.{key} {name!r} is not a module of the base model; "
                    f"top-level modules: {', '.join(n for n, _ in base.named_children())}")
        split = modules[self.split_name]
        dim = addon.dim or block_channels(split)
        self.heads = MixERHeads(split, dim, num_classes, opts.pool or addon.pool, bool(opts.dual_bnneck))
        self.init_info = getattr(base, "init_info", {"kind": "random"})
        self._captured: dict[str, list[torch.Tensor]] = {"z": [], "e": []}
        # hooks go on after MixERHeads deep-copied the stage, so the clones carry no hooks
        modules[self.split_name].register_forward_pre_hook(self._grab_z)
        modules[self.erased_name].register_forward_hook(self._grab_e)
        self._capture = False

    def _grab_z(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        if self._capture:
            self._captured["z"].append(args[0])

    def _grab_e(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        if self._capture:
            val = args[0] if self.erased_from == "input" else output
            if isinstance(val, (tuple, list)):
                val = val[0]
            self._captured["e"].append(val)

    def _run_captured(self, fn: Any) -> tuple[Any, torch.Tensor, torch.Tensor]:
        self._captured = {"z": [], "e": []}
        self._capture = True
        try:
            result = fn()
        finally:
            self._capture = False
        if not self._captured["z"] or not self._captured["e"]:
            raise VibenchError(f"mixer add-on: the base model never ran {self.split_name!r} / {self.erased_name!r}")
        z = torch.cat(self._captured["z"], 0)
        e = torch.cat(self._captured["e"], 0)
        return result, z, e

    def training_step(self, base_method: Method, loss: MixERLoss, batch: dict[str, torch.Tensor], state: StepState,
                      coeff: float) -> dict[str, torch.Tensor]:
        """The base method's loss terms plus the MixER terms. The base must forward the visible
        images before the infrared ones (the captured rows are read in that order)."""
        terms, z, e = self._run_captured(lambda: base_method.training_step(self.base, batch, state))
        labels, mods = _labels_mods(batch)
        if z.shape[0] != labels.shape[0] or e.shape[0] != labels.shape[0]:
            raise VibenchError(
                f"mixer add-on: captured {z.shape[0]} / {e.shape[0]} rows for a batch of {labels.shape[0]} images; "
                "the base model must forward each training image exactly once")
        if self.detach:
            z, e = z.detach(), e.detach()
        self.heads.grl.coeff = coeff
        out = self.heads(z, e, mods)
        r = out["related_pool"] if self.metric_features == "pool" else out["related_bn"]
        mix = loss(labels=labels, modalities=mods, erased=e, related=r, related_logits=out["related_logits"],
                   modality_logits=out["modality_logits"], erased_logits=None)
        return {**{f"base_{k}": v for k, v in terms.items()}, **{f"mixer_{k}": v for k, v in mix.items()}}

    @torch.no_grad()
    def embed(self, base_method: Method, images: torch.Tensor, modality: str, mods: int,
              related: bool) -> dict[str, torch.Tensor]:
        emb, z, _ = self._run_captured(lambda: base_method.embed(self.base, images, modality))
        out = dict(emb)
        if related:
            out["related"] = self.heads.embed_related(z[: images.shape[0]], mods)
        return out
