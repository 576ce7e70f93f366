"""AMINet network and Method on the tiny config: fusions (Eq. 4-5), losses, embedding."""
from __future__ import annotations

import torch

from vibench.engine.api import StepState
from vibench.engine.config import load_config
from vibench_methods.aminet import AMINet, AMINetNet, upper_body
from vibench.registry import get_method_class


def _batch(b: int = 4, h: int = 64, w: int = 32) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(b // 2).repeat_interleave(2)
    return {"vis": torch.randn(b, 3, h, w, generator=g), "ir": torch.randn(b, 3, h, w, generator=g), "vis_label": y, "ir_label": y}


def test_upper_body_crop() -> None:
    x = torch.arange(10.0).view(1, 1, 10, 1).expand(2, 3, 10, 4)
    top = upper_body(x, 0.5)
    assert top.shape == (2, 3, 5, 4) and float(top[0, 0, -1, 0]) == 4.0
    assert upper_body(x, 0.6).shape[-2] == 6
    assert upper_body(x, 0.6, (5, 4)).shape[-2:] == (5, 4)


def test_inter_fusion_pairings() -> None:
    torch.manual_seed(0)
    net = AMINetNet(3, backbone="resnet_micro", pesam={"enabled": False}).train()
    b = _batch()
    out = net(b["vis"], b["ir"])
    g, p, n = out["g"], out["p"], 4
    assert torch.equal(out["intra"], torch.cat([g, p], 1))  # Eq. 4
    assert torch.equal(out["inter"][:n], torch.cat([g[:n], p[n:]], 1))  # Eq. 5: [g_V || p_I]
    assert torch.equal(out["inter"][n:], torch.cat([g[n:], p[:n]], 1))  # [g_I || p_V]
    net.inter_pairing = "code"
    out = net(b["vis"], b["ir"])
    assert torch.equal(out["inter"][:n], torch.cat([out["g"][:n], out["g"][n:]], 1))
    assert torch.equal(out["inter"][n:], torch.cat([out["p"][n:], out["p"][:n]], 1))


def test_method_training_step_and_embed() -> None:
    cfg = load_config("aminet", "tiny", dataset="sysu", overrides=["model.backbone=resnet_micro"])
    assert get_method_class("aminet") is AMINet
    m = AMINet(cfg, "sysu")
    torch.manual_seed(0)
    model = m.build_model(5).train()
    terms = m.training_step(model, _batch(), StepState("main", 0, 1, 0, 1, torch.device("cpu")))
    assert set(terms) == {f"{k}_{b}" for k in ("id", "tri") for b in ("g", "p", "intra", "inter", "fused")} | {"mmd_intra", "mmd_inter"}
    sum(terms.values()).backward()
    assert model.mmd_intra.logits.grad is not None  # AMK-MMD weights are learned
    assert model.pesam_global.fusion_logits.grad is not None
    model.eval()
    with torch.no_grad():
        e = m.embed(model, torch.randn(2, 3, 64, 32), "infrared")
    assert e["feat"].shape == (2, 2 * 256)  # [g || p], resnet_micro width 256
    assert torch.allclose(e["feat"].norm(dim=1), torch.ones(2), atol=1e-5)
