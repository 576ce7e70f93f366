"""Does BIT's decoder learn? Train the tiny BIT on local-patch identities
(:func:`vibench.data.synth.local_patch.local_patch_set`) and compare the decoder's re-scored
ranking with the coarse cosine order on held-out identities.

Run as a script to print one measurement (docs/methods_bit_mixer.md quotes it):

    python tests/methods_bit/decoder_probe.py [--seed 0] [--set bit.decoder.init_std=0.02 ...]

Used by tests/methods_bit/test_bit_decoder_learns.py.
"""
from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from vibench.data.synth.local_patch import identity_codes, local_patch_set
from vibench.engine.api import StepState
from vibench.engine.config import load_config
from vibench.metrics.evaluate import evaluate
from vibench.registry import get_method_class


@dataclass
class ProbeSetup:
    n_train: int = 32
    n_test: int = 16
    per_id: int = 8
    stage1_steps: int = 150
    stage1_lr: float = 3e-3
    stage2_steps: int = 300
    stage2_lr: float = 1e-3
    ids_per_batch: int = 4
    images_per_id: int = 4
    seed: int = 0
    encoder_cache: str | None = None  # a file: load the stage-1 encoder from it, or save it there
    overrides: dict[str, Any] = field(default_factory=dict)


def _set(cfg: dict[str, Any], dotted: str, value: Any) -> None:
    node = cfg
    keys = dotted.split(".")
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    node[keys[-1]] = value


def _batch(data: Any, rng: np.random.Generator, ids: int, per: int) -> dict[str, torch.Tensor]:
    labels = rng.choice(int(data.vis_label.max()) + 1, ids, replace=False)
    vi, ii = [], []
    for lab in labels:
        vi += list(rng.choice(np.nonzero(data.vis_label == lab)[0], per, replace=False))
        ii += list(rng.choice(np.nonzero(data.ir_label == lab)[0], per, replace=False))
    vi, ii = np.array(vi), np.array(ii)
    return {"vis": torch.from_numpy(data.vis[vi]), "ir": torch.from_numpy(data.ir[ii]),
            "vis_label": torch.from_numpy(data.vis_label[vi]).long(), "ir_label": torch.from_numpy(data.ir_label[ii]).long()}


def pair_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Probability that a random positive pair scores above a random negative one (ties = 1/2)."""
    s, y = np.asarray(scores, dtype=np.float64).ravel(), np.asarray(positive, dtype=bool).ravel()
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    # average ranks over ties
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def raw_token_aucs(method: Any, model: Any, q: dict[str, torch.Tensor], g: dict[str, torch.Tensor], pos: np.ndarray) -> dict[str, float]:
    """Pair AUCs of decoder-free scores on the encoder tokens (infrared queries x visible gallery):
    'mean_qa' = mean of the Eq. 6-11 patch scores on the raw tokens (what CASM could read without
    any interaction), 'best_match' = mean over visible patches of the best cosine to an infrared
    patch, 'same_position' = mean cosine of tokens at the same position."""
    from vibench_methods.bit import patch_scores, patch_similarities  # lazy: test helper only

    n_tok, width = model.decoder.n_tokens, model.decoder.in_dim
    tq = q["tokens"].float().reshape(-1, n_tok, width)
    tg = g["tokens"].float().reshape(-1, n_tok, width)
    nq, ng = tq.shape[0], tg.shape[0]
    v = tg.repeat(nq, 1, 1)  # visible = gallery
    i = tq.repeat_interleave(ng, 0)
    s_vi, s_iv = patch_similarities(v, i)
    qa = patch_scores(s_vi, s_iv, method.opts.topk, method.opts.alpha).mean(-1).reshape(nq, ng)
    vn, inn = torch.nn.functional.normalize(v, dim=-1), torch.nn.functional.normalize(i, dim=-1)
    cos = vn @ inn.transpose(-2, -1)
    best = cos.max(-1).values.mean(-1).reshape(nq, ng)
    same = cos.diagonal(dim1=-2, dim2=-1).mean(-1).reshape(nq, ng)
    return {"mean_qa": pair_auc(qa.numpy(), pos), "best_match": pair_auc(best.numpy(), pos), "same_position": pair_auc(same.numpy(), pos)}


def run_probe(setup: ProbeSetup, log: bool = False) -> dict[str, Any]:
    """Train stage 1 (encoder) and stage 2 (decoder) of the tiny BIT config on local-patch train
    identities, then rank the held-out identities (infrared queries, visible gallery):
    coarse = the encoder cosine, fine = every gallery item re-scored by the decoder (K = gallery)."""
    torch.manual_seed(setup.seed)
    rng = np.random.default_rng(setup.seed)
    codes = identity_codes(np.random.default_rng(1000 + setup.seed), setup.n_train + setup.n_test, 3)
    train = local_patch_set(setup.n_train, setup.per_id, seed=setup.seed, codes=codes, first_id=0)
    test = local_patch_set(setup.n_test, setup.per_id, seed=setup.seed + 1, codes=codes, first_id=setup.n_train)

    cfg = copy.deepcopy(load_config("bit", "tiny", "sysu"))
    for k, v in setup.overrides.items():
        _set(cfg, k, v)
    method = get_method_class("bit")(cfg, "sysu")
    model = method.build_model(setup.n_train)
    stages = {s.name: s for s in method.stages()}
    dev = torch.device("cpu")
    t0 = time.time()
    history: dict[str, list[float]] = {"stage1": [], "pair": [], "ac": []}

    # stage 1: the encoder
    st = stages["backbone"]
    method.set_train_mode(model, st)
    opt = torch.optim.AdamW([p for g in method.param_groups(model, st) for p in g["params"]], lr=setup.stage1_lr, weight_decay=1e-4)
    cache = Path(setup.encoder_cache) if setup.encoder_cache else None
    steps1 = setup.stage1_steps
    if cache is not None and cache.exists():
        model.encoder.load_state_dict(torch.load(cache, weights_only=True))
        steps1 = 0
    for it in range(steps1):
        b = _batch(train, rng, setup.ids_per_batch, setup.images_per_id)
        state = StepState("backbone", it // 15, max(1, setup.stage1_steps // 15), it % 15, 15, dev, {"stage_index": 0})
        terms = method.training_step(model, b, state)
        loss = sum(terms.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        history["stage1"].append(float(loss.detach()))
    if cache is not None and steps1:
        torch.save(model.encoder.state_dict(), cache)

    # stage 2: the decoder, encoder frozen
    st = stages["decoder"]
    for p in model.encoder.parameters():
        p.requires_grad_(False)
    method.set_train_mode(model, st)
    opt = torch.optim.AdamW(list(model.decoder.parameters()), lr=setup.stage2_lr, weight_decay=1e-4)
    grads: dict[str, list[float]] = {"blocks": [], "casm": []}
    for it in range(setup.stage2_steps):
        b = _batch(train, rng, setup.ids_per_batch, setup.images_per_id)
        state = StepState("decoder", 0, 1, it, setup.stage2_steps, dev, {"stage_index": 1})
        terms = method.training_step(model, b, state)
        loss = sum(terms.values())
        opt.zero_grad()
        loss.backward()
        grads["blocks"].append(float(sum(p.grad.norm() ** 2 for p in model.decoder.blocks.parameters() if p.grad is not None) ** 0.5))
        grads["casm"].append(float(sum(p.grad.norm() ** 2 for p in model.decoder.qa.parameters() if p.grad is not None) ** 0.5))
        opt.step()
        history["pair"].append(float(terms["pair"]))
        if "ac" in terms:
            history["ac"].append(float(terms["ac"]))
        if log and it % 50 == 0:
            print(f"stage2 it {it} pair {float(terms['pair']):.4f}", flush=True)

    # evaluation on held-out identities: infrared queries, visible gallery
    model.eval()
    q = method.embed(model, torch.from_numpy(test.ir), "infrared")
    g = method.embed(model, torch.from_numpy(test.vis), "visible")
    nq, ng = test.ir.shape[0], test.vis.shape[0]
    coarse = method.distance(q, g, np.array(["infrared"] * nq), np.array(["visible"] * ng)).float()
    excluded = torch.zeros(nq, ng, dtype=torch.bool)
    saved = method.opts
    method.opts = replace(saved, refine=replace(saved.refine, k=ng, cache_pairs=0))
    try:
        fine = method.refine(model, q, g, coarse, excluded)
        n_tok, width = model.decoder.n_tokens, model.decoder.in_dim
        qi = torch.arange(nq).repeat_interleave(ng)
        gi = torch.arange(ng).repeat(nq)
        logits = method.pair_scores(model, q["tokens"].reshape(nq, n_tok, width), g["tokens"].reshape(ng, n_tok, width),
                                    q["ir"].reshape(-1), g["ir"].reshape(-1), qi, gi).reshape(nq, ng)
    finally:
        method.opts = saved
    pos = test.ir_label[:, None] == test.vis_label[None, :]
    cam_q, cam_g = np.zeros(nq, dtype=int), np.ones(ng, dtype=int)
    ev_c = evaluate(coarse, test.ir_label, test.vis_label, cam_q, cam_g, rule="none", cmc="image")
    ev_f = evaluate(fine, test.ir_label, test.vis_label, cam_q, cam_g, rule="none", cmc="image")
    tail = lambda xs: float(np.mean(xs[-50:])) if xs else float("nan")  # noqa: E731
    return {
        "coarse": {"mAP": ev_c.mAP, "rank1": float(ev_c.cmc[0]), "auc": pair_auc(-coarse.numpy(), pos)},
        "fine": {"mAP": ev_f.mAP, "rank1": float(ev_f.cmc[0]), "auc": pair_auc(logits.numpy(), pos)},
        "logit_std": float(logits.std()),
        "pair_loss_last50": tail(history["pair"]),
        "ac_last50": tail(history["ac"]),
        "stage1_loss_last50": tail(history["stage1"]),
        "grad_norm_blocks_mean": float(np.mean(grads["blocks"])) if grads["blocks"] else float("nan"),
        "grad_norm_qa_mean": float(np.mean(grads["casm"])) if grads["casm"] else float("nan"),
        "raw_tokens": raw_token_aucs(method, model, q, g, pos),
        "seconds": round(time.time() - t0, 1),
        "setup": {**setup.__dict__},
    }


def local_patch_tokens(ids: np.ndarray, per: int, codes: np.ndarray, shared: np.ndarray, gap: np.ndarray,
                       rng: np.random.Generator, noise: float = 0.3, position: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-level local-patch identities: every image's tokens are the shared layout ``shared``
    (N, C) + the modality offset ``gap`` (C,) + noise; identity ``k`` adds ``codes[k]`` (C,) to
    the token at ``position`` only. Returns tokens (len(ids) * per, N, C) and labels."""
    lab = np.repeat(ids, per)
    t = shared[None].repeat(len(lab), 0) + gap + noise * rng.standard_normal((len(lab),) + shared.shape)
    t[:, position] += codes[lab]
    return torch.tensor(t, dtype=torch.float32), torch.tensor(lab)


def run_token_probe(overrides: dict[str, Any] | None = None, steps: int = 400, lr: float = 1e-3, seed: int = 0,
                    n_tokens: int = 10, width: int = 96) -> dict[str, Any]:
    """Train the tiny config's decoder (Eq. 13 + lambda Eq. 5, 4 ids x (4 V + 4 I) = 256 pairs per
    step) on :func:`local_patch_tokens` of 32 identities; pair AUC on 16 held-out identities of the
    decoder's Psi and of the cosine of the token means (a global matcher)."""
    from vibench_methods.bit import BITDecoder  # lazy: test helper only
    from vibench_methods.losses.contrastive import aggregation_contrastive_loss
    from vibench_methods.losses.pair_bce import expand_pairs, pair_bce_loss, pair_labels

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    shared = rng.standard_normal((n_tokens, width))
    codes = rng.standard_normal((48, width))
    gap_v, gap_i = 0.5 * rng.standard_normal(width), 0.5 * rng.standard_normal(width)
    cfg = copy.deepcopy(load_config("bit", "tiny", "sysu"))
    for k, v in (overrides or {}).items():
        _set(cfg, k, v)
    o = get_method_class("bit")(cfg, "sysu").opts
    d = o.decoder
    dec = BITDecoder(width, n_tokens, d.dim or width, d.depth, d.heads, d.mlp_ratio, d.qkv_bias, d.out_proj,
                     d.initial_layer, d.initial_residual, d.final_norm, o.topk, o.alpha, d.casm_hidden, d.drop, d.init_std)
    opt = torch.optim.AdamW(dec.parameters(), lr=lr, weight_decay=1e-4)
    train_ids, test_ids = np.arange(32), np.arange(32, 48)
    losses = []
    t0 = time.time()
    for _ in range(steps):
        ids = rng.choice(train_ids, 4, replace=False)
        tv, lv = local_patch_tokens(ids, 4, codes, shared, gap_v, rng)
        ti, li = local_patch_tokens(ids, 4, codes, shared, gap_i, rng)
        out = dec(*expand_pairs(tv, ti))
        loss = pair_bce_loss(out["logit"], pair_labels(lv, li), o.pair_pos_weight)
        losses.append(float(loss.detach()))
        if o.ac.weight:
            a, b = expand_pairs(lv, li)
            loss = loss + o.ac.weight * aggregation_contrastive_loss(
                torch.cat([out["pooled_v"], out["pooled_i"]]), torch.cat([a, b]),
                torch.cat([torch.zeros_like(a), torch.ones_like(b)]), o.ac.tau, o.ac.cross_modal_positives)
        opt.zero_grad()
        loss.backward()
        opt.step()
    dec.eval()
    with torch.no_grad():
        tv, lv = local_patch_tokens(test_ids, 4, codes, shared, gap_v, rng)
        ti, li = local_patch_tokens(test_ids, 4, codes, shared, gap_i, rng)
        pv, pi = expand_pairs(tv, ti)
        psi = dec(pv, pi)["logit"]
        glob = torch.nn.functional.cosine_similarity(pv.mean(1), pi.mean(1))
    y = pair_labels(lv, li).numpy() > 0.5
    return {"auc_decoder": pair_auc(psi.numpy(), y), "auc_token_mean_cosine": pair_auc(glob.numpy(), y),
            "pair_loss_last50": float(np.mean(losses[-50:])), "steps": steps, "lr": lr, "seed": seed,
            "overrides": overrides or {}, "seconds": round(time.time() - t0, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stage1-steps", type=int, default=ProbeSetup.stage1_steps)
    ap.add_argument("--stage2-steps", type=int, default=ProbeSetup.stage2_steps)
    ap.add_argument("--stage2-lr", type=float, default=ProbeSetup.stage2_lr)
    ap.add_argument("--encoder-cache", default=None)
    ap.add_argument("--tokens", action="store_true", help="the token-level probe (run_token_probe) instead")
    ap.add_argument("--set", action="append", default=[], help="dotted.key=yaml-value override of the tiny config")
    a = ap.parse_args()
    import yaml  # lazy: only the script needs it

    overrides = {kv.split("=", 1)[0]: yaml.safe_load(kv.split("=", 1)[1]) for kv in a.set}
    if a.tokens:
        print(json.dumps(run_token_probe(overrides, a.stage2_steps, a.stage2_lr, a.seed)))
        return
    res = run_probe(ProbeSetup(seed=a.seed, stage1_steps=a.stage1_steps, stage2_steps=a.stage2_steps,
                               stage2_lr=a.stage2_lr, encoder_cache=a.encoder_cache, overrides=overrides), log=True)
    print(json.dumps(res, indent=1, default=str))


if __name__ == "__main__":
    main()
