"""AGW building blocks and model against hand computations (docs/methods.md#agw-notes)."""
from __future__ import annotations

import math

import pytest
import torch

from vibench.engine.api import StepState
from vibench.engine.config import load_config
from vibench.engine.latency import count_parameters
from vibench_methods.layers.gem import GeM
from vibench_methods.layers.nonlocal_block import NonLocalBlock
from vibench_methods.losses.triplet import batch_hard_triplet, weighted_regularized_triplet
from vibench.registry import get_method_class


pytestmark = pytest.mark.usefixtures("one_thread")


def test_gem_constant_map_and_cubic_mean():
    x = torch.full((2, 3, 4, 5), 2.5)
    assert torch.allclose(GeM(3.0)(x), torch.full((2, 3), 2.5), atol=1e-6)
    y = torch.tensor([1.0, 2.0]).view(1, 1, 1, 2)
    assert GeM(3.0)(y).item() == pytest.approx(4.5 ** (1 / 3), rel=1e-6)  # ((1 + 8) / 2) ** (1/3)
    assert GeM(1.0)(y).item() == pytest.approx(1.5, rel=1e-6)  # p = 1 is average pooling


def test_nonlocal_is_identity_at_init_and_uses_no_softmax():
    x = torch.randn(2, 8, 3, 2)
    blk = NonLocalBlock(8).eval()
    assert blk.theta.out_channels == 4  # C' = C / 2
    assert torch.equal(blk(x), x)  # W's BatchNorm starts at zero
    assert NonLocalBlock(8, "official").theta.out_channels == 1
    # hand example: C = 2, C' = 1, two positions; theta = channel 0, phi = channel 1, g = sum
    b = NonLocalBlock(2, "official").eval()
    with torch.no_grad():
        for conv, w in ((b.theta, [1.0, 0.0]), (b.phi, [0.0, 1.0]), (b.g, [1.0, 1.0])):
            conv.weight.copy_(torch.tensor(w).view(1, 2, 1, 1))
            conv.bias.zero_()
        b.W[0].weight.fill_(1.0)
        b.W[0].bias.zero_()
        b.W[1].weight.fill_(1.0)
        b.W[1].eps = 0.0
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 2, 1, 2)  # a = (1, 2), b = (3, 4)
    # f[n, m] = a_n b_m / 2; y_n = sum_m f[n, m] (a_m + b_m) = a_n * 36 / 2 = (18, 36)
    expected = torch.tensor([[1 + 18.0, 2 + 36.0], [3 + 18.0, 4 + 36.0]]).view(1, 2, 1, 2)
    assert torch.allclose(b(x), expected)


def _softplus(v: float) -> float:
    return math.log1p(math.exp(-v))


def test_weighted_regularized_triplet_by_hand():
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    y = torch.tensor([0, 0, 1, 1])
    pts = [0.0, 1.0, 3.0, 7.0]
    total = 0.0
    for i in range(4):
        pos = [abs(pts[i] - pts[j]) for j in range(4) if y[j] == y[i]]  # the anchor itself included (d = 0)
        neg = [abs(pts[i] - pts[j]) for j in range(4) if y[j] != y[i]]
        # softmax weights as in the reference: exp(v - M) / (sum exp(v - M) + 1e-6), M = the row
        # max of the masked values (for negatives the masked zeros make M = 0)
        wp = [math.exp(d - max(pos)) for d in pos]
        wn = [math.exp(-d) for d in neg]
        far = sum(w * d for w, d in zip(wp, pos)) / (sum(wp) + 1e-6)
        close = sum(w * d for w, d in zip(wn, neg)) / (sum(wn) + 1e-6)
        total += _softplus(close - far)
    assert weighted_regularized_triplet(x, y).item() == pytest.approx(total / 4, rel=1e-5)
    # anchor 0 alone: far = e/(1+e), close = (3e^-3 + 7e^-7)/(e^-3 + e^-7)
    far0 = math.e / (1 + math.e)
    close0 = (3 * math.exp(-3) + 7 * math.exp(-7)) / (math.exp(-3) + math.exp(-7))
    assert close0 - far0 == pytest.approx(2.3408, abs=1e-4)


def test_batch_hard_triplet_by_hand():
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    y = torch.tensor([0, 0, 1, 1])
    # anchors: (ap, an) = (1, 3), (1, 2), (4, 2), (4, 6) -> hinge with margin 0.3: 0, 0, 2.3, 0
    assert batch_hard_triplet(x, y, margin=0.3).item() == pytest.approx(2.3 / 4, rel=1e-5)


def _tiny_agw(extra=()):
    cfg = load_config("agw", "tiny", overrides=["model.backbone=resnet_micro", "input.size=[32,16]", *extra])
    method = get_method_class("agw")(cfg, "sysu")
    torch.manual_seed(0)
    return method, method.build_model(6)


def test_agw_forward_backward_shapes_and_losses():
    method, model = _tiny_agw()
    model.train()
    b = 8
    batch = {"vis": torch.randn(b, 3, 32, 16), "ir": torch.randn(b, 3, 32, 16),
             "vis_label": torch.arange(b) // 2 % 6, "ir_label": torch.arange(b) // 2 % 6}
    out = model(batch["vis"], batch["ir"])
    assert out["pool"].shape == (2 * b, 256) and out["feat"].shape == (2 * b, 256) and out["logits"].shape == (2 * b, 6)
    terms = method.training_step(model, batch, StepState("main", 0, 1, 0, 1, torch.device("cpu")))
    assert set(terms) == {"id", "wrt"}
    labels = torch.cat([batch["vis_label"], batch["ir_label"]])
    out = model(batch["vis"], batch["ir"])  # same weights, BN in train mode: same batch statistics
    assert terms["id"].item() == pytest.approx(torch.nn.functional.cross_entropy(out["logits"], labels).item(), rel=1e-5)
    assert terms["wrt"].item() == pytest.approx(weighted_regularized_triplet(out["pool"], labels).item(), rel=1e-5)
    sum(terms.values()).backward()
    assert model.visible_stem.conv1.weight.grad is not None and model.infrared_stem.conv1.weight.grad is not None
    assert model.neck.classifier.weight.grad.abs().sum() > 0
    assert model.neck.bottleneck.bias.grad is None  # BN-neck bias frozen
    model.eval()
    emb = method.embed(model, torch.randn(3, 3, 32, 16), "visible")
    assert emb["feat"].shape == (3, 256) and torch.allclose(emb["feat"].norm(dim=1), torch.ones(3), atol=1e-5)
    assert "logits" not in model(vis=torch.randn(2, 3, 32, 16))


def test_agw_modality_specific_stems():
    method, model = _tiny_agw()
    model.eval()
    x = torch.randn(2, 3, 32, 16)
    with torch.no_grad():
        model.infrared_stem.conv1.weight.add_(0.5)
    assert not torch.allclose(method.embed(model, x, "visible")["feat"], method.embed(model, x, "infrared")["feat"])


def test_agw_paper_parameter_counts():
    """docs/methods.md#reference-parameter-counts: effective 31.69M incl. classifier; by parts (SYSU, 395 classes)."""
    cfg = load_config("agw", "paper", dataset="sysu")
    method = get_method_class("agw")(cfg, "sysu")
    with torch.device("meta"):
        model = method.build_model(395)
    resnet50_no_fc, stem = 23_508_032, 9408 + 128

    def nl(c: int) -> int:
        ci = c // 2
        return 3 * (c * ci + ci) + (ci * c + c) + 2 * c

    nonlocal_params = 2 * nl(512) + 3 * nl(1024)
    assert nonlocal_params == 7_358_464
    neck = 2 * 2048
    counts = count_parameters(model, method, (288, 144))
    assert counts["registered"] == resnet50_no_fc + stem + nonlocal_params + neck + 2048 * 395 == 31_689_088
    assert counts["effective"] == counts["registered"] - 2048 * 395  # the classifier is not on the test path
    with torch.device("meta"):
        official = get_method_class("agw")(load_config("agw", "paper", overrides=["model.nl_inner=official"]), "sysu").build_model(395)
    assert count_parameters(official, method, (288, 144))["effective"] == pytest.approx(24.36e6 - 2048 * 395, rel=2e-3)
