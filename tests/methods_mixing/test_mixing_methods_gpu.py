"""CUDA path of AMINet, TMPA and PMCM: one bf16-autocast training step and an embedding on the GPU
(skipped without CUDA)."""
from __future__ import annotations

import pytest
import torch

from vibench.engine.api import StepState
from vibench.engine.config import load_config
from vibench.registry import get_method_class

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


@pytest.mark.parametrize("name", ["aminet", "tmpa", "pmcm"])
def test_cuda_training_step_and_embed(name) -> None:
    dev = torch.device("cuda")
    cfg = load_config(name, "tiny", dataset="sysu", overrides=["model.backbone=resnet_micro"])
    method = get_method_class(name)(cfg, "sysu")
    model = method.build_model(4).to(dev).train()
    y = torch.tensor([0, 0, 1, 1], device=dev)
    batch = {
        "vis": torch.randn(4, 3, 64, 32, device=dev).contiguous(memory_format=torch.channels_last),
        "ir": torch.randn(4, 3, 64, 32, device=dev).contiguous(memory_format=torch.channels_last),
        "vis_label": y, "ir_label": y,
    }
    for epoch in (0, 4):
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
            terms = method.training_step(model, batch, StepState("main", epoch, 5, 0, 1, dev))
        loss = sum(v.float() for v in terms.values())
        assert torch.isfinite(loss)
        loss.backward()
    model.eval()
    with torch.inference_mode(), torch.autocast(device_type="cuda", dtype=torch.bfloat16):
        e = method.embed(model, batch["ir"], "infrared")
    assert e["feat"].device.type == "cuda" and torch.isfinite(e["feat"]).all()
