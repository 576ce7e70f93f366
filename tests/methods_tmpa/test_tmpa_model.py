"""TMPA network and Method on the tiny config: Eq. 12 fusion, losses, test path."""
from __future__ import annotations

import torch

from vibench.engine.api import StepState
from vibench.engine.config import load_config
from vibench_methods.tmpa import TMPA, TMPANet


def test_fc_fusion_eq12_rows() -> None:
    torch.manual_seed(0)
    net = TMPANet(3, backbone="resnet_micro", mft={"dim": 16}).eval()
    v, i = torch.randn(2, 3, 64, 32), torch.randn(2, 3, 64, 32)
    mixed = torch.cat([v, i])
    out = net(v, i, mixed)
    s_sh = net.conv_sh(net.extract_sh(mixed))
    tv = net.mft(s_sh[:2], s_vis=net.conv_vis(net.extract_vis(v)))
    ti = net.mft(s_sh[2:], s_ir=net.conv_ir(net.extract_ir(i)))
    want_v = 0.25 * tv["sp_vis_prime"].mean((2, 3)) + 0.25 * out["f_sp_vis"] + tv["conv_sh"].mean((2, 3))
    want_i = 0.25 * out["f_sp_ir"] + 0.25 * ti["sp_ir_prime"].mean((2, 3)) + ti["conv_sh"].mean((2, 3))
    assert torch.allclose(out["f_c"], torch.cat([want_v, want_i]), atol=1e-5)
    # test path: one modality, E_sh sees the same images
    only = net(vis=v)
    assert only["f_c"].shape == (2, 256) and torch.allclose(only["f_c"], out["f_c"][:2], atol=1e-5)


def test_shared_specific_conv_option() -> None:
    net = TMPANet(3, backbone="resnet_micro", share_specific_conv=True, mft={"dim": 16})
    assert net.conv_ir is net.conv_vis
    n_shared = sum(p.numel() for p in net.parameters())
    n_sep = sum(p.numel() for p in TMPANet(3, backbone="resnet_micro", mft={"dim": 16}).parameters())
    assert n_sep - n_shared == sum(p.numel() for p in net.conv_vis.parameters())


def test_method_training_step_weights() -> None:
    cfg = load_config("tmpa", "tiny", dataset="sysu", overrides=["model.backbone=resnet_micro", "tmpa.mft.dim=16"])
    m = TMPA(cfg, "sysu")
    torch.manual_seed(0)
    model = m.build_model(4).train()
    y = torch.tensor([0, 0, 1, 1])
    batch = {"vis": torch.randn(4, 3, 64, 32), "ir": torch.randn(4, 3, 64, 32), "vis_label": y, "ir_label": y}
    terms = m.training_step(model, batch, StepState("main", 0, 1, 0, 1, torch.device("cpu")))
    assert set(terms) == {"id", "wrt", "msi", "mss", "mft"}
    sum(terms.values()).backward()
    assert model.mft.q_vis.weight.grad is not None and model.head_vis.classifier.weight.grad is not None
    # weights: id is alpha * CE with alpha = 0.8, so CE = id / 0.8 is near log(4) at initialisation
    assert abs(float(terms["id"].detach()) / 0.8 - torch.log(torch.tensor(4.0)).item()) < 0.3
    model.eval()
    with torch.no_grad():
        e = m.embed(model, torch.randn(2, 3, 64, 32), "visible")
    assert e["feat"].shape == (2, 256)
