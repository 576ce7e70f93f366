"""A tiny plug-in method for the runner tests, registered the way an external package would
(imported through --plugins / $VIBENCH_PLUGINS). It trains through the real engine."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vibench.engine.api import Method, StepState
from vibench.registry import register_method

CONFIG_DIR = Path(__file__).parent / "mock_configs"


class TinyNet(nn.Module):
    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
                                      nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(16, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(x)
        return f, self.classifier(f)


@register_method("mock")
class MockMethod(Method):
    paper = "test-only mock method"
    config_dir = CONFIG_DIR

    def build_model(self, num_classes: int) -> nn.Module:
        return TinyNet(num_classes)

    def training_step(self, model: nn.Module, batch: dict[str, torch.Tensor], state: StepState) -> dict[str, torch.Tensor]:
        fail_on = (self.cfg.get("options") or {}).get("fail_on")
        if fail_on == self.dataset:
            raise RuntimeError(f"mock configured to fail on {fail_on}")
        x = torch.cat([batch["vis"], batch["ir"]])
        y = torch.cat([batch["vis_label"], batch["ir_label"]])
        _, logits = model(x)
        return {"id": F.cross_entropy(logits, y)}

    def embed(self, model: nn.Module, images: torch.Tensor, modality: str) -> dict[str, Any]:
        f, _ = model(images)
        return {"feat": f}
