"""One training iteration of every method's paper config at the paper's input size and model
width (a small batch: 2 identities x 1 visible + 1 infrared image), through every training
stage, then one test-time embedding: the shapes the rehearsal suite trains at, in seconds.
Random initialisation (no weights file); the classifier heads have SYSU's 395 classes."""
from __future__ import annotations

import pytest
import torch

from vibench.engine.api import StepState
from vibench.engine.checkpoint import seed_everything
from vibench.engine.config import load_config
from vibench.engine.sections import input_settings
from vibench.registry import get_method_class

#: measured on the shared 2-core machine under heavy load (upper bounds): mixer 20 s, tmpa 28 s,
#: agw 34 s, pmcm 36 s, aminet 43 s, pmt 54 s, bit 97 s (both stages) -> the slowest marked slow
_SLOW = pytest.mark.slow
METHODS = ("agw", pytest.param("pmt", marks=_SLOW), pytest.param("bit", marks=_SLOW),
           pytest.param("aminet", marks=_SLOW), "tmpa", "mixer", "pmcm")
NUM_CLASSES = 395


def _batch(size: tuple[int, int], labels: list[int]) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    n = len(labels)
    lab = torch.tensor(labels)
    return {"vis": torch.randn(n, 3, *size, generator=g), "ir": torch.randn(n, 3, *size, generator=g),
            "vis_label": lab, "ir_label": lab.clone(), "vis_index": torch.arange(n), "ir_index": torch.arange(n, 2 * n)}


@pytest.mark.parametrize("method", METHODS)
def test_paper_config_trains_one_step_at_paper_shape(method: str) -> None:
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    cfg = load_config(method, "paper", dataset="sysu", overrides=["model.init=random"])
    impl = get_method_class(method)(cfg, "sysu")
    seed_everything(0)
    model = impl.build_model(NUM_CLASSES)
    size = tuple(input_settings(cfg).size)
    base = {n: p.requires_grad for n, p in model.named_parameters()}
    stages = impl.stages()
    for si, stage in enumerate(stages):
        for n, p in model.named_parameters():
            p.requires_grad_(base[n] and not any(n == f or n.startswith(f + ".") for f in stage.freeze))
        impl.on_stage_start(model, stage)
        impl.set_train_mode(model, stage)
        state = StepState(stage.name, 0, stage.epochs, 0, 1, torch.device("cpu"),
                          {"stage_index": si, "options": stage.options})
        terms = impl.training_step(model, _batch(size, [3, 17]), state)
        assert terms, f"{method} stage {stage.name}: no loss terms"
        loss = sum(v.float() for v in terms.values())
        assert torch.isfinite(loss), f"{method} stage {stage.name}: {({k: float(v) for k, v in terms.items()})}"
        model.zero_grad(set_to_none=True)
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads), f"{method} stage {stage.name}"
    model.eval()
    with torch.inference_mode():
        emb = impl.embed(model, torch.randn(1, 3, *size), "infrared")
    assert emb["feat"].shape[0] == 1 and torch.isfinite(emb["feat"]).all()
