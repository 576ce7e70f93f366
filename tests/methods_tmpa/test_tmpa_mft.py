"""TMPA's MFT (Sec. III-D, Eq. 9-11) on the conv blocks' own 1x1 convolutions: the Q/K/V weights are
the conv blocks' Parameter objects, and the attention is recomputed here by hand from them."""
from __future__ import annotations

import math

import pytest
import torch

from vibench.errors import VibenchError
from vibench_methods.layers.modality_transfer import cross_attention, projection_convs, tap_block
from vibench_methods.tmpa import TMPANet


def _hand_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(Q K^T / sqrt(d)) V for each row, written out with explicit loops over rows."""
    b, d, h, w = q.shape
    out = torch.empty(b, v.shape[1], h * w, dtype=v.dtype)
    for r in range(b):
        qr, kr, vr = q[r].reshape(d, -1).T, k[r].reshape(d, -1).T, v[r].reshape(v.shape[1], -1).T
        logits = qr @ kr.T / math.sqrt(d)
        out[r] = (torch.softmax(logits, dim=1) @ vr).T
    return out.reshape(b, v.shape[1], h, w)


def test_bottleneck_qkv_are_the_conv_blocks_1x1_parameters() -> None:
    with torch.device("meta"):
        net = TMPANet(206, backbone="resnet50")
    assert list(net.mft.parameters()) == []  # the MFT owns no weights
    q_v, _ = projection_convs(tap_block(net.conv_vis))
    q_i, _ = projection_convs(tap_block(net.conv_ir))
    k_sh, v_sh = projection_convs(tap_block(net.conv_sh))
    assert q_v.weight is net.conv_vis.layer4[0].conv1.weight
    assert q_i.weight is net.conv_ir.layer4[0].conv1.weight
    assert k_sh.weight is net.conv_sh.layer4[0].conv1.weight
    assert v_sh.weight is net.conv_sh.layer4[0].downsample[0].weight
    assert tuple(q_v.weight.shape) == (512, 1024, 1, 1) and tuple(v_sh.weight.shape) == (2048, 1024, 1, 1)
    # the model's parameter list holds each of them exactly once (no copies)
    ids = [id(p) for p in net.parameters()]
    assert all(ids.count(id(p.weight)) == 1 for p in (q_v, q_i, k_sh, v_sh))


@pytest.mark.slow
def test_bottleneck_mft_matches_a_hand_computation_and_reuses_the_projections() -> None:
    torch.manual_seed(0)
    # float64: random-init logits are large, so float32 rounding can flip near-tied softmax winners
    net = TMPANet(5, backbone="resnet50").eval().double()
    v_img, i_img = torch.randn(2, 3, 64, 32).double(), torch.randn(2, 3, 64, 32).double()
    mixed = torch.randn(4, 3, 64, 32).double()
    with torch.no_grad():
        x_sh, x_v, x_i = net.extract_sh(mixed), net.extract_vis(v_img), net.extract_ir(i_img)
        t = net.mft(net.conv_sh, x_sh, net.conv_vis, x_v, net.conv_ir, x_i)
        h_sh, h_v = net.conv_sh.layer3(x_sh), net.conv_vis.layer3(x_v)
        tap_sh, tap_v = net.conv_sh.layer4[0], net.conv_vis.layer4[0]
        q = tap_v.bn1(tap_v.conv1(h_v))
        k = tap_sh.bn1(tap_sh.conv1(h_sh))[:2]
        val = tap_sh.downsample(h_sh)[:2]
        want = _hand_attention(q, k, val)
        assert torch.allclose(t["ca_vis"], want, atol=1e-4)
        assert torch.allclose(t["conv_vis"], net.conv_vis(x_v), atol=1e-5)
        assert torch.allclose(t["sp_vis_prime"], want + net.conv_vis(x_v), atol=1e-4)  # Eq. 11
        # a change of Conv_sh's value projection changes F_CA^V, F_CA^I and F_Conv^sh, not F_Conv^V
        net.conv_sh.layer4[0].downsample[0].weight.mul_(1.5)
        t2 = net.mft(net.conv_sh, x_sh, net.conv_vis, x_v, net.conv_ir, x_i)
    assert not torch.allclose(t2["ca_vis"], t["ca_vis"]) and not torch.allclose(t2["ca_ir"], t["ca_ir"])
    assert not torch.allclose(t2["conv_sh"], t["conv_sh"])
    assert torch.equal(t2["conv_vis"], t["conv_vis"])


def test_basicblock_projections_are_the_shortcut_convs_and_rows_stay_separate() -> None:
    """ResNet-18 / micro blocks have one 1x1 convolution (the shortcut): Q = downsample(x_V),
    K = V = downsample(x_sh), attention within each row's own shared map."""
    torch.manual_seed(1)
    net = TMPANet(3, backbone="resnet_micro").eval()
    q_conv, v_conv = projection_convs(tap_block(net.conv_vis))
    assert q_conv is v_conv is net.conv_vis.layer4[0].downsample[0]
    x_sh, x_v = torch.randn(2, 64, 8, 4), torch.randn(2, 64, 8, 4)
    with torch.no_grad():
        t = net.mft(net.conv_sh, x_sh, net.conv_vis, x_v)
        h_sh, h_v = net.conv_sh.layer3(x_sh), net.conv_vis.layer3(x_v)
        kv = net.conv_sh.layer4[0].downsample(h_sh)
        q = net.conv_vis.layer4[0].downsample(h_v)
        assert torch.allclose(t["ca_vis"], _hand_attention(q, kv, kv), atol=1e-5)
        x_sh2 = x_sh.clone()
        x_sh2[1] += 1.0
        t2 = net.mft(net.conv_sh, x_sh2, net.conv_vis, x_v)
    assert torch.allclose(t2["ca_vis"][0], t["ca_vis"][0], atol=1e-6)
    assert not torch.allclose(t2["ca_vis"][1], t["ca_vis"][1])
    assert set(t) == {"conv_sh", "conv_vis", "ca_vis", "sp_vis_prime"}


def test_cross_attention_two_token_hand_example() -> None:
    # d = 1, two tokens: q = (1, 0), k = (0, ln 3) -> weights softmax(0, ln 3) = (1/4, 3/4) for token 0
    # and (1/2, 1/2) for token 1; v = (4, 8) -> (7, 6)
    q = torch.tensor([1.0, 0.0]).view(1, 1, 2, 1)
    k = torch.tensor([0.0, math.log(3.0)]).view(1, 1, 2, 1)
    v = torch.tensor([4.0, 8.0]).view(1, 1, 2, 1)
    assert torch.allclose(cross_attention(q, k, v).flatten(), torch.tensor([7.0, 6.0]))
    with pytest.raises(VibenchError, match="last_stride"):
        cross_attention(q, k.view(1, 1, 1, 2), v.view(1, 1, 1, 2))


def test_strided_layer4_is_refused() -> None:
    with pytest.raises(VibenchError, match="last_stride: 1"):
        TMPANet(3, backbone="resnet_micro", last_stride=2)
