"""Re-ranking: k-reciprocal encoding (Zhong et al., CVPR'17; docs/metrics.md#k-reciprocal-steps) and SAAI's
Affinity Inference Module (docs/metrics.md#aim-steps), vectorised in PyTorch (CPU or CUDA).

Deliberate differences from the original code (docs/metrics.md):
* neighbour lists use a *stable* order (distance, then index); the originals use NumPy's
  unstable argsort / torch.topk, whose tie order is unspecified;
* the k-reciprocal weights are stored in float32 by default (the original feature version uses
  float16, MPANet float16 for V, torchreid float32): pass ``storage_dtype=torch.float16`` to
  mimic the original storage;
* ``square=True`` squares the given distance blocks, as torchreid's ``re_ranking`` and the
  ranklist version do: torchreid feeds it squared Euclidean distances, so its result is built
  on the 4th power (the "double squaring"); pass already-squared distances with
  ``square=False`` (MPANet) or use `k_reciprocal_features`, which squares plain Euclidean
  distances once (the original feature version);
* MPANet's SYSU variant (``eval_type=True``, query-first neighbour search) is not implemented.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch

from vibench.errors import VibenchError, unknown_name
from vibench.metrics.topk import stable_topk

#: SAAI AIM (k1, k2) per setting (docs/metrics.md#aim-steps; SAAI engine/__init__.py).
AIM_PRESETS: dict[str, tuple[int, int]] = {
    "sysu-all-single": (4, 1),
    "sysu-all-multi": (20, 6),
    "sysu-indoor-single": (2, 2),
    "sysu-indoor-multi": (20, 6),
    "regdb": (8, 2),
}

#: k-reciprocal defaults everywhere (torchreid, MPANet, the original code): k1=20, k2=6, λ=0.3.
KRECIP_DEFAULTS: dict[str, float] = {"k1": 20, "k2": 6, "lambda": 0.3}


def _reciprocal(rank: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first k neighbours of every item and a mask: neighbour j of i is reciprocal when i is
    among j's first k neighbours (docs/metrics.md#k-reciprocal-steps, step 4)."""
    fwd = rank[:, :k]
    n = rank.shape[0]
    back = fwd[fwd]  # (n, k, k): the neighbours of each neighbour
    me = torch.arange(n, device=rank.device)[:, None, None]
    return fwd, (back == me).any(-1)


def k_reciprocal(
    q_g: torch.Tensor,
    q_q: torch.Tensor,
    g_g: torch.Tensor,
    *,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    square: bool = True,
    storage_dtype: torch.dtype = torch.float32,
    block: int = 256,
) -> torch.Tensor:
    """k-reciprocal re-ranked (nq, ng) distances from the three distance blocks (protocols.md
    docs/metrics.md#k-reciprocal-steps). `square` squares the blocks first (torchreid / ranklist behaviour)."""
    k1, k2 = int(k1), int(k2)
    if k1 < 1 or k2 < 1 or not (0.0 <= float(lambda_value) <= 1.0):
        raise VibenchError(f"k-reciprocal needs k1 >= 1, k2 >= 1, 0 <= lambda <= 1; got {k1}, {k2}, {lambda_value}")
    nq, ng = q_g.shape
    if q_q.shape != (nq, nq) or g_g.shape != (ng, ng):
        raise VibenchError(f"distance blocks have shapes {tuple(q_q.shape)}, {tuple(q_g.shape)}, {tuple(g_g.shape)}; "
                           f"expected ({nq}, {nq}), ({nq}, {ng}), ({ng}, {ng})")
    dev = q_g.device
    work = torch.float64 if q_g.dtype == torch.float64 else torch.float32
    full = torch.cat([torch.cat([q_q, q_g], 1), torch.cat([q_g.T, g_g], 1)], 0).to(work)
    n = full.shape[0]
    if square:
        full = full * full
    colmax = full.amax(0, keepdim=True)
    orig = (full / colmax).T.contiguous()  # step 2: column-max normalisation, transposed
    del full
    kf = min(k1 + 1, n)
    kh = min(int(round(k1 / 2)) + 1, n)  # Python's round is half-to-even, as the original
    rank = stable_topk(orig, max(kf, k2))
    fwd, rec = _reciprocal(rank, kf)
    hfwd, hrec = _reciprocal(rank, kh)
    # step 4.2: expansion with each reciprocal neighbour's half-size reciprocal set
    cand_sets = hfwd[fwd]  # (n, kf, kh) candidate c's neighbours
    cand_ok = hrec[fwd]  # which of them are reciprocal to c
    in_r = ((cand_sets[..., None] == fwd[:, None, None, :]) & rec[:, None, None, :]).any(-1)
    overlap = (in_r & cand_ok).sum(-1)
    size = cand_ok.sum(-1)
    take = rec & (overlap.to(torch.float64) > (2.0 / 3.0) * size.to(torch.float64))
    members = torch.cat([
        torch.where(rec, fwd, n),
        torch.where(take[..., None] & cand_ok, cand_sets, n).reshape(n, -1),
    ], 1)
    # step 4.3: V[i, S] = exp(-orig[i, S]) / sum over the de-duplicated set S
    mask = torch.zeros(n, n + 1, dtype=torch.bool, device=dev)
    mask.scatter_(1, members, True)
    mask = mask[:, :n]
    V = torch.where(mask, torch.exp(-orig), torch.zeros((), dtype=work, device=dev))
    V = (V / V.sum(1, keepdim=True)).to(storage_dtype)
    del mask
    # step 5: local query expansion over the first k2 neighbours (self included)
    if k2 != 1:
        nb = rank[:, :k2]
        Vqe = torch.empty_like(V)
        for a in range(0, n, block):
            Vqe[a:a + block] = V[nb[a:a + block]].to(work).mean(1).to(storage_dtype)
        V = Vqe
    # step 6: Jaccard distance, m = sum_l min(V[i, l], V[j, l]) over the query row's support
    Vg_t = torch.cat([V[nq:].T.to(work), torch.zeros(1, ng, dtype=work, device=dev)], 0)  # (n+1, ng)
    jac = torch.empty(nq, ng, dtype=work, device=dev)
    qb = max(1, block // 16)
    for a in range(0, nq, qb):
        rows = V[a:min(a + qb, nq)].to(work)
        nz = rows != 0
        smax = int(nz.sum(1).max())
        # each row's support, padded with column n (an all-zero row of Vg_t)
        sup = torch.where(nz, torch.arange(n, device=dev), n).sort(1).values[:, :smax]
        vals = torch.cat([rows, torch.zeros(rows.shape[0], 1, dtype=work, device=dev)], 1).gather(1, sup)
        m = torch.minimum(vals[:, :, None], Vg_t[sup]).sum(1)
        jac[a:a + rows.shape[0]] = 1.0 - m / (2.0 - m)
    # step 7
    return (1.0 - lambda_value) * jac + lambda_value * orig[:nq, nq:]


def _euclidean(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.cdist(a, b, p=2.0, compute_mode="donot_use_mm_for_euclid_dist")


def k_reciprocal_features(
    qf: torch.Tensor,
    gf: torch.Tensor,
    *,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    normalize: bool = True,
    storage_dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """k-reciprocal re-ranking from features: Euclidean distances (on L2-normalised features when
    `normalize`), squared once, as the original feature version (docs/metrics.md#k-reciprocal-steps, step 2)."""
    if normalize:
        qf = torch.nn.functional.normalize(qf, dim=1)
        gf = torch.nn.functional.normalize(gf, dim=1)
    return k_reciprocal(_euclidean(qf, gf), _euclidean(qf, qf), _euclidean(gf, gf),
                        k1=k1, k2=k2, lambda_value=lambda_value, square=True, storage_dtype=storage_dtype)


def _sparsify(sim: torch.Tensor, k1: int) -> torch.Tensor:
    """Keep each row's entries >= its k1-th largest value (ties at the threshold survive)."""
    k = min(k1, sim.shape[1])
    thr = torch.topk(sim, k, dim=1).values[:, -1:]
    return torch.where(sim >= thr, sim, torch.zeros((), dtype=sim.dtype, device=sim.device))


def aim_distance(qf: torch.Tensor, gf: torch.Tensor, *, k1: int, k2: int) -> torch.Tensor:
    """SAAI's Affinity Inference Module (docs/metrics.md#aim-steps): -(Q'·G'ᵀ) - (q·gᵀ) with Q', G' the
    k1-sparsified affinities (G' averaged over each row's first k2 neighbours), L2-normalised."""
    k1, k2 = int(k1), int(k2)
    if k1 < 1 or k2 < 1:
        raise VibenchError(f"AIM needs k1 >= 1 and k2 >= 1; got k1={k1}, k2={k2}")
    q = torch.nn.functional.normalize(qf.to(torch.float32) if qf.dtype != torch.float64 else qf, dim=1)
    g = torch.nn.functional.normalize(gf.to(q.dtype), dim=1)
    s_qg = q @ g.T
    s_gg = g @ g.T
    qs = _sparsify(s_qg, k1)
    gs = _sparsify(s_gg, k1)
    nb = stable_topk(s_gg, min(k1, s_gg.shape[1]), largest=True)[:, :k2]
    gs = gs[nb].mean(1)
    qs = torch.nn.functional.normalize(qs, dim=1)
    gs = torch.nn.functional.normalize(gs, dim=1)
    return -(qs @ gs.T) - s_qg


def resolve_rerank(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Validate a protocol's ``rerank`` mapping ({method: k-reciprocal|aim, k1, k2, lambda} or
    {method: aim, preset: name}) and fill defaults; the returned dict is what results record."""
    if params is None:
        return None
    p = dict(params)
    method = p.pop("method", None)
    if method == "k-reciprocal":
        out = {"method": method, **KRECIP_DEFAULTS}
        for k in list(p):
            if k not in KRECIP_DEFAULTS:
                raise unknown_name("k-reciprocal parameter", k, KRECIP_DEFAULTS)
            out[k] = p[k]
        out["k1"], out["k2"], out["lambda"] = int(out["k1"]), int(out["k2"]), float(out["lambda"])
        return out
    if method == "aim":
        preset = p.pop("preset", None)
        if preset is not None:
            if preset not in AIM_PRESETS:
                raise unknown_name("AIM preset", str(preset), AIM_PRESETS)
            k1, k2 = AIM_PRESETS[preset]
            p.setdefault("k1", k1)
            p.setdefault("k2", k2)
        for k in p:
            if k not in ("k1", "k2"):
                raise unknown_name("AIM parameter", k, ["k1", "k2", "preset"])
        if "k1" not in p or "k2" not in p:
            raise VibenchError(f"rerank method 'aim' needs k1 and k2 (or a preset: {', '.join(AIM_PRESETS)})")
        return {"method": "aim", "k1": int(p["k1"]), "k2": int(p["k2"]),
                **({"preset": preset} if preset else {})}
    raise unknown_name("re-ranking method", str(method), ["k-reciprocal", "aim"])


def rerank_distance(params: Mapping[str, Any], qf: torch.Tensor, gf: torch.Tensor) -> torch.Tensor:
    """The re-ranked (nq, ng) distance matrix for a resolved ``rerank`` mapping."""
    r = resolve_rerank(params)
    assert r is not None
    if r["method"] == "aim":
        return aim_distance(qf, gf, k1=r["k1"], k2=r["k2"])
    return k_reciprocal_features(qf, gf, k1=r["k1"], k2=r["k2"], lambda_value=r["lambda"])
