"""Re-ranking against straightforward loops written from docs/metrics.md#k-reciprocal-steps / #aim-steps."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vibench.errors import VibenchError
from vibench.metrics.rerank import (
    AIM_PRESETS, aim_distance, k_reciprocal, k_reciprocal_features, resolve_rerank, stable_topk,
)


def krecip_loop(qg, qq, gg, k1, k2, lam, square=True):
    """docs/metrics.md#k-reciprocal-steps one item at a time with Python sets."""
    nq = qg.shape[0]
    full = np.block([[qq, qg], [qg.T, gg]]).astype(np.float64)
    if square:
        full = full ** 2
    orig = (full / full.max(axis=0)).T
    n = full.shape[0]
    rank = np.argsort(orig, axis=1, kind="stable")

    def recip(i, k):
        return [j for j in rank[i, :k] if i in rank[j, :k]]

    V = np.zeros((n, n))
    for i in range(n):
        R = recip(i, k1 + 1)
        S = set(R)
        for c in R:
            Rc = recip(c, int(round(k1 / 2)) + 1)
            if len(set(Rc) & set(R)) > 2 / 3 * len(Rc):
                S |= set(Rc)
        S = sorted(S)
        w = np.exp(-orig[i, S])
        V[i, S] = w / w.sum()
    if k2 != 1:
        V = np.stack([V[rank[i, :k2]].mean(0) for i in range(n)])
    out = np.zeros_like(qg, dtype=np.float64)
    for i in range(nq):
        for j in range(qg.shape[1]):
            m = sum(min(V[i, l], V[nq + j, l]) for l in range(n) if V[i, l] != 0)
            out[i, j] = (1 - lam) * (1 - m / (2 - m)) + lam * orig[i, nq + j]
    return out


def aim_loop(q, g, k1, k2):
    """docs/metrics.md#aim-steps row by row."""
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    g = g / np.linalg.norm(g, axis=1, keepdims=True)

    def sparsify(row):
        thr = np.sort(row)[::-1][min(k1, len(row)) - 1]
        return np.where(row >= thr, row, 0.0)

    sqg, sgg = q @ g.T, g @ g.T
    Q = np.stack([sparsify(r) for r in sqg])
    Gs = np.stack([sparsify(r) for r in sgg])
    G = np.stack([Gs[np.argsort(-sgg[i], kind="stable")[:k1][:k2]].mean(0) for i in range(len(g))])
    Q /= np.linalg.norm(Q, axis=1, keepdims=True)
    G /= np.linalg.norm(G, axis=1, keepdims=True)
    return -(Q @ G.T) - sqg


@pytest.mark.parametrize("k1,k2,lam", [(20, 6, 0.3), (4, 1, 0.5), (6, 3, 0.0)])
def test_k_reciprocal_matches_loop(k1, k2, lam):
    rng = np.random.default_rng(k1)
    q, g = rng.standard_normal((9, 5)), rng.standard_normal((14, 5))
    d = lambda a, b: np.sqrt(((a[:, None] - b[None]) ** 2).sum(-1))
    want = krecip_loop(d(q, g), d(q, q), d(g, g), k1, k2, lam)
    got = k_reciprocal(torch.from_numpy(d(q, g)), torch.from_numpy(d(q, q)), torch.from_numpy(d(g, g)),
                       k1=k1, k2=k2, lambda_value=lam, storage_dtype=torch.float64)
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-12)


def test_features_version_squares_euclidean_once():
    rng = np.random.default_rng(2)
    q, g = rng.standard_normal((6, 4)), rng.standard_normal((10, 4))
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    gn = g / np.linalg.norm(g, axis=1, keepdims=True)
    d = lambda a, b: np.sqrt(((a[:, None] - b[None]) ** 2).sum(-1))
    want = krecip_loop(d(qn, gn), d(qn, qn), d(gn, gn), 5, 2, 0.3)
    got = k_reciprocal_features(torch.from_numpy(q), torch.from_numpy(g), k1=5, k2=2, storage_dtype=torch.float64)
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-9)


@pytest.mark.parametrize("preset", sorted(AIM_PRESETS))
def test_aim_matches_loop(preset):
    k1, k2 = AIM_PRESETS[preset]
    rng = np.random.default_rng(len(preset))
    q, g = rng.standard_normal((7, 6)), rng.standard_normal((25, 6))
    want = aim_loop(q, g, k1, k2)
    got = aim_distance(torch.from_numpy(q), torch.from_numpy(g), k1=k1, k2=k2)
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-12)


def test_stable_topk_breaks_ties_by_index():
    m = torch.tensor([[1.0, 0.0, 0.0, 2.0, 0.0], [3.0, 3.0, 1.0, 3.0, 3.0]])
    assert stable_topk(m, 2).tolist() == [[1, 2], [2, 0]]
    assert stable_topk(m, 2, largest=True).tolist() == [[3, 0], [0, 1]]


def test_resolve_rerank_defaults_presets_and_errors():
    assert resolve_rerank({"method": "k-reciprocal"}) == {"method": "k-reciprocal", "k1": 20, "k2": 6, "lambda": 0.3}
    assert resolve_rerank({"method": "aim", "preset": "regdb"})["k1"] == 8
    assert resolve_rerank(None) is None
    with pytest.raises(VibenchError, match="did you mean 'aim'"):
        resolve_rerank({"method": "aimm"})
    with pytest.raises(VibenchError, match="unknown AIM preset"):
        resolve_rerank({"method": "aim", "preset": "sysu"})
    with pytest.raises(VibenchError, match="k-reciprocal parameter"):
        resolve_rerank({"method": "k-reciprocal", "k3": 1})
