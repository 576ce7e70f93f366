"""Optimisers, parameter groups and epoch schedules against hand-computed values."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from vibench.engine.optim import build_optimizer, build_schedule, groups_by_prefix
from vibench.errors import VibenchError


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
        self.neck = nn.Linear(2, 1)
        self.frozen = nn.Linear(2, 1)
        self.frozen.weight.requires_grad_(False)


def test_agw_warmup_step_schedule():
    s = build_schedule({"name": "warmup_step", "warmup_epochs": 10, "milestones": [20, 50], "gamma": 0.1}, 81)
    # docs/methods.md#agw-notes: lr(e) = 0.1 (e+1)/10 for e < 10; 0.1 until 19; 0.01 until 49; 0.001 after
    assert [round(0.1 * s.factor(e), 10) for e in (0, 4, 9, 10, 19, 20, 49, 50, 80)] == [
        0.01, 0.05, 0.1, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001]


def test_pmt_warmup_cosine_schedule():
    s = build_schedule({"name": "warmup_cosine", "warmup_epochs": 3, "warmup_factor": 0.01, "min_factor": 0.01}, 24)
    assert s.factor(0) == pytest.approx(0.01)
    assert s.factor(1) == pytest.approx(0.01 + 0.99 / 3)
    assert s.factor(3) == pytest.approx(0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * 3 / 24)))
    assert s.factor(12) == pytest.approx(0.01 + 0.99 * 0.5)
    assert s.factor(24) == pytest.approx(0.01)


def test_groups_by_prefix_and_lr_multipliers():
    net = _Net()
    groups = groups_by_prefix(net, {"default": 0.1, "neck": 1.0, "trunk.1": 0.5})
    by_mult = {g["lr_mult"]: sorted(g["names"]) for g in groups}
    assert by_mult == {
        0.1: ["frozen.bias", "trunk.0.bias", "trunk.0.weight"],  # frozen.weight is not trainable
        0.5: ["trunk.1.bias", "trunk.1.weight"],
        1.0: ["neck.bias", "neck.weight"],
    }
    opt = build_optimizer({"name": "sgd", "lr": 0.2, "weight_decay": 5e-4}, groups)
    assert sorted(round(g["lr"], 6) for g in opt.param_groups) == [0.02, 0.1, 0.2]
    assert opt.defaults["nesterov"] and opt.defaults["momentum"] == 0.9
    s = build_schedule({"name": "warmup_step", "warmup_epochs": 2}, 5)
    s.apply(opt, 0.2, 0)
    assert sorted(round(g["lr"], 6) for g in opt.param_groups) == [0.01, 0.05, 0.1]
    with pytest.raises(VibenchError, match="matches no parameter"):
        groups_by_prefix(net, {"nek": 1.0})


def test_adamw_and_errors():
    net = _Net()
    opt = build_optimizer({"name": "adamw", "lr": 3e-4, "weight_decay": 1e-4, "betas": [0.9, 0.99]}, groups_by_prefix(net, {}))
    assert isinstance(opt, torch.optim.AdamW) and opt.defaults["betas"] == (0.9, 0.99)
    with pytest.raises(VibenchError, match="did you mean .*'adamw'"):
        build_optimizer({"name": "adamm", "lr": 1}, groups_by_prefix(net, {}))
    with pytest.raises(VibenchError, match="unknown key"):
        build_schedule({"name": "constant", "warmup": 3}, 5)
