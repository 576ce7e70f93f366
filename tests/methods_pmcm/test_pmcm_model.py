"""PMCM network and Method on the tiny config: heads, mu-weighted terms, delayed C2C, buffers."""
from __future__ import annotations

import torch

from vibench.engine.api import StepState
from vibench.engine.config import load_config
from vibench_methods.pmcm import PMCM


def _batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    y = torch.tensor([0, 0, 1, 1])
    return {"vis": torch.randn(4, 3, 64, 32, generator=g), "ir": torch.randn(4, 3, 64, 32, generator=g), "vis_label": y, "ir_label": y}


def test_pmcm_step_mu_and_delayed_c2c() -> None:
    cfg = load_config("pmcm", "tiny", dataset="sysu", overrides=["model.backbone=resnet_micro"])
    m = PMCM(cfg, "sysu")
    torch.manual_seed(0)
    model = m.build_model(3).train()
    t0 = m.training_step(model, _batch(), StepState("main", 0, 5, 0, 1, torch.device("cpu")))
    # epoch 0: mu = 0 and the C2C loss has not started (tiny: start epoch 1), but the bank is filled
    for k in ("part", "part_align", "pmml", "c2c_p", "c2c_g"):
        assert float(t0[k].detach()) == 0.0, k
    assert bool(model.memory_global.filled[:, :2].all()) and not bool(model.memory_global.filled[:, 2].any())
    t1 = m.training_step(model, _batch(), StepState("main", 1, 5, 0, 1, torch.device("cpu")))
    assert m.mu(StepState("main", 1, 5, 0, 1, torch.device("cpu"))) == 0.25
    for k in ("part", "c2c_g", "c2c_p"):
        assert float(t1[k].detach()) > 0.0, k
    sum(t1.values()).backward()
    assert model.s2s_parts[0].fc1.weight.grad is not None and model.part_necks[3].classifier.weight.grad is not None
    sd = model.state_dict()
    assert "memory_global.centers" in sd and "memory_parts.centers" in sd
    assert sd["memory_parts.centers"].shape == (2, 3, 4 * 256)


def test_pmcm_embed_is_global_bn_feature() -> None:
    cfg = load_config("pmcm", "tiny", dataset="regdb", overrides=["model.backbone=resnet_micro"])
    assert cfg["pmcm"]["mixing"]["patchmix"]["p"] == 0.5  # RegDB ratio
    m = PMCM(cfg, "regdb")
    model = m.build_model(3).eval()
    with torch.no_grad():
        e = m.embed(model, torch.randn(2, 3, 64, 32), "visible")
        raw = model(vis=torch.zeros(1, 3, 64, 32))
    assert e["feat"].shape == (2, 256) and set(raw) == {"g", "feat"}
