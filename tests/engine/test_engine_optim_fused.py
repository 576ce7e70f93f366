"""The optimisers `build_optimizer` makes run torch's fused kernels, which compute the for-loop
kernels' update to rounding: after several steps with parameter groups, momentum, Nesterov and
weight decay, every parameter equals the for-loop result within float32 rounding (fused SGD
differs only in the elements of each tensor's tail beyond the last full vector, by one ulp;
fused Adam/AdamW reorder the arithmetic)."""
from __future__ import annotations

import pytest
import torch

from vibench.engine.optim import build_optimizer


def _groups(seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    params = [torch.randn(300, 17, generator=g).requires_grad_(), torch.randn(1000, generator=g).requires_grad_(),
              torch.randn(7, 3, 3, 3, generator=g).requires_grad_()]
    return [{"params": params[:2], "lr_mult": 0.5}, {"params": params[2:], "lr_mult": 1.0}]


def _train(opt: torch.optim.Optimizer, groups: list[dict], steps: int = 6) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(99)
    params = [p for grp in groups for p in grp["params"]]
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=g)
        opt.step()
    return [p.detach().clone() for p in params]


def _torch_default(cfg: dict, groups: list[dict]) -> torch.optim.Optimizer:
    """The same optimiser as `build_optimizer`, on torch's for-loop kernel (foreach=False)."""
    lr, wd = cfg["lr"], cfg["weight_decay"]
    pgs = [{"params": grp["params"], "lr": lr * grp["lr_mult"], "weight_decay": wd} for grp in groups]
    if cfg["name"] == "sgd":
        return torch.optim.SGD(pgs, lr=lr, momentum=cfg["momentum"], nesterov=True, weight_decay=wd, foreach=False)
    cls = torch.optim.AdamW if cfg["name"] == "adamw" else torch.optim.Adam
    return cls(pgs, lr=lr, weight_decay=wd, foreach=False)


SGD = {"name": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4}


def test_build_optimizer_uses_the_fused_kernels_on_cpu() -> None:
    for cfg in (SGD, {"name": "adam", "lr": 1e-3, "weight_decay": 5e-4}, {"name": "adamw", "lr": 1e-3, "weight_decay": 0.05}):
        opt = build_optimizer(cfg, _groups(0))
        assert all(group["fused"] for group in opt.param_groups), cfg["name"]


@pytest.mark.parametrize("cfg", [SGD, {"name": "adam", "lr": 1e-2, "weight_decay": 5e-4},
                                 {"name": "adamw", "lr": 1e-2, "weight_decay": 5e-4}], ids=["sgd", "adam", "adamw"])
def test_fused_kernels_match_the_for_loop_kernels_to_rounding(cfg: dict) -> None:
    fused_groups, loop_groups = _groups(2), _groups(2)
    fused = _train(build_optimizer(cfg, fused_groups), fused_groups)
    loop = _train(_torch_default(cfg, loop_groups), loop_groups)
    start = _groups(2)
    for a, b, p0 in zip(fused, loop, (p for grp in start for p in grp["params"])):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        assert (a - p0.detach()).abs().max() > 1e-3  # the steps did move the parameters


def test_fused_sgd_equals_the_for_loop_kernel_on_whole_vectors() -> None:
    """A tensor whose size is a multiple of every CPU vector width (here 4096 elements) comes out
    bit-identical: the fused kernel's rounding differs only in a ragged tail."""
    g = torch.Generator().manual_seed(3)
    fused_groups = [{"params": [torch.randn(64, 64, generator=g).requires_grad_()], "lr_mult": 1.0}]
    loop_groups = [{"params": [fused_groups[0]["params"][0].detach().clone().requires_grad_()], "lr_mult": 1.0}]
    (a,) = _train(build_optimizer(SGD, fused_groups), fused_groups)
    (b,) = _train(_torch_default(SGD, loop_groups), loop_groups)
    assert torch.equal(a, b)
