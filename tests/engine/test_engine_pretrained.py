"""Backbone initialisation (vibench.engine.pretrained, vibench_methods.layers.backbones): the known
ImageNet files, the torch hub cache used offline, sha256 checks, the errors that say where a file
goes, and the ViT key mapping. No network: every weight file is generated into a temporary cache
and its hash registered through the KNOWN_WEIGHTS table."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import timm
import torch
import torch.nn.functional as F
import torchvision
from timm.models.vision_transformer import VisionTransformer

from vibench.engine import pretrained as pw
from vibench.engine.config import upgrade_config
from vibench.engine.pretrained import InitSpec, KnownWeights
from vibench.errors import VibenchError
from vibench_methods.layers.backbones import init_info, resnet, vit


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def resnet50_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A torchvision ResNet-50 state dict (random weights, seed 0) and its sha256."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "resnet50-src.pth"
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), path)
    return path, _sha256(path)


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch hub cache ($TORCH_HOME) and downloads switched off."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("VIBENCH_OFFLINE", "1")
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    assert pw.hub_checkpoints() == folder
    return folder


def _register(monkeypatch: pytest.MonkeyPatch, arch: str, file: str, sha256: str | None) -> KnownWeights:
    entry = KnownWeights(arch, f"test {arch}", file, f"https://example.invalid/{file}", sha256)
    monkeypatch.setitem(pw.KNOWN_WEIGHTS, arch, entry)
    return entry


def _cached_resnet50(hub: Path, src: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, full: bool = True) -> Path:
    path, digest = src
    entry = _register(monkeypatch, "resnet50", f"resnet50-{digest[:8]}.pth", digest if full else None)
    hub.mkdir(parents=True, exist_ok=True)
    (hub / entry.file).write_bytes(path.read_bytes())
    return hub / entry.file


def test_the_table_names_the_files_torchvision_and_timm_publish() -> None:
    r50 = pw.KNOWN_WEIGHTS["resnet50"]
    assert r50.url == torchvision.models.ResNet50_Weights.IMAGENET1K_V1.url
    assert r50.file == "resnet50-0676ba61.pth" and r50.sha256.startswith(r50.hash_prefix)
    for arch, enum in (("resnet18", "ResNet18_Weights"), ("resnet34", "ResNet34_Weights"), ("resnet101", "ResNet101_Weights")):
        assert pw.KNOWN_WEIGHTS[arch].url == getattr(torchvision.models, enum).IMAGENET1K_V1.url
    vit_b = pw.KNOWN_WEIGHTS["vit_base"]
    assert vit_b.url == timm.models.get_pretrained_cfg("vit_base_patch16_224.orig_in21k_ft_in1k").url
    assert vit_b.file == "jx_vit_base_p16_224-80ecf9dd.pth" and vit_b.hash_prefix == "80ecf9dd"


def test_imagenet_init_loads_from_the_cache_offline(hub, resnet50_file, monkeypatch) -> None:
    cached = _cached_resnet50(hub, resnet50_file, monkeypatch)
    net = resnet("resnet50", last_stride=1, weights=InitSpec("imagenet", "resnet50"))
    state = torch.load(cached, weights_only=True)
    ours = net.state_dict()
    assert set(ours) == set(state)
    for key, value in state.items():  # the ImageNet classifier (fc) is not loaded: the methods never use it
        assert torch.equal(ours[key], value) != key.startswith("fc."), key
    assert net.layer4[0].conv2.stride == (1, 1)  # the last stride changes strides, not weights
    record = init_info(InitSpec("imagenet", "resnet50"))
    assert record == {"kind": "imagenet", "arch": "resnet50", "name": "test resnet50", "file": str(cached.resolve()),
                      "sha256": resnet50_file[1], "expected_sha256": resnet50_file[1],
                      "url": f"https://example.invalid/{cached.name}", "source": "cache"}


def test_a_prefix_only_entry_records_the_computed_full_hash(hub, resnet50_file, monkeypatch) -> None:
    _cached_resnet50(hub, resnet50_file, monkeypatch, full=False)
    record = pw.resolve_init(InitSpec("imagenet", "resnet50"))
    assert record["sha256"] == resnet50_file[1] and record["expected_sha256"] == resnet50_file[1][:8]


def test_a_wrong_hash_names_expected_and_actual(hub, resnet50_file, monkeypatch) -> None:
    cached = _cached_resnet50(hub, resnet50_file, monkeypatch)
    _register(monkeypatch, "resnet50", cached.name, "0" * 64)
    with pytest.raises(VibenchError) as exc:
        resnet("resnet50", weights=InitSpec("imagenet", "resnet50"))
    assert f"sha256 {resnet50_file[1]}" in str(exc.value) and f"expected {'0' * 64}" in str(exc.value)
    _register(monkeypatch, "resnet50", "resnet50-deadbeef.pth", None)
    (hub / "resnet50-deadbeef.pth").write_bytes(cached.read_bytes())
    with pytest.raises(VibenchError, match=r"expected deadbeef\.\.\. \(the prefix in resnet50-deadbeef\.pth\)"):
        pw.resolve_init(InitSpec("imagenet", "resnet50"))


def test_missing_and_offline_says_where_to_put_the_file(hub, monkeypatch) -> None:
    entry = pw.KNOWN_WEIGHTS["resnet50"]
    with pytest.raises(VibenchError) as exc:
        pw.resolve_init(InitSpec("imagenet", "resnet50"))
    text = str(exc.value)
    for part in (entry.file, entry.sha256, entry.url, f"into {hub}/", "--weights resnet50=PATH"):
        assert part in text, part


def test_a_failed_download_says_where_to_put_the_file(hub, monkeypatch) -> None:
    monkeypatch.delenv("VIBENCH_OFFLINE")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    calls = []

    def no_network(url: str, dst: str, **kw: object) -> None:
        calls.append((url, dst))
        raise OSError("network unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    entry = pw.KNOWN_WEIGHTS["vit_base"]
    with pytest.raises(VibenchError, match="network unreachable") as exc:
        pw.resolve_init(InitSpec("imagenet", "vit_base"))
    assert calls == [(entry.url, str(hub / entry.file))]
    assert f"into {hub}/" in str(exc.value) and "80ecf9dd..." in str(exc.value)


def test_a_local_file_works_as_file_and_as_a_verified_imagenet_copy(hub, resnet50_file, monkeypatch) -> None:
    path, digest = resnet50_file
    net = resnet("resnet50", weights=InitSpec("file", "resnet50", str(path)))
    assert torch.equal(net.conv1.weight, torch.load(path, weights_only=True)["conv1.weight"])
    assert init_info(str(path), "resnet50") == {"kind": "file", "arch": "resnet50", "file": str(path.resolve()), "sha256": digest}
    # imagenet with a local copy: checked against the table, nothing looked up in the (empty) cache
    _register(monkeypatch, "resnet50", f"resnet50-{digest[:8]}.pth", digest)
    record = pw.resolve_init(InitSpec("imagenet", "resnet50", str(path)))
    assert record["source"] == "local file" and record["sha256"] == digest
    _register(monkeypatch, "resnet50", "resnet50-0676ba61.pth", "1" * 64)
    with pytest.raises(VibenchError, match="expected 1111"):
        pw.resolve_init(InitSpec("imagenet", "resnet50", str(path)))
    with pytest.raises(VibenchError, match="does not exist"):
        pw.resolve_init(InitSpec("file", "resnet50", str(path.parent / "nope.pth")))


def test_the_vit_loader_maps_a_standard_checkpoint_as_pmt_does(hub, monkeypatch) -> None:
    """A timm/jx-layout ViT checkpoint at 224 x 224 (head included) into the overlapping-patch ViT
    at 256 x 128: blocks copied, head dropped, the 14 x 14 position grid resized to 21 x 10
    bilinearly (F.interpolate, align_corners False, no antialias), as PMT's resize_pos_embed."""
    torch.manual_seed(1)
    src = VisionTransformer(img_size=224, patch_size=16, embed_dim=96, depth=3, num_heads=3, mlp_ratio=2.0, num_classes=7)
    state = src.state_dict()
    hub.mkdir(parents=True)
    tmp = hub / "vit.pth"
    torch.save(state, tmp)
    digest = _sha256(tmp)
    entry = _register(monkeypatch, "vit_micro", f"vit_micro-{digest[:8]}.pth", digest)
    tmp.rename(hub / entry.file)
    net = vit("vit_micro", img_size=(256, 128), patch_size=16, stride=12, weights=InitSpec("imagenet", "vit_micro"))
    assert net.patch_embed.grid_size == (21, 10)
    ours = net.state_dict()
    for key, value in state.items():
        if key.startswith("head.") or key == "pos_embed":
            continue
        assert torch.equal(ours[key], value), key
    grid = state["pos_embed"][:, 1:].reshape(1, 14, 14, 96).permute(0, 3, 1, 2)
    want = F.interpolate(grid, size=(21, 10), mode="bilinear", align_corners=False).permute(0, 2, 3, 1).reshape(1, 210, 96)
    assert torch.equal(ours["pos_embed"][:, :1], state["pos_embed"][:, :1])
    torch.testing.assert_close(ours["pos_embed"][:, 1:], want, rtol=0, atol=1e-6)


def test_vit_base_takes_the_published_key_layout() -> None:
    """timm's vit_base_patch16_224 (the layout of jx_vit_base_p16_224) against our vit_base: same
    keys and shapes apart from the head and the position grid (meta device: no memory)."""
    with torch.device("meta"):
        ref = timm.create_model("vit_base_patch16_224", pretrained=False).state_dict()
        ours = vit("vit_base", img_size=(256, 128)).state_dict()
    ref = {k: v for k, v in ref.items() if not k.startswith("head.")}
    assert set(ref) == set(ours)
    assert all(ref[k].shape == ours[k].shape for k in ref if k != "pos_embed")
    assert tuple(ours["pos_embed"].shape) == (1, 211, 768) and tuple(ref["pos_embed"].shape) == (1, 197, 768)


def test_config_problems_and_the_upgrade_of_stored_configs() -> None:
    from vibench.engine.config import load_config

    with pytest.raises(VibenchError, match="model.weights: is required with model.init: file"):
        load_config("agw", "tiny", overrides=["model.init=file"])
    with pytest.raises(VibenchError, match="model.init: no ImageNet weights are known for resnet_micro"):
        load_config("agw", "tiny", overrides=["model.init=imagenet"])
    with pytest.raises(VibenchError, match="model.weights: is set"):
        load_config("agw", "tiny", overrides=["model.weights=/x.pth"])
    assert upgrade_config({"model": {"backbone": "resnet50", "weights": "/x.pth"}})["model"]["init"] == "file"
    assert upgrade_config({"model": {"size": "vit_base", "weights": None}})["model"]["init"] == "random"
