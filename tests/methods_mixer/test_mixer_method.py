"""MixER method: doubled labels, per-pair distance selection, standalone and add-on training steps."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vibench.engine.api import StepState
from vibench.errors import VibenchError
from vibench_methods.losses.mixed_fusion_triplet import fuse
from vibench_methods.mixer import (
    MixERHeads,
    MixERMethod,
    doubled_labels,
    mixed_distance,
    modality_codes,
    route_by_modality,
)
from vibench.registry import get_method_class

TINY = {"model": {"backbone": "resnet18", "last_stride": 1}, "mixer": {"mam_after": [3, 4], "dual_bnneck": True}}
ADDON = {
    "model": {"backbone": "resnet18", "non_local": [0, 0, 1, 0]},
    "loss": {"triplet": "wrt"},
    "mixer": {"addon": {"base": "agw", "split_module": "trunk.layer4", "erased_module": "pool", "erased_from": "output"}},
}


def _batch(b: int = 4, size=(32, 16)):
    g = torch.Generator().manual_seed(0)
    lab = torch.arange(b // 2).repeat_interleave(2)
    return {"vis": torch.randn(b, 3, *size, generator=g), "ir": torch.randn(b, 3, *size, generator=g),
            "vis_label": lab, "ir_label": lab.clone(), "vis_index": torch.arange(b), "ir_index": torch.arange(b)}


def _state():
    return StepState("main", 0, 2, 0, 4, torch.device("cpu"))


def test_doubled_labels_eq12():
    y = torch.tensor([0, 1, 2, 1])
    assert doubled_labels(y, torch.tensor([0, 0, 0, 0])).tolist() == [0, 2, 4, 2]
    assert doubled_labels(y, torch.tensor([1, 1, 1, 1])).tolist() == [1, 3, 5, 3]
    assert doubled_labels(y, torch.tensor([0, 1, 0, 1])).tolist() == [0, 3, 4, 3]


def test_modality_codes():
    assert modality_codes(np.array(["visible", "infrared", "visible"])).tolist() == [0, 1, 0]
    with pytest.raises(VibenchError):
        modality_codes(np.array(["thermal"]))


def test_distance_uses_erased_across_and_fused_within_modality():
    q_e = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    q_r = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    g_e = torch.tensor([[1.0, 1.0], [1.0, 0.0], [0.0, 2.0]])
    g_r = torch.tensor([[1.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
    q_mod = np.array(["infrared", "visible"])
    g_mod = np.array(["visible", "infrared", "infrared"])
    d = mixed_distance(q_e, q_r, g_e, g_r, q_mod, g_mod, "mixer")
    s2 = 2 ** -0.5
    # query 0 (infrared): gallery 0 visible -> erased cos((1,0),(1,1)) = 1/sqrt2;
    #   gallery 1 infrared -> fused: ([1,0]+[0,1]) . ([1,0]+[0,1]) / 2 = 1 ; gallery 2 -> ([1,0]+[0,1]).([0,1]+[1,0])/2 = 0
    assert d[0].tolist() == pytest.approx([-s2, -1.0, 0.0], abs=1e-6)
    # query 1 (visible): gallery 0 visible -> fused ([0,1]+[1,0]).([s2,s2]+[1,0])/2 = (s2 + 1)/2
    #   gallery 1, 2 infrared -> erased cos((0,1),(1,0)) = 0, cos((0,1),(0,2)) = 1
    assert d[1].tolist() == pytest.approx([-(s2 + 1) / 2, 0.0, -1.0], abs=1e-6)
    fq, fg = fuse(q_e, q_r), fuse(g_e, g_r)
    assert d[0, 1].item() == pytest.approx(-(fq[0] @ fg[1]).item())
    assert torch.allclose(mixed_distance(q_e, q_r, g_e, g_r, q_mod, g_mod, "erased"),
                          -(torch.nn.functional.normalize(q_e, dim=1) @ torch.nn.functional.normalize(g_e, dim=1).T))
    # the Method hook reads the same embeddings
    m = MixERMethod({"mixer": {}}, "sysu")
    d2 = m.distance({"feat": q_e, "related": q_r}, {"feat": g_e, "related": g_r}, q_mod, g_mod)
    assert torch.allclose(d, d2)


def test_route_by_modality_uses_each_branch():
    class Neg(torch.nn.Module):
        def forward(self, t):
            return -t

    branches = torch.nn.ModuleList([torch.nn.Identity(), Neg()])
    x = torch.arange(4.0).reshape(4, 1)
    out = route_by_modality(branches, x, torch.tensor([0, 1, 1, 0]))
    assert out.squeeze(1).tolist() == [0.0, -1.0, -2.0, 3.0]


def test_heads_clone_last_stage_with_independent_weights():
    stage = torch.nn.Sequential(torch.nn.Conv2d(4, 6, 1), torch.nn.BatchNorm2d(6), torch.nn.ReLU())
    heads = MixERHeads(stage, 6, num_classes=3)
    assert heads.related[0][0].weight is not heads.related[1][0].weight
    assert torch.equal(heads.related[0][0].weight, stage[0].weight)
    out = heads(torch.randn(4, 4, 3, 2), torch.randn(4, 6), torch.tensor([0, 0, 1, 1]))
    assert out["related_logits"].shape == (4, 6) and out["modality_logits"].shape == (4, 2)


def test_standalone_builds_trains_one_step_and_embeds():
    torch.manual_seed(0)
    m = MixERMethod(TINY, "sysu")
    net = m.build_model(5)
    net.train()
    terms = m.training_step(net, _batch(), _state())
    assert set(terms) == {"erased_id", "erased_cc", "related_id", "related_cc", "modality", "ortho", "fusion"}
    sum(terms.values()).backward()
    assert net.heads.related[1][0][0].conv1.weight.grad is not None
    assert net.heads.modality_classifier.weight.grad is not None
    net.eval()
    emb = m.embed(net, torch.randn(3, 3, 32, 16), "infrared")
    assert emb["feat"].shape == (3, 512) and emb["related"].shape == (3, 512)


def test_grl_reverses_modality_gradient_into_the_erased_branch():
    torch.manual_seed(0)
    m = MixERMethod({**TINY, "mixer": {**TINY["mixer"], "grl": {"schedule": "constant", "coeff": 1.0},
                                       "weights": {k: 0.0 for k in ("erased_id", "erased_cc", "related_id",
                                                                    "related_cc", "ortho", "fusion")}}}, "sysu")
    net = m.build_model(5)
    net.train()
    batch = _batch()
    terms = m.training_step(net, batch, _state())
    assert set(terms) == {"modality"}
    # gradient of the erased feature through the GRL = -(gradient of the classifier loss)
    x = torch.cat([batch["vis"], batch["ir"]])
    mods = torch.tensor([0] * 4 + [1] * 4)
    out = net(x, mods)
    e = out["erased_pool"].detach().requires_grad_(True)
    logits = net.heads.modality_classifier(net.heads.grl(e))
    torch.nn.functional.cross_entropy(logits, mods).backward()
    e2 = out["erased_pool"].detach().requires_grad_(True)
    torch.nn.functional.cross_entropy(net.heads.modality_classifier(e2), mods).backward()
    assert torch.allclose(e.grad, -e2.grad)


def test_agw_plus_mixer_addon_builds_and_trains_one_step():
    torch.manual_seed(0)
    cls = get_method_class("mixer")
    m = cls(ADDON, "sysu")
    net = m.build_model(5)
    net.train()
    terms = m.training_step(net, _batch(), _state())
    assert {"base_id", "base_wrt", "mixer_related_id", "mixer_modality", "mixer_ortho", "mixer_fusion"} <= set(terms)
    assert "mixer_erased_id" not in terms  # the base keeps its own identity loss
    sum(terms.values()).backward()
    assert net.heads.related[0][0].conv1.weight.grad is not None
    assert net.base.trunk.layer3[0].conv1.weight.grad is not None
    net.eval()
    emb = m.embed(net, torch.randn(3, 3, 32, 16), "visible")
    assert emb["feat"].shape == (3, 512) and emb["related"].shape == (3, 512)


def test_addon_detach_base_variant_keeps_mixer_gradients_out_of_the_base():
    torch.manual_seed(0)
    cfg = {**ADDON, "mixer": {"addon": {**ADDON["mixer"]["addon"], "detach_base": True}}}
    m = MixERMethod(cfg, "sysu")
    net = m.build_model(5)
    net.train()
    terms = m.training_step(net, _batch(), _state())
    sum(v for k, v in terms.items() if k.startswith("mixer_")).backward()
    assert net.base.trunk.layer3[0].conv1.weight.grad is None
    assert net.heads.related[0][0].conv1.weight.grad is not None


def test_addon_rejects_unknown_modules():
    cfg = {**ADDON, "mixer": {"addon": {**ADDON["mixer"]["addon"], "split_module": "layer9"}}}
    with pytest.raises(VibenchError, match="layer9"):
        MixERMethod(cfg, "sysu").build_model(5)


def test_configs_load_and_paper_parameter_count_pinned():
    from vibench.engine.config import load_config

    counts = {}
    for ds, n in (("sysu", 395), ("regdb", 206)):
        cfg = load_config("mixer", "paper", ds)
        with torch.device("meta"):
            net = MixERMethod(cfg, ds).build_model(n)
        counts[ds] = sum(p.numel() for p in net.parameters())
    assert counts == {"sysu": 57_610_754, "regdb": 54_723_650}
    tiny = load_config("mixer", "tiny", "sysu")
    assert tiny["mixer"]["test"]["mode"] == "mixer"
    addon = load_config("mixer", "methods/vibench_methods/configs/mixer/agw_addon_tiny.yaml", "sysu")
    assert addon["mixer"]["addon"]["base"] == "agw"
