"""TMPA network and Method on micro backbones: Eq. 12 fusion, Eq. 13's classifiers, the channel-
augmented extra view through PedMix and every loss, and the test path."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vibench.engine.api import StepState
from vibench.engine.config import load_config
from vibench.errors import VibenchError
from vibench_methods.tmpa import TMPA, TMPANet

STATE = StepState("main", 0, 1, 0, 1, torch.device("cpu"))


def test_fc_fusion_eq12_rows() -> None:
    torch.manual_seed(0)
    net = TMPANet(3, backbone="resnet_micro").eval()
    v, i = torch.randn(2, 3, 64, 32), torch.randn(2, 3, 64, 32)
    mixed = torch.cat([v, i])
    out = net(v, i, mixed)
    t = net.mft(net.conv_sh, net.extract_sh(mixed), net.conv_vis, net.extract_vis(v), net.conv_ir, net.extract_ir(i))
    f_sh = net.pool(t["conv_sh"])
    want_v = 0.25 * t["sp_vis_prime"].mean((2, 3)) + 0.25 * net.pool(t["conv_vis"]) + f_sh[:2]
    want_i = 0.25 * net.pool(t["conv_ir"]) + 0.25 * t["sp_ir_prime"].mean((2, 3)) + f_sh[2:]
    assert torch.allclose(out["f_c"], torch.cat([want_v, want_i]), atol=1e-5)
    # test path: one modality, E_sh sees the same images
    only = net(vis=v)
    assert only["f_c"].shape == (2, 256) and torch.allclose(only["f_c"], out["f_c"][:2], atol=1e-5)


def test_shared_specific_conv_option() -> None:
    net = TMPANet(3, backbone="resnet_micro", share_specific_conv=True)
    assert net.conv_ir is net.conv_vis
    n_shared = sum(p.numel() for p in net.parameters())
    n_sep = sum(p.numel() for p in TMPANet(3, backbone="resnet_micro").parameters())
    assert n_sep - n_shared == sum(p.numel() for p in net.conv_vis.parameters())


def _method(*overrides: str) -> TMPA:
    cfg = load_config("tmpa", "tiny", dataset="sysu", overrides=["model.backbone=resnet_micro", *overrides])
    return TMPA(cfg, "sysu")


def _batch(views: int, b: int = 4) -> dict[str, torch.Tensor]:
    y = torch.tensor([0, 0, 1, 1])[:b]
    return {"vis": torch.randn(views * b, 3, 64, 32), "ir": torch.randn(b, 3, 64, 32),
            "vis_label": y.repeat(views), "ir_label": y}


def _record(module: torch.nn.Module, store: list) -> torch.utils.hooks.RemovableHandle:
    return module.register_forward_hook(lambda _m, inp, out: store.append((inp, out)))


@pytest.mark.parametrize("choice", ["paper", "cross"])
def test_eq13_classifier_receives_the_generated_feature(choice: str) -> None:
    m = _method(f"tmpa.mft_classifier={choice}")
    torch.manual_seed(0)
    model = m.build_model(4).train()
    model_calls, vis_calls, ir_calls = [], [], []
    hooks = [_record(model, model_calls), _record(model.head_vis, vis_calls), _record(model.head_ir, ir_calls)]
    batch = _batch(views=1)
    terms = m.training_step(model, batch, STATE)
    for h in hooks:
        h.remove()
    out = model_calls[0][1]
    vis_inputs, ir_inputs = [c[0][0] for c in vis_calls], [c[0][0] for c in ir_calls]
    head_for_v_prime = vis_calls if choice == "paper" else ir_calls
    head_for_i_prime = ir_calls if choice == "paper" else vis_calls
    got_v = [c for c in head_for_v_prime if torch.equal(c[0][0], out["f_vis_prime"])]
    got_i = [c for c in head_for_i_prime if torch.equal(c[0][0], out["f_ir_prime"])]
    assert len(got_v) == 1 and len(got_i) == 1
    # Eq. 7 (MSI) feeds the real specific features to their own classifiers in both readings
    assert any(torch.equal(x, out["f_sp_vis"]) for x in vis_inputs)
    assert any(torch.equal(x, out["f_sp_ir"]) for x in ir_inputs)
    y = batch["ir_label"]
    want = 0.4 * (F.cross_entropy(got_v[0][1][1], y) + F.cross_entropy(got_i[0][1][1], y))  # beta * Eq. 13
    assert torch.allclose(terms["mft"], want, atol=1e-6)


def test_extra_view_enters_pedmix_the_visible_stream_and_every_loss() -> None:
    m = _method()
    assert m.config.tmpa.mft_classifier == "paper"
    torch.manual_seed(0)
    model = m.build_model(4).train()
    calls: list = []
    hook = _record(model, calls)
    batch = _batch(views=2)  # rows 0..3 colour, 4..7 channel-augmented, labels repeated
    terms = m.training_step(model, batch, STATE)
    hook.remove()
    (vis, ir, mixed), out = calls[0]
    assert vis.shape[0] == 8 and ir.shape[0] == 4 and mixed.shape[0] == 12
    # PedMix rows: x^V_hat of every visible row (its pixels from that row or its infrared partner),
    # then x^I_hat of every infrared row (pixels from it or the colour view of its sample)
    for r in range(8):
        own, other = batch["vis"][r], batch["ir"][r % 4]
        assert bool(((mixed[r] == own) | (mixed[r] == other)).all())
        assert not torch.equal(mixed[r], other)
    for r in range(4):
        assert bool(((mixed[8 + r] == batch["ir"][r]) | (mixed[8 + r] == batch["vis"][r])).all())
    assert out["f_c"].shape == (12, 256) and out["f_sp_vis"].shape == (8, 256)
    # the identity loss covers all 12 rows with the labels [y, y, y]
    y_all = torch.cat([batch["vis_label"], batch["ir_label"]])
    assert torch.allclose(terms["id"], 0.8 * F.cross_entropy(out["logits"], y_all), atol=1e-6)
    sum(terms.values()).backward()
    assert model.conv_vis.layer4[0].downsample[0].weight.grad is not None
    assert model.head_vis.classifier.weight.grad is not None


def test_misaligned_views_are_refused() -> None:
    m = _method()
    model = m.build_model(4).train()
    batch = _batch(views=2)
    batch["vis_label"] = torch.tensor([0, 0, 1, 1, 1, 1, 0, 0])
    with pytest.raises(VibenchError, match="index-aligned"):
        m.training_step(model, batch, STATE)


def test_method_training_step_weights_and_embed() -> None:
    m = _method()
    torch.manual_seed(0)
    model = m.build_model(4).train()
    terms = m.training_step(model, _batch(views=1), STATE)
    assert set(terms) == {"id", "wrt", "msi", "mss", "mft"}
    # id is alpha * CE with alpha = 0.8, so CE = id / 0.8 is near log(4) at initialisation
    assert abs(float(terms["id"].detach()) / 0.8 - torch.log(torch.tensor(4.0)).item()) < 0.3
    model.eval()
    with torch.no_grad():
        e = m.embed(model, torch.randn(2, 3, 64, 32), "visible")
    assert e["feat"].shape == (2, 256)
