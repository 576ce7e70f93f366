"""AMINet's paper reading (issue 14), each item against a hand computation: the upper-body crop
augmented on its own, non-local blocks at the paper's stages, Eq. 3's shared fusion, the optional
contrastive aligner term, and AMK-MMD kernel weights that cannot collapse."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from vibench.engine.api import StepState
from vibench.engine.augment import build_pipeline
from vibench.engine.batch_sampler import EpochPlan
from vibench.engine.config import load_config
from vibench.engine.trainer import HOOK_VIEW_TAG, _EpochBatches
from vibench_methods.aminet import AMINet, AMINetNet, SharedFusion, upper_body
from vibench_methods.layers.nonlocal_block import NonLocalBlock
from vibench_methods.losses.contrastive import aggregation_contrastive_loss
from vibench_methods.losses.mmd import AMKMMD

RELEASED = "methods/vibench_methods/configs/aminet/released_code.yaml"


def _image(h: int = 8, w: int = 4) -> np.ndarray:
    """Red = row index, green = column index: flips and crops are read off the pixels."""
    img = np.zeros((h, w, 3), dtype=np.uint8)
    img[:, :, 0] = np.arange(h)[:, None]
    img[:, :, 1] = np.arange(w)[None, :]
    return img


def _flips(key: list[int]) -> bool:
    return bool(np.random.default_rng(key).random() < 0.5)  # HFlip(p=0.5): one draw


def test_upper_body_crop_gets_its_own_flip() -> None:
    cfg = load_config("aminet", "tiny", dataset="sysu")
    method = AMINet(cfg, "sysu")
    pipe = build_pipeline([{"op": "hflip", "p": 0.5}])
    # find a seed where the full image flips and the crop does not (main draw: (seed, stage,
    # epoch, batch, modality, slot); crop draw: the same key + [HOOK_VIEW_TAG]); then the converse
    seed = next(s for s in range(100) if _flips([s, 0, 0, 0, 0, 0]) and not _flips([s, 0, 0, 0, 0, 0, HOOK_VIEW_TAG]))
    seed2 = next(s for s in range(100) if not _flips([s, 0, 0, 0, 0, 0]) and _flips([s, 0, 0, 0, 0, 0, HOOK_VIEW_TAG]))
    images = _image()[None]
    plan = EpochPlan(vis=np.array([[0]]), ir=np.array([[0]]), labels=np.array([[0]]))
    for s, full_flipped in ((seed, True), (seed2, False)):
        out = _EpochBatches(images, plan, [pipe], [pipe], [s, 0], 0, method.extra_views)[0]
        full, top = out["vis"][0].numpy(), out["vis_upper"][0].numpy()
        assert top.shape == (4, 4, 3)  # upper_ratio 0.5 of the 8 un-augmented rows
        assert list(full[0, :, 1]) == ([3, 2, 1, 0] if full_flipped else [0, 1, 2, 3])
        assert list(top[0, :, 1]) == ([0, 1, 2, 3] if full_flipped else [3, 2, 1, 0])
        assert list(top[:, 0, 0]) == [0, 1, 2, 3]  # the top rows
    # part_augment: shared -> no extra view (the model cuts the crop from the augmented image)
    shared = AMINet(load_config("aminet", "tiny", dataset="sysu", overrides=["aminet.part_augment=shared"]), "sysu")
    out = _EpochBatches(images, plan, [pipe], [pipe], [seed, 0], 0, shared.extra_views)[0]
    assert "vis_upper" not in out


def test_model_uses_the_given_upper_body_images() -> None:
    torch.manual_seed(0)
    net = AMINetNet(3, backbone="resnet_micro", pesam={"enabled": False}).eval()
    g = torch.Generator().manual_seed(0)
    vis, ir = torch.randn(2, 3, 32, 16, generator=g), torch.randn(2, 3, 32, 16, generator=g)
    with torch.no_grad():
        cut = net(vis, ir)
        given = net(vis, ir, upper_body(vis, 0.5), upper_body(ir, 0.5))  # the same crop, given
        other = net(vis, ir, upper_body(vis.flip(-1), 0.5), upper_body(ir, 0.5))
    assert torch.equal(cut["p"], given["p"]) and torch.equal(cut["g"], given["g"])
    assert not torch.allclose(other["p"][:2], cut["p"][:2]) and torch.equal(other["g"], cut["g"])
    assert torch.equal(other["p"][2:], cut["p"][2:])
    with pytest.raises(Exception, match="vis_part/ir_part"):
        net(vis, ir, upper_body(vis, 0.5), None)


def test_non_local_blocks_at_the_paper_stages_shared_by_both_trunks() -> None:
    cfg = load_config("aminet", "paper", dataset="sysu")
    assert cfg["model"]["non_local"] == [0, 2, 3, 0] and cfg["aminet"]["share_non_local"] is True
    method = AMINet(cfg, "sysu")
    with torch.device("meta"):
        net = method.build_model(395)
    for trunk in (net.trunk_global, net.trunk_part):
        nl = {stage: [n for n, m in getattr(trunk, stage).named_children() if isinstance(m, NonLocalBlock)]
              for stage in ("layer1", "layer2", "layer3", "layer4")}
        # after the last 2 of layer2's 4 blocks and the last 3 of layer3's 6 (AGW / released code)
        assert nl == {"layer1": [], "layer2": ["nl2", "nl3"], "layer3": ["nl3", "nl4", "nl5"], "layer4": []}
    for stage, names in (("layer2", ["nl2", "nl3"]), ("layer3", ["nl3", "nl4", "nl5"])):
        for n in names:
            assert getattr(net.trunk_part, stage).get_submodule(n) is getattr(net.trunk_global, stage).get_submodule(n)
    # one NL set: C -> C/2 theta/phi/g (+bias), C/2 -> C W (+bias) and BN(C)
    def nl_params(c: int) -> int:
        return 3 * (c * (c // 2) + c // 2) + (c // 2) * c + c + 2 * c
    shared = sum(p.numel() for n, p in net.named_parameters() if ".nl" in n)
    assert shared == 2 * nl_params(512) + 3 * nl_params(1024) == 7358464


def test_shared_fusion_eq3_hand_value_and_concatenation_order() -> None:
    f = SharedFusion(4, 2, 1)
    with torch.no_grad():
        f.fc1.weight.copy_(torch.tensor([[1.0, 0, 0, -1], [0, 1, 1, 0]]))
        f.fc1.bias.copy_(torch.tensor([0.5, -1.0]))
        f.fc2.weight.copy_(torch.tensor([[2.0, 3.0]]))
        f.fc2.bias.copy_(torch.tensor([1.0]))
        # fc1: [1 - 4 + 0.5, 2 + 3 - 1] = [-2.5, 4] -> ReLU [0, 4] -> 2*0 + 3*4 + 1 = 13
        assert float(f(torch.tensor([[1.0, 2, 3, 4]]))) == 13.0
    torch.manual_seed(0)
    net = AMINetNet(3, backbone="resnet_micro", pesam={"enabled": False}, fusion={"enabled": True}).train()
    assert (net.fusion.fc1.in_features, net.fusion.fc1.out_features, net.fusion.fc2.out_features) == (1024, 512, 512)
    net.fusion = nn.Identity()  # read phi_shared's input: [g_V || g_I || p_V || p_I] per pair
    net.neck_fused = type(net.neck_fused)(1024, 3)
    y = torch.tensor([0, 1])
    out = net(torch.randn(2, 3, 32, 16), torch.randn(2, 3, 32, 16))
    g, p, d = out["g"], out["p"], 256
    assert out["fused"].shape == (2, 4 * d)
    assert torch.equal(out["fused"][:, :d], g[:2]) and torch.equal(out["fused"][:, d:2 * d], g[2:])
    assert torch.equal(out["fused"][:, 2 * d:3 * d], p[:2]) and torch.equal(out["fused"][:, 3 * d:], p[2:])
    assert out["logits_fused"].shape == (2, 3) and y.shape == (2,)


def test_contrastive_aligner_term_hand_example() -> None:
    # two ids x two modalities, features on the axes, tau = 1: each anchor has one cross-modal
    # positive at similarity 1 and two negatives at 0 -> -log(e / (e + 2)) = log(e + 2) - 1
    f = torch.tensor([[1.0, 0], [0, 1], [1, 0], [0, 1]])
    y = torch.tensor([0, 1, 0, 1])
    mods = torch.tensor([0, 0, 1, 1])
    assert abs(float(aggregation_contrastive_loss(f, y, mods, tau=1.0)) - (math.log(math.e + 2) - 1)) < 1e-6
    # off in the paper config (the paper lists ID, triplet and MMD losses); on, it is w x that loss on [g || p]
    assert load_config("aminet", "paper", dataset="sysu")["loss"]["contrastive_weight"] == 0.0
    cfg = load_config("aminet", "tiny", dataset="sysu", overrides=["model.backbone=resnet_micro", "loss.contrastive_weight=0.5"])
    m = AMINet(cfg, "sysu")
    torch.manual_seed(0)
    model = m.build_model(3).eval()  # eval BN: the step's forward and ours see the same statistics
    model.training = True  # training outputs (inter, fused) with eval-mode BN
    g = torch.Generator().manual_seed(1)
    lab = torch.tensor([0, 0, 1, 1])
    batch = {"vis": torch.randn(4, 3, 64, 32, generator=g), "ir": torch.randn(4, 3, 64, 32, generator=g),
             "vis_label": lab, "ir_label": lab}
    terms = m.training_step(model, batch, StepState("main", 0, 1, 0, 1, torch.device("cpu")))
    intra = model(batch["vis"], batch["ir"])["intra"]
    want = 0.5 * aggregation_contrastive_loss(intra, torch.cat([lab, lab]), torch.tensor([0] * 4 + [1] * 4), tau=1 / 16)
    assert torch.allclose(terms["con_intra"], want, atol=1e-6)


def _per_kernel(x: torch.Tensor, y: torch.Tensor, mults: list[float]) -> list[float]:
    """MMD^2 of each kernel alone (the bandwidth base is that of the pooled set, as in AMKMMD)."""
    vals = []
    for m in mults:
        one = AMKMMD(mults, learn_weights=False, weight_floor=0.0)
        one.multipliers = torch.tensor([m])
        one.logits = torch.zeros(1)
        vals.append(float(one(x, y)))
    return vals


def test_mmd_weight_floor_hand_values() -> None:
    mmd = AMKMMD([0.25, 0.5, 1, 2, 4], weight_floor=0.5)
    with torch.no_grad():
        mmd.logits.copy_(torch.tensor([100.0, -100, -100, -100, -100]))  # softmax ~ one-hot
    assert torch.allclose(mmd.alphas, torch.tensor([0.6, 0.1, 0.1, 0.1, 0.1]))  # 0.5 x onehot + 0.5 / 5
    assert torch.allclose(AMKMMD(weight_floor=1.0).alphas, torch.full((5,), 0.2))


@pytest.mark.parametrize("objective", ["maximise", "minimise"])
def test_mmd_weights_move_toward_the_informative_kernel_and_cannot_collapse(objective: str) -> None:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(8, 4, generator=g), torch.randn(8, 4, generator=g) + 1.5
    mults = [0.25, 0.5, 1.0, 2.0, 4.0]
    per = _per_kernel(x, y, mults)
    mmd = AMKMMD(mults, weight_objective=objective, weight_floor=0.5)
    loss = mmd(x, y)
    # the loss is linear in alpha: L = sum alpha_m MMD_m
    assert abs(float(loss.detach()) - sum(a * v for a, v in zip(mmd.alphas.tolist(), per))) < 1e-5
    loss.backward()
    # at equal logits dL/dz_j = (1 - floor) / M (MMD_j - mean MMD); maximise reverses it
    mean = sum(per) / 5
    sign = -1.0 if objective == "maximise" else 1.0
    want = torch.tensor([sign * 0.5 / 5 * (v - mean) for v in per])
    assert torch.allclose(mmd.logits.grad, want, atol=1e-6)
    opt = torch.optim.SGD(mmd.parameters(), lr=50.0)
    for _ in range(300):
        opt.zero_grad()
        mmd(x, y).backward()
        opt.step()
    a = mmd.alphas.detach()
    target = int(np.argmax(per)) if objective == "maximise" else int(np.argmin(per))
    assert int(a.argmax()) == target
    assert float(a.min()) >= 0.1 - 1e-6 and float(a.max()) <= 0.6 + 1e-6  # the floor: never one kernel
    assert float(a[target]) > 0.55


def test_released_code_variant_differs_only_where_the_code_does() -> None:
    paper = load_config("aminet", "paper", dataset="sysu")
    code = load_config("aminet", RELEASED, dataset="sysu")
    assert code["model"]["non_local"] == [0, 0, 0, 0] and code["aminet"]["inter_pairing"] == "code"
    assert not code["aminet"]["fusion"]["enabled"] and not code["aminet"]["pesam"]["enabled"]
    assert code["aminet"]["mmd"]["learn_weights"] is False and code["aminet"]["mmd"]["estimator"] == "biased"
    assert paper["aminet"]["part_augment"] == code["aminet"]["part_augment"] == "independent"
    assert paper["augment"] == code["augment"] and paper["optimizer"] == code["optimizer"]
