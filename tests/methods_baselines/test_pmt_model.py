"""PMT: overlapping-patch ViT, encoder interface, progressive losses, DCL and MSEL by hand."""
from __future__ import annotations

import pytest
import torch

from vibench.engine.api import StepState
from vibench.engine.augment import build_pipeline
from vibench.engine.config import load_config
from vibench.engine.latency import count_parameters
from vibench_methods.losses.pmt import discriminative_center_loss, modality_shared_enhancement_loss
from vibench.registry import get_method_class


pytestmark = pytest.mark.usefixtures("one_thread")


def test_dcl_by_hand():
    # 1-D features; ids 0: {0, 2}, 1: {4, 10}; centres 1 and 7
    x = torch.tensor([[0.0], [4.0], [2.0], [10.0]])
    y = torch.tensor([0, 1, 0, 1])
    # positives: |1-0|, |1-2|, |7-4|, |7-10| -> mean 2
    # centre 1 negatives {3, 9}, mean 6 -> keep {3}; centre 7 negatives {7, 5}, mean 6 -> keep {5}; an = 4
    assert discriminative_center_loss(x, y).item() == pytest.approx(2 / 4, rel=1e-5)


def test_msel_by_hand():
    v = torch.tensor([[0.0], [2.0], [10.0], [11.0]])
    r = torch.tensor([[1.0], [5.0], [9.0], [13.0]])
    y = torch.tensor([0, 0, 1, 1])
    # visible anchors: (intra, cross) = (2, 3), (2, 2), (1, 2), (1, 2) -> squared diffs 1, 0, 1, 1 -> 0.75
    # infrared anchors: (4, 1), (4, 4), (4, 1.5), (4, 2.5) -> 9, 0, 6.25, 2.25 -> 4.375
    assert modality_shared_enhancement_loss(v, r, y, y).item() == pytest.approx((0.75 + 4.375) / 2, rel=1e-5)


def test_paper_model_tokens_and_parameters():
    cfg = load_config("pmt", "paper", dataset="sysu")
    method = get_method_class("pmt")(cfg, "sysu")
    with torch.device("meta"):
        model = method.build_model(395)
    assert model.backbone.patch_embed.grid_size == (21, 10) and model.num_patches == 210  # docs/methods.md#reference-parameter-counts
    assert tuple(model.backbone.pos_embed.shape) == (1, 211, 768)
    counts = count_parameters(model, method)
    assert counts["registered"] == 85_809_408 + 2 * 768 + 768 * 395 == 86_114_304  # docs/methods.md#reference-parameter-counts
    assert counts["effective"] == 85_809_408 + 2 * 768  # classifier excluded
    with torch.device("meta"):
        tokens = model.backbone.forward_features(torch.zeros(2, 3, 256, 128))
    assert tuple(tokens.shape) == (2, 211, 768)


def _tiny():
    cfg = load_config("pmt", "tiny")
    method = get_method_class("pmt")(cfg, "sysu")
    torch.manual_seed(0)
    return method, method.build_model(5)


def test_encoder_interface_and_embedding():
    method, model = _tiny()
    model.eval()
    x = torch.randn(3, 3, 64, 32)
    cls, patches = model.encode(x)
    assert cls.shape == (3, 96) and patches.shape == (3, 50, 96)  # (64-8)//6+1 = 10 rows, (32-8)//6+1 = 5 cols
    tokens = model.backbone.forward_features(x)
    assert torch.equal(cls, tokens[:, 0]) and torch.equal(patches, tokens[:, 1:])
    emb = method.embed(model, x, "infrared")
    assert torch.allclose(emb["feat"], torch.nn.functional.normalize(model.neck.bottleneck(cls), dim=1), atol=1e-6)
    assert torch.equal(method.embed(model, x, "visible")["feat"], emb["feat"])  # fully shared
    with pytest.raises(Exception, match="ViT input must be"):
        model.encode(torch.randn(1, 3, 32, 32))


def test_progressive_stage_losses_and_gray_stream():
    method, model = _tiny()
    model.train()
    b = 8
    lab = torch.arange(b) // 2
    batch = {"vis": torch.randn(b, 3, 64, 32), "ir": torch.randn(b, 3, 64, 32), "vis_label": lab, "ir_label": lab}
    early = method.training_step(model, batch, StepState("main", 0, 6, 0, 1, torch.device("cpu"), {"stage_index": 0}))
    late = method.training_step(model, batch, StepState("main", 2, 6, 0, 1, torch.device("cpu"), {"stage_index": 0}))
    assert set(early) == {"id", "triplet"} and set(late) == {"id", "triplet", "dcl", "msel"}
    sum(late.values()).backward()
    assert model.backbone.patch_embed.proj.weight.grad is not None
    # the first pl_epochs (2 in tiny) epochs see grayscale visible images
    stage = method.stages()[0]
    assert stage.augment["visible"][0] == {"op": "grayscale", "epochs": [0, 2]}
    pipe = build_pipeline([stage.augment["visible"][0]])
    img = torch.randint(0, 256, (4, 2, 3), dtype=torch.uint8).numpy()
    g = pipe(img, None, epoch=1)
    assert (g[..., 0] == g[..., 1]).all() and (g[..., 1] == g[..., 2]).all()
    assert pipe(img, None, epoch=2) is img
    no_gray = get_method_class("pmt")(load_config("pmt", "tiny", overrides=["pmt.gray_stream=false"]), "sysu")
    assert all(op.get("op") != "grayscale" for op in no_gray.stages()[0].augment["visible"])


def test_lr_multipliers_follow_the_reference():
    paper = load_config("pmt", "paper")
    assert paper["optimizer"]["lr_mult"] == {"backbone.patch_embed": 0.5, "backbone.blocks": 0.5}
    cfg = load_config("pmt", "tiny", overrides=["optimizer.lr_mult={backbone.patch_embed: 0.5, backbone.blocks: 0.5}"])
    method = get_method_class("pmt")(cfg, "sysu")
    model = method.build_model(5)
    stage = method.stages()[0]
    groups = {g["lr_mult"]: g["names"] for g in method.param_groups(model, stage)}
    assert set(groups) == {0.5, 1.0}
    assert all(n.startswith(("backbone.patch_embed", "backbone.blocks")) for n in groups[0.5])
    assert "neck.classifier.weight" in groups[1.0] and "backbone.cls_token" in groups[1.0]
