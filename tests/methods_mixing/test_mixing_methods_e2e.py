"""End to end through the engine: AMINet, TMPA and PMCM (tiny configs on a micro ResNet) train on
the toy cross-modal dataset with falling losses; PMCM also beats its own untrained model at
infrared -> visible retrieval (mAP by a margin, rank-1 at least equal; slow: trains three models)."""
from __future__ import annotations

import pytest
import torch

from vibench.engine.config import load_config
from vibench.engine.extract import extract_features
from vibench.engine.toy import make_toy_dataset
from vibench.engine.trainer import train, untrained

FAST = [
    "model.backbone=resnet_micro", "input.size=[64,32]",
    "sampler.ids_per_batch=4", "sampler.images_per_id=2", "sampler.iterations=6",
    "schedule.epochs=5", "schedule.warmup_epochs=1", "schedule.milestones=[3]",
]
EXTRA = {
    "aminet": ["aminet.pesam.n_scales=2", "aminet.pesam.n_orient=2"],
    "tmpa": ["tmpa.mft.dim=16"],
    "pmcm": ["pmcm.mu_ramp_epochs=2", "pmcm.c2c_start_epoch=1", "pmcm.s2s_dim=32"],
}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_dataset(tmp_path_factory.mktemp("toy"), train_ids=8, test_ids=6, per_modality=4, size=(64, 32))


def _scores(method, model, index, cfg) -> tuple[float, float]:
    """Infrared -> visible rank-1 and mAP on the toy test ids."""
    test = index.test(0)
    q = [r for r in test if r.modality == "infrared"]
    g = [r for r in test if r.modality == "visible"]
    fq = extract_features(method, model, q, index.root, cfg)["feat"]
    fg = extract_features(method, model, g, index.root, cfg)["feat"]
    dist = method.distance({"feat": fq}, {"feat": fg}, None, None)
    match = torch.tensor([[a.pid == b.pid for b in g] for a in q])
    order = dist.argsort(1)
    hits = torch.gather(match, 1, order).float()
    precision = hits.cumsum(1) / torch.arange(1, hits.shape[1] + 1)
    ap = (precision * hits).sum(1) / hits.sum(1)
    return float(hits[:, 0].mean()), float(ap.mean())


_CACHE: dict[str, tuple] = {}


def _trained(name, toy, tmp_path_factory):
    if name not in _CACHE:
        cfg = load_config(name, "tiny", dataset="sysu", overrides=FAST + EXTRA[name])
        trained = train(name, cfg, toy, 0, seed=0, device="cpu", workdir=tmp_path_factory.mktemp(name), progress=False)
        base = untrained(name, cfg, "sysu", trained.num_classes, seed=0)
        _CACHE[name] = (cfg, trained, base)
    return _CACHE[name]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["aminet", "tmpa", "pmcm"])
def test_trains_end_to_end(name, toy, tmp_path_factory) -> None:
    cfg, trained, _ = _trained(name, toy, tmp_path_factory)
    assert trained.complete and len(trained.history) == 5
    losses = [h["losses"]["loss"] for h in trained.history]
    assert all(torch.isfinite(torch.tensor(losses)))
    if name != "pmcm":  # PMCM's total grows while mu ramps its part terms in; compare the global id loss
        assert losses[-1] < losses[0], losses
    else:
        assert trained.history[-1]["losses"]["id_g"] < trained.history[0]["losses"]["id_g"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["pmcm"])
def test_beats_untrained(name, toy, tmp_path_factory) -> None:
    """PMCM on the toy set with a micro ResNet. AMINet and TMPA are not asserted here: on 8 toy
    identities their trained and untrained micro models are within noise of each other (AMINet mAP
    0.347 vs 0.356, TMPA's identically initialised streams transfer better untrained); their
    learnability is asserted with their real tiny configs on synthetic SYSU by
    tests/methods_learnability/test_learnability_tiny.py."""
    cfg, trained, base = _trained(name, toy, tmp_path_factory)
    r1, m_ap = _scores(trained.method, trained.model, toy, cfg)
    r1_base, m_ap_base = _scores(base.method, base.model, toy, cfg)
    print("LEARN toy", name, r1, m_ap, r1_base, m_ap_base)
    assert m_ap > m_ap_base + 0.02 and r1 >= r1_base, (r1, m_ap, r1_base, m_ap_base)
