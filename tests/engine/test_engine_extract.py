"""Feature extraction conventions, parameter counting and latency measurement."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from vibench.engine.api import Method
from vibench.engine.augment import IMAGENET_MEAN, IMAGENET_STD
from vibench.engine.extract import combine_flip, extract_features, resolve_test_settings
from vibench.engine.latency import count_parameters, measure_latency
from vibench.engine.toy import make_toy_dataset
from vibench.errors import VibenchError


@pytest.fixture(autouse=True)
def _private_image_cache(tmp_path, monkeypatch):
    # keep the decoded toy images out of the user's image cache
    monkeypatch.setenv("VIBENCH_IMAGE_CACHE", str(tmp_path / "image-cache"))


#: the two values every method config must state (the schema has no default for them)
TRAINING = {"optimizer": {"lr": 0.1}, "schedule": {"epochs": 1}}


class _ChannelMean(Method):
    """embed = per-channel mean of the normalised image (+ the left-half mean, which a flip changes)."""

    def build_model(self, num_classes):
        return _Net()

    def training_step(self, model, batch, state):
        raise NotImplementedError

    def embed(self, model, images, modality):
        left = images[..., : images.shape[-1] // 2].mean(dim=(2, 3))
        mod = torch.full((len(images), 1), 1.0 if modality == "infrared" else 0.0)
        return {"feat": model(images), "left": left, "mod": mod}


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))
        self.token = nn.Parameter(torch.zeros(3))  # used directly, not through a submodule call
        self.head = nn.Linear(3, 2)  # never used at test time
        self.unused = nn.Linear(3, 3)

    def forward(self, x):
        return x.mean(dim=(2, 3)) * self.scale + self.token


def test_combine_flip_by_hand():
    f, ff = torch.tensor([[3.0, 4.0]]), torch.tensor([[0.0, 5.0]])
    assert torch.allclose(combine_flip(f, ff, "mean"), torch.tensor([[1.5, 4.5]]) / (1.5**2 + 4.5**2) ** 0.5)
    assert torch.allclose(combine_flip(f, ff, "sum"), torch.tensor([[0.6, 1.8]]))  # l2norm(f) + l2norm(f_flip), not renormalised
    assert torch.equal(combine_flip(f, ff, "none"), f)
    with pytest.raises(VibenchError, match="flip"):
        resolve_test_settings({"input": {"size": [4, 2]}, "test": {"flip": "both"}})


@pytest.mark.parametrize("flip", ["none", "mean"])
def test_extract_features_order_modality_and_values(tmp_path, flip):
    toy = make_toy_dataset(tmp_path, train_ids=1, test_ids=2, per_modality=2, size=(8, 4))
    records = list(toy.test())[::-1]  # mixed modalities, reversed order
    cfg = {**TRAINING, "input": {"size": [8, 4]}, "test": {"batch_size": 3, "flip": flip}}
    method = _ChannelMean(cfg, "sysu")
    out = extract_features(method, method.build_model(1), records, tmp_path, cfg, "cpu")
    from PIL import Image

    for i, r in enumerate(records):
        px = np.asarray(Image.open(tmp_path / r.path).convert("RGB"), dtype=np.float64) / 255.0
        expected = (px.mean(axis=(0, 1)) - IMAGENET_MEAN) / IMAGENET_STD
        if flip == "mean":
            expected = expected / np.linalg.norm(expected)
        assert np.allclose(out["feat"][i].numpy(), expected, atol=1e-5)
        assert out["mod"][i].item() == (1.0 if flip == "none" and r.modality == "infrared" else out["mod"][i].item())
        left = (px[:, :2].mean(axis=(0, 1)) - IMAGENET_MEAN) / IMAGENET_STD
        right = (px[:, 2:].mean(axis=(0, 1)) - IMAGENET_MEAN) / IMAGENET_STD
        want = left if flip == "none" else (left + right) / np.linalg.norm(left + right)
        assert np.allclose(out["left"][i].numpy(), want, atol=1e-5)
    if flip == "none":
        assert [v.item() for v in out["mod"][:, 0]] == [1.0 if r.modality == "infrared" else 0.0 for r in records]


def test_count_parameters_registered_and_effective():
    method = _ChannelMean({**TRAINING, "input": {"size": [8, 4]}}, "sysu")
    net = method.build_model(1)
    counts = count_parameters(net, method)
    assert counts == {"registered": 1 + 3 + (3 * 2 + 2) + (9 + 3), "effective": 1 + 3}
    assert count_parameters(net) == {"registered": 24, "effective": 24}


def test_measure_latency_reports_device_and_timing():
    method = _ChannelMean({**TRAINING, "input": {"size": [8, 4]}}, "sysu")
    res = measure_latency(method, method.build_model(1), "cpu", batch=4, warmup=2, repeats=5)
    assert res["device"].startswith("cpu (") and res["batch"] == 4 and res["repeats"] == 5 and res["warmup"] == 2
    assert 0 < res["ms_per_image"] <= res["ms_per_batch_median"]
    assert res["input_size"] == [8, 4] and res["precision"] == "fp32"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_amp_channels_last_training(tmp_path):
    from vibench.engine.config import load_config
    from vibench.engine.trainer import train

    toy = make_toy_dataset(tmp_path / "d", train_ids=4, test_ids=2, per_modality=3)
    cfg = load_config("agw", "tiny", overrides=["model.backbone=resnet_micro", "input.size=[32,16]",
                                                 "sampler.ids_per_batch=2", "sampler.images_per_id=2", "sampler.iterations=2",
                                                 "schedule.epochs=1", "num_workers=0"])
    out = train("agw", cfg, toy, 0, seed=0, device="cuda", workdir=tmp_path / "w", progress=False)
    assert next(out.model.parameters()).is_cuda
    feats = extract_features(out.method, out.model, toy.test(), toy.root, cfg, "cuda")
    assert torch.isfinite(feats["feat"]).all()
