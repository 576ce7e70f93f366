"""BIT: Matching-based Bi-directional Interaction Transformation network (Xu & Niu, CVPR 2026).

Encoder = the PMT ViT (:mod:`vibench_methods.pmt`), trained in stage 1 with identity + triplet
losses only (Sec. 3.5; ``bit.stage1: pmt`` = PMT's full recipe instead), frozen in stage 2. Decoder = the
initial bi-directional cross-attention (Eq. 2), T Bi-directional Cross Interaction blocks
(Eq. 3-4, :mod:`vibench_methods.layers.cross_attention`) and Query Aware Scoring (Eq. 6-12),
trained with the pairwise BCE (Eq. 13) plus lambda * the aggregation contrastive loss (Eq. 5, 14).

Inference is coarse-to-fine (Sec. 4.5): :meth:`BITMethod.distance` ranks by the backbone
embedding; :meth:`BITMethod.refine` re-scores the top-K (50) candidates of each query *after*
the protocol's exclusion and returns a distance matrix whose order is: the candidates sorted by
the pair score Psi (descending), then every other gallery item in coarse order.
"""
from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Literal

import numpy as np
import torch
from torch import nn

from vibench.engine.api import Method, Stage, StepState
from vibench.engine.schema import Problem, Section, option, to_dict
from vibench.errors import VibenchError
from vibench.registry import get_method_class, register_method
from vibench_methods.layers.cross_attention import BCIBlock, BiCrossAttention
from vibench_methods.losses.contrastive import aggregation_contrastive_loss
from vibench_methods.losses.pair_bce import expand_pairs, pair_bce_loss, pair_labels
from vibench_methods.pmt import PMTOptions, ViTConfig

# ------------------------------------------------------------------------------------------------
# Query Aware Scoring (Sec. 3.4, Alg. 1)
# ------------------------------------------------------------------------------------------------


def patch_similarities(f_v: torch.Tensor, f_i: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 6: ``S_vi = s(F_v F_i^T / sqrt(C))``, ``S_iv = s(F_i F_v^T / sqrt(C))``, row softmax.

    f_v, f_i: (P, N, C) -> S_vi (P, N_v, N_i), S_iv (P, N_i, N_v)."""
    logits = f_v.float() @ f_i.float().transpose(-2, -1) / (f_v.shape[-1] ** 0.5)
    return logits.softmax(dim=-1), logits.transpose(-2, -1).softmax(dim=-1)


def topk_mask(s: torch.Tensor, k: int) -> torch.Tensor:
    """Eq. 7 as a mask: ``mask[..., p, q]`` is True iff q is among the top-k of row p."""
    k = min(k, s.shape[-1])
    idx = s.topk(k, dim=-1).indices
    return torch.zeros_like(s, dtype=torch.bool).scatter_(-1, idx, True)


def mutual_matches(s_vi: torch.Tensor, s_iv: torch.Tensor, k: int) -> torch.Tensor:
    """Eq. 8, reciprocal patch mining: ``M[p, q]`` iff q in R_{v-i}[p] and p in R_{i-v}[q]."""
    return topk_mask(s_vi, k) & topk_mask(s_iv, k).transpose(-2, -1)


def smooth_complement(s_vi: torch.Tensor, mutual: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 9 and 11: the match set M' and its weights.

    Returns (selected (P, N, N) bool = M', weights (P, N, N) = 1 on M, alpha on the added
    ``(p, argmax_q S_vi[p])`` pairs of visible patches without a mutual match, 0 elsewhere)."""
    lonely = ~mutual.any(dim=-1, keepdim=True)  # visible patches with M_p empty
    best = torch.zeros_like(mutual).scatter_(-1, s_vi.argmax(dim=-1, keepdim=True), True)
    added = best & lonely
    selected = mutual | added
    weights = mutual.to(s_vi.dtype) + alpha * added.to(s_vi.dtype)
    return selected, weights


def patch_scores(s_vi: torch.Tensor, s_iv: torch.Tensor, k: int, alpha: float) -> torch.Tensor:
    """Eq. 8-11: ``S^[p] = 1/|M'_p| sum_{q in M'_p} w_pq S_vi[p, q]`` -> (P, N_v).

    Gradients flow through the selected similarities; the selection itself is piecewise constant."""
    mutual = mutual_matches(s_vi, s_iv, k)
    selected, weights = smooth_complement(s_vi, mutual, alpha)
    return (weights * s_vi).sum(-1) / selected.sum(-1).clamp_min(1).to(s_vi.dtype)


class CASM(nn.Module):
    """Confidence-Aware Scoring Module (Eq. 12): a small MLP N -> hidden -> 1 on the patch-level
    score vector; ``Psi = sigmoid(CASM(S^))``. Hidden width and activation are guesses."""

    def __init__(self, n_tokens: int, hidden: int = 256) -> None:
        super().__init__()
        self.fc1 = nn.Linear(n_tokens, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, 1)

    def forward(self, s_hat: torch.Tensor) -> torch.Tensor:
        """(P, N) -> pre-sigmoid logit (P,)."""
        return self.fc2(self.act(self.fc1(s_hat))).squeeze(-1)


class QueryAwareScoring(nn.Module):
    """QA Scoring (Alg. 1): Eq. 6 similarities, Eq. 7 top-k, Eq. 8-9 reciprocal mining with smooth
    complement, Eq. 10-11 weighted patch scores, Eq. 12 CASM. Returns the logit of Psi."""

    def __init__(self, n_tokens: int, topk: int = 3, alpha: float = 0.2, hidden: int = 256) -> None:
        super().__init__()
        self.topk = topk
        self.alpha = alpha
        self.casm = CASM(n_tokens, hidden)

    def forward(self, f_v: torch.Tensor, f_i: torch.Tensor) -> torch.Tensor:
        # fp32 even under AMP: the top-k / argmax selections must not depend on bf16 rounding
        with torch.autocast(device_type=f_v.device.type, enabled=False):
            s_vi, s_iv = patch_similarities(f_v.float(), f_i.float())
            s_hat = patch_scores(s_vi, s_iv, self.topk, self.alpha)
            return self.casm(s_hat)


# ------------------------------------------------------------------------------------------------
# Decoder (BCI + QA Scoring)
# ------------------------------------------------------------------------------------------------


class BITDecoder(nn.Module):
    """Decoder of BIT for P visible-infrared token pairs (each (P, N, C_in)).

    ``in_dim != dim`` adds a Linear projection per stream (``decoder_dim`` option, narrower than
    the backbone); ``dim == in_dim`` (768) is the literal design. Then Eq. 2 (optional residual),
    T BCI blocks (Eq. 3-4), an optional final LayerNorm per stream, QA scoring (Eq. 6-12).
    """

    def __init__(
        self,
        in_dim: int,
        n_tokens: int,
        dim: int | None = None,
        depth: int = 3,
        heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        out_proj: bool = True,
        initial_layer: bool = True,
        initial_residual: bool = True,
        final_norm: bool = False,
        topk: int = 3,
        alpha: float = 0.2,
        casm_hidden: int = 256,
        drop: float = 0.0,
        init_std: float = 0.02,
    ) -> None:
        super().__init__()
        dim = dim or in_dim
        self.in_dim, self.dim, self.n_tokens = in_dim, dim, n_tokens
        self.proj_v = nn.Linear(in_dim, dim) if dim != in_dim else nn.Identity()
        self.proj_i = nn.Linear(in_dim, dim) if dim != in_dim else nn.Identity()
        self.initial = BiCrossAttention(dim, heads, qkv_bias, out_proj, initial_residual) if initial_layer else None
        self.blocks = nn.ModuleList(BCIBlock(dim, heads, mlp_ratio, qkv_bias, out_proj, drop) for _ in range(depth))
        self.norm_v = nn.LayerNorm(dim) if final_norm else nn.Identity()
        self.norm_i = nn.LayerNorm(dim) if final_norm else nn.Identity()
        self.qa = QueryAwareScoring(n_tokens, topk, alpha, casm_hidden)
        self._init(init_std)

    def _init(self, std: float) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def interact(self, t_v: torch.Tensor, t_i: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Paired tokens -> F'_v, F'_i (P, N, dim): projections, Eq. 2, T x Eq. 3-4."""
        f_v, f_i = self.proj_v(t_v), self.proj_i(t_i)
        if self.initial is not None:
            f_v, f_i = self.initial(f_v, f_i)
        for blk in self.blocks:
            f_v, f_i = blk(f_v, f_i)
        return self.norm_v(f_v), self.norm_i(f_i)

    def forward(self, t_v: torch.Tensor, t_i: torch.Tensor) -> dict[str, torch.Tensor]:
        """Returns 'logit' (P,) of Psi, 'pooled_v' / 'pooled_i' (P, dim) token means of F' (for L_AC)."""
        f_v, f_i = self.interact(t_v, t_i)
        return {"logit": self.qa(f_v, f_i), "pooled_v": f_v.mean(1), "pooled_i": f_i.mean(1)}


# ------------------------------------------------------------------------------------------------
# The full model and the Method
# ------------------------------------------------------------------------------------------------


class BIT(nn.Module):
    """The PMT encoder (stage 1; frozen in stage 2) and the BIT decoder."""

    def __init__(self, encoder: nn.Module, decoder: BITDecoder, use_cls_token: bool = False) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.use_cls_token = use_cls_token
        self.init_info = dict(getattr(encoder, "init_info", {"kind": "random"}))

    def tokens(self, images: torch.Tensor) -> torch.Tensor:
        """Encoder patch tokens (B, N, C) (with the CLS token first when ``use_cls_token``)."""
        cls, patches = self.encoder.encode(images)
        if self.use_cls_token:
            return torch.cat([cls.unsqueeze(1), patches], dim=1)
        return patches


@dataclass(frozen=True)
class DecoderConfig(Section):
    """The BIT decoder (Eq. 2-4): width (null = the encoder's), depth T, heads, MLP, CASM."""

    dim: int | None = option(None, gt=0)
    depth: int = option(3, gt=0)
    heads: int = option(12, gt=0)
    mlp_ratio: float = option(4.0, gt=0)
    qkv_bias: bool = True
    out_proj: bool = True
    initial_layer: bool = True
    initial_residual: bool = True
    final_norm: bool = False
    casm_hidden: int = option(256, gt=0)
    drop: float = option(0.0, ge=0, lt=1)
    init_std: float = option(0.02, gt=0)

    def problems(self) -> Iterable[Problem]:
        if self.dim is not None and self.dim % self.heads:
            yield "dim", f"{self.dim} must be divisible by bit.decoder.heads {self.heads}"


@dataclass(frozen=True)
class ACConfig(Section):
    """The aggregation contrastive loss (Eq. 5, 14): weight lambda, temperature tau."""

    weight: float = option(0.6, ge=0)
    tau: float = option(1.0 / 16.0, gt=0)
    cross_modal_positives: bool = True


@dataclass(frozen=True)
class RefineConfig(Section):
    """Coarse-to-fine inference: K candidates per query re-scored by the decoder (paper: 50)."""

    k: int = option(50, gt=0)
    batch_pairs: int = option(256, gt=0)
    enabled: bool = True
    cache_pairs: int = option(2_000_000, ge=0, doc="0 = no cache of pair scores")


@dataclass(frozen=True)
class BITOptions(Section):
    decoder: DecoderConfig = DecoderConfig()
    topk: int = option(3, gt=0)
    alpha: float = option(0.2, ge=0)
    ac: ACConfig = ACConfig()
    pair_pos_weight: float | None = option(None, gt=0)
    use_cls_token: bool = False
    decoder_stages: tuple[str, ...] = ("decoder",)
    refine: RefineConfig = RefineConfig()
    token_dtype: Literal["float16", "bfloat16", "float32"] = "float16"
    stage1: Literal["id_triplet", "pmt"] = option(
        "id_triplet", doc="encoder-stage recipe: id_triplet = BIT Sec. 3.5 (identity + triplet only); "
        "pmt = PMT's full recipe (grayscale epochs bit.pmt, DCL and MSEL weights loss.*)")
    pmt: PMTOptions = PMTOptions()


@dataclass(frozen=True)
class BITConfig(ViTConfig):
    """PMT's encoder sections (model, loss) plus the ``bit`` section; ``bit.pmt`` is the
    encoder stage's ``pmt`` section."""

    bit: BITOptions = BITOptions()


def stage1_pmt_config(cfg: dict[str, Any], opts: BITOptions) -> dict[str, Any]:
    """The PMT config that runs BIT's encoder stage(s).

    ``bit.stage1: id_triplet`` (BIT Sec. 3.5: "identity classification loss and triplet loss", the
    default): PMT's step with the progressive grayscale window off and the DCL / MSEL weights 0, i.e.
    ``L = CE_V + CE_I + Tri([f_V; f_I])`` from the first epoch on. ``pmt``: PMT's recipe as configured
    (``bit.pmt`` window, ``loss.dcl_weight``, ``loss.msel_weight``)."""
    pmt_cfg = {k: copy.deepcopy(v) for k, v in cfg.items() if k != "bit"}
    pmt_cfg["method"] = "pmt"
    if opts.stage1 == "pmt":
        pmt_cfg["pmt"] = to_dict(opts.pmt)
    else:
        pmt_cfg["pmt"] = {"pl_epochs": 0, "gray_stream": False}
        pmt_cfg["loss"] = {**dict(pmt_cfg.get("loss") or {}), "dcl_weight": 0.0, "msel_weight": 0.0}
    return pmt_cfg


def _encoder_grid(encoder: nn.Module, size: tuple[int, int], use_cls: bool) -> tuple[int, int]:
    """(tokens N, width C) of the encoder at input `size`, from one dummy forward."""
    was = encoder.training
    encoder.eval()
    try:
        with torch.no_grad():
            p = next(encoder.parameters())
            cls, patches = encoder.encode(torch.zeros(1, 3, *size, device=p.device, dtype=p.dtype))
    finally:
        encoder.train(was)
    return patches.shape[1] + (1 if use_cls else 0), patches.shape[2]


def _orient(q_tok: torch.Tensor, g_tok: torch.Tensor, q_ir: torch.Tensor, g_ir: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(visible-stream, infrared-stream) tokens for query/gallery pairs: the visible image goes to
    the visible stream and the infrared one to the infrared stream, whichever is the query. For a
    same-modality pair the query keeps its own modality's stream and the gallery item takes the
    other (a guess; BIT only scores cross-modal pairs)."""
    q_in_ir = q_ir.bool().view(-1, 1, 1)
    vis = torch.where(q_in_ir, g_tok, q_tok)
    ir = torch.where(q_in_ir, q_tok, g_tok)
    return vis, ir


def refine_order(distmat: torch.Tensor, candidates: torch.Tensor, valid: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """The coarse-to-fine distance matrix.

    ``candidates`` (nq, K) gallery indices (the K nearest non-excluded items by coarse distance),
    ``valid`` (nq, K) which of them exist, ``scores`` (nq, K) their fine scores (higher = better).
    Candidate r-th by score (ties: coarse order) gets ``lo - (K_valid - r)`` with ``lo`` the row
    minimum, so every candidate sorts before every other item and in descending-score order; all
    other items keep their coarse distance, hence their coarse order.
    """
    out = distmat.clone()
    coarse = torch.gather(distmat, 1, candidates)
    for row in range(distmat.shape[0]):
        v = valid[row]
        if not bool(v.any()):
            continue
        idx, sc, co = candidates[row][v], scores[row][v].double(), coarse[row][v].double()
        # sort by (-score, coarse distance): stable sort on the secondary key, then the primary
        o1 = torch.argsort(co, stable=True)
        o2 = torch.argsort(-sc[o1], stable=True)
        order = idx[o1][o2]
        lo = distmat[row].min()
        k = order.numel()
        out[row, order] = lo - torch.arange(k, 0, -1, device=distmat.device, dtype=distmat.dtype)
    return out


@register_method("bit")
class BITMethod(Method):
    """BIT: stage(s) 1 train the PMT encoder through PMT's training step with the config of
    :func:`stage1_pmt_config` (``bit.stage1``); the stages listed in ``bit.decoder_stages`` freeze
    it (``freeze: [encoder]`` in the config) and train the decoder."""

    paper = "Xu & Niu, BIT: Matching-based Bi-directional Interaction Transformation Network for VI-ReID, CVPR 2026"
    config_dir = Path(__file__).resolve().parent / "configs" / "bit"

    @property
    def refine_k(self) -> int:
        """K of the coarse-to-fine inference: candidates re-scored per query (paper: 50)."""
        return self.opts.refine.k

    config_schema = BITConfig

    def __init__(self, cfg: dict[str, Any], dataset: str) -> None:
        super().__init__(cfg, dataset)
        self.opts: BITOptions = self.config.bit

        self.pmt = get_method_class("pmt")(stage1_pmt_config(cfg, self.opts), dataset)

    # ---- model -----------------------------------------------------------------------------
    def build_model(self, num_classes: int) -> nn.Module:
        encoder = self.pmt.build_model(num_classes)
        use_cls = self.opts.use_cls_token
        n_tokens, width = _encoder_grid(encoder, self.config.input.size, use_cls)
        d = self.opts.decoder
        dim = d.dim or width
        if dim % d.heads:
            raise VibenchError(f"bit.decoder.dim {dim} (the encoder width) must be divisible by bit.decoder.heads {d.heads}")
        decoder = BITDecoder(
            in_dim=width, n_tokens=n_tokens, dim=dim, depth=d.depth, heads=d.heads, mlp_ratio=d.mlp_ratio,
            qkv_bias=d.qkv_bias, out_proj=d.out_proj, initial_layer=d.initial_layer,
            initial_residual=d.initial_residual, final_norm=d.final_norm, topk=self.opts.topk,
            alpha=self.opts.alpha, casm_hidden=d.casm_hidden, drop=d.drop, init_std=d.init_std,
        )
        return BIT(encoder, decoder, use_cls)

    def stages(self) -> list[Stage]:
        """The config's stages; with ``bit.stage1: pmt`` the first one gets PMT's grayscale window."""
        return self.pmt.stages()

    def _is_decoder_stage(self, stage: str) -> bool:
        return stage in set(self.opts.decoder_stages)

    def param_groups(self, model: nn.Module, stage: Stage) -> list[dict[str, Any]]:
        if self._is_decoder_stage(stage.name):
            return super().param_groups(model, stage)
        # encoder stages: PMT's own grouping over the encoder (the decoder is not trained there)
        groups = self.pmt.param_groups(model.encoder, stage)
        for g in groups:
            if "names" in g:
                g["names"] = [f"encoder.{n}" for n in g["names"]]
        return groups

    def on_stage_start(self, model: nn.Module, stage: Stage) -> None:
        if not self._is_decoder_stage(stage.name):
            self.pmt.on_stage_start(model.encoder, stage)

    def set_train_mode(self, model: nn.Module, stage: Stage) -> None:
        super().set_train_mode(model, stage)
        if self._is_decoder_stage(stage.name):
            model.encoder.eval()  # frozen encoder: no dropout / drop-path
        else:
            self.pmt.set_train_mode(model.encoder, stage)

    # ---- training --------------------------------------------------------------------------
    def training_step(self, model: nn.Module, batch: dict[str, torch.Tensor], state: StepState) -> dict[str, torch.Tensor]:
        if not self._is_decoder_stage(state.stage):
            return self.pmt.training_step(model.encoder, batch, state)
        return self.decoder_losses(model, batch)

    def decoder_losses(self, model: BIT, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Stage 2: L_pair (Eq. 13) over the B_v x B_i pairs + lambda * L_AC (Eq. 5, 14)."""
        with torch.no_grad():
            t_v = model.tokens(batch["vis"]).float()
            t_i = model.tokens(batch["ir"]).float()
        p_v, p_i = expand_pairs(t_v, t_i)
        out = model.decoder(p_v, p_i)
        y = pair_labels(batch["vis_label"], batch["ir_label"])
        terms = {"pair": pair_bce_loss(out["logit"], y, self.opts.pair_pos_weight)}
        ac = self.opts.ac
        if ac.weight:
            lv, li = expand_pairs(batch["vis_label"], batch["ir_label"])
            feats = torch.cat([out["pooled_v"], out["pooled_i"]], 0)
            labels = torch.cat([lv, li], 0)
            mods = torch.cat([torch.zeros_like(lv), torch.ones_like(li)], 0)
            terms["ac"] = ac.weight * aggregation_contrastive_loss(feats, labels, mods, ac.tau, ac.cross_modal_positives)
        return terms

    # ---- inference -------------------------------------------------------------------------
    @torch.no_grad()
    def embed(self, model: nn.Module, images: torch.Tensor, modality: str) -> dict[str, torch.Tensor]:
        """'feat' = the PMT embedding (coarse ranking), 'tokens' = the flattened encoder tokens
        (N, n_tokens * C) in ``bit.token_dtype``, 'ir' = 1.0 for infrared images (N, 1), so
        :meth:`refine` can run the decoder from stored embeddings without the images."""
        cls, patches = model.encoder.encode(images)  # one encoder pass for both embeddings
        feat = model.encoder.neck.bottleneck(cls)  # PMT's test embedding l2norm(BN(CLS))
        out = {"feat": nn.functional.normalize(feat.float(), dim=1), "pool": nn.functional.normalize(cls.float(), dim=1)}
        tok = torch.cat([cls.unsqueeze(1), patches], 1) if model.use_cls_token else patches
        dtype = getattr(torch, self.opts.token_dtype)
        out["tokens"] = tok.reshape(tok.shape[0], -1).to(dtype)
        out["ir"] = torch.full((images.shape[0], 1), 1.0 if modality == "infrared" else 0.0, device=images.device)
        return out

    def distance(self, query: dict[str, torch.Tensor], gallery: dict[str, torch.Tensor],
                 q_modalities: np.ndarray, g_modalities: np.ndarray) -> torch.Tensor:
        """Coarse stage: the PMT (backbone) distance."""
        return self.pmt.distance({"feat": query["feat"]}, {"feat": gallery["feat"]}, q_modalities, g_modalities)

    @torch.no_grad()
    def pair_scores(self, model: BIT, q_tok: torch.Tensor, g_tok: torch.Tensor, q_ir: torch.Tensor,
                    g_ir: torch.Tensor, qi: torch.Tensor, gi: torch.Tensor) -> torch.Tensor:
        """Decoder logits of Psi for the pairs (q_tok[qi[p]], g_tok[gi[p]]), ``bit.refine.batch_pairs``
        pairs per decoder call (tokens stay where they are stored; each chunk moves to the model)."""
        dev = next(model.decoder.parameters()).device
        bs = self.opts.refine.batch_pairs
        out = []
        for s in range(0, qi.numel(), bs):
            a, b = qi[s:s + bs], gi[s:s + bs]
            v, i = _orient(q_tok[a].to(dev).float(), g_tok[b].to(dev).float(), q_ir[a].to(dev), g_ir[b].to(dev))
            out.append(model.decoder(v, i)["logit"].float())
        return torch.cat(out) if out else torch.zeros(0, device=dev)

    def _cached_scores(self, model: BIT, q_tok: torch.Tensor, g_tok: torch.Tensor, q_ir: torch.Tensor,
                       g_ir: torch.Tensor, qi: torch.Tensor, gi: torch.Tensor) -> torch.Tensor:
        """:meth:`pair_scores` with a cache keyed by the content of the two token rows and their
        modality flags (``bit.refine.cache_pairs`` entries, 0 = off). Protocols and gallery trials
        of one cell re-rank mostly the same pairs; the decoder is deterministic in eval mode, so a
        cached score is the score the decoder would return."""
        limit = self.opts.refine.cache_pairs
        if limit <= 0:
            return self.pair_scores(model, q_tok, g_tok, q_ir, g_ir, qi, gi)

        cache = self.__dict__.setdefault("_psi_cache", {})
        with torch.no_grad():  # a weight fingerprint guards against a new model at a reused id
            weights = float(sum(p.detach().double().sum() for p in model.decoder.parameters()))
        owner = (id(model), model.decoder.n_tokens, model.decoder.in_dim, weights)
        if cache.get("__owner__") != owner:
            cache.clear()
            cache["__owner__"] = owner

        def keys(tok: torch.Tensor, ir: torch.Tensor, idx: torch.Tensor) -> dict[int, bytes]:
            out = {}
            for j in torch.unique(idx).tolist():
                h = hashlib.blake2b(tok[j].detach().cpu().contiguous().numpy().tobytes(), digest_size=16)
                h.update(b"ir" if float(ir[j]) > 0.5 else b"vis")
                out[j] = h.digest()
            return out

        qk, gk = keys(q_tok, q_ir, qi), keys(g_tok, g_ir, gi)
        pair_keys = [(qk[a], gk[b]) for a, b in zip(qi.tolist(), gi.tolist())]
        missing = [p for p, key in enumerate(pair_keys) if key not in cache]
        if missing:
            sel = torch.as_tensor(missing, dtype=torch.long)
            fresh = self.pair_scores(model, q_tok, g_tok, q_ir, g_ir, qi[sel.to(qi.device)], gi[sel.to(gi.device)]).cpu()
            if len(cache) + len(missing) > limit:
                cache.clear()
                cache["__owner__"] = owner
            for p, val in zip(missing, fresh.tolist()):
                cache[pair_keys[p]] = val
        return torch.tensor([cache[key] for key in pair_keys], dtype=torch.float32)

    @torch.no_grad()
    def refine(self, model: nn.Module, query: dict[str, torch.Tensor], gallery: dict[str, torch.Tensor],
               distmat: torch.Tensor, excluded: torch.Tensor) -> torch.Tensor:
        """Re-score the top-K (``bit.refine.k``, 50) non-excluded candidates of each query with Psi;
        see :func:`refine_order` for the returned order."""
        r = self.opts.refine
        if not r.enabled:
            return distmat
        model.eval()
        nq, ng = distmat.shape
        n_tok, width = model.decoder.n_tokens, model.decoder.in_dim
        q_tok = query["tokens"].reshape(nq, n_tok, width)
        g_tok = gallery["tokens"].reshape(ng, n_tok, width)
        q_ir, g_ir = query["ir"].reshape(-1), gallery["ir"].reshape(-1)
        k = min(r.k, ng)
        masked = distmat.float().masked_fill(excluded.to(distmat.device), float("inf"))
        cand = masked.topk(k, dim=1, largest=False).indices  # (nq, K)
        valid = ~torch.gather(excluded.to(distmat.device), 1, cand)
        rows = torch.arange(nq, device=distmat.device).unsqueeze(1).expand(nq, k)
        qi, gi = rows[valid].to(q_tok.device), cand[valid].to(g_tok.device)
        scores = torch.full((nq, k), float("-inf"), device=distmat.device)
        s = self._cached_scores(model, q_tok, g_tok, q_ir.to(q_tok.device), g_ir.to(g_tok.device), qi, gi)
        scores[valid] = s.to(distmat.device)
        return refine_order(distmat, cand, valid, scores)


# ------------------------------------------------------------------------------------------------
# Latency per query, measured the same way for BIT and PMT (Sec. 4.5: 14 ms vs 10 ms on an L20)
# ------------------------------------------------------------------------------------------------


