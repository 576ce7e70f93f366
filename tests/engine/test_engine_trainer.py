"""The training loop: exact resume, multi-stage training with frozen prefixes, logs, reuse."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vibench.engine.checkpoint import load_checkpoint
from vibench.engine.config import load_config
from vibench.engine.toy import make_toy_dataset
from vibench.engine.trainer import load_trained, train
from vibench.errors import VibenchError

OVERRIDES = [
    "model.backbone=resnet_micro", "input.size=[32,16]",
    "sampler.ids_per_batch=2", "sampler.images_per_id=2", "sampler.iterations=2",
    "augment.visible=[{op: pad_crop, pad: 2}, {op: hflip}, {op: random_erasing}]",
    "augment.infrared=[{op: pad_crop, pad: 2}, {op: hflip}]",
    "schedule.warmup_epochs=1", "schedule.milestones=[2]",
    "stages=[{name: s1, epochs: 2}, {name: s2, epochs: 1, freeze: [visible_stem], optimizer: {lr: 0.01}}]",
]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def _private_image_cache(tmp_path, monkeypatch):
    # keep the decoded toy images out of the user's image cache
    monkeypatch.setenv("VIBENCH_IMAGE_CACHE", str(tmp_path / "image-cache"))


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_dataset(tmp_path_factory.mktemp("toy"), train_ids=4, test_ids=2, per_modality=3)


def _cfg(extra=()):
    return load_config("agw", "tiny", dataset="sysu", overrides=OVERRIDES + list(extra))


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("stop_after", [1, 2])  # inside stage s1, and exactly at the s1/s2 boundary
def test_interrupted_and_resumed_run_equals_uninterrupted(toy, tmp_path, stop_after):
    cfg = _cfg()
    full = train("agw", cfg, toy, 0, seed=3, device="cpu", workdir=tmp_path / "full", progress=False)
    part = train("agw", cfg, toy, 0, seed=3, device="cpu", workdir=tmp_path / "part", progress=False, max_epochs=stop_after)
    assert not part.complete and (tmp_path / "part" / "last.pt").exists()
    # a new process would start with other RNG states: scramble them before resuming
    torch.manual_seed(12345)
    np.random.seed(7)
    resumed = train("agw", cfg, toy, 0, seed=3, device="cpu", workdir=tmp_path / "part", progress=False)
    assert resumed.complete and resumed.resumed
    assert _same(full.model.state_dict(), resumed.model.state_dict())
    assert [h["losses"] for h in full.history] == [h["losses"] for h in resumed.history]
    assert not (tmp_path / "part" / "last.pt").exists()


def test_stages_freeze_logs_and_reuse(toy, tmp_path):
    cfg = _cfg()
    wd = tmp_path / "run"
    part = train("agw", cfg, toy, 0, seed=0, device="cpu", workdir=wd, progress=False, max_epochs=2)
    after_s1 = {k: v.clone() for k, v in load_checkpoint(wd / "last.pt")["model"].items()}
    done = train("agw", cfg, toy, 0, seed=0, device="cpu", workdir=wd, progress=False)
    final = done.model.state_dict()
    vis_keys = [k for k in final if k.startswith("visible_stem.") and "num_batches" not in k]
    assert vis_keys and all(torch.equal(after_s1[k], final[k]) for k in vis_keys if "running" not in k)  # frozen in s2
    assert not torch.equal(after_s1["infrared_stem.conv1.weight"], final["infrared_stem.conv1.weight"])
    # the frozen prefix is trainable again after training (requires_grad restored)
    assert all(p.requires_grad for n, p in done.model.named_parameters() if n.startswith("visible_stem"))

    lines = [json.loads(x) for x in (wd / "train_log.jsonl").read_text().splitlines()]
    assert [(x["stage"], x["epoch"]) for x in lines] == [("s1", 0), ("s1", 1), ("s2", 0)]
    # tiny schedule: warm-up 1 epoch then x0.1 from epoch 2 on; lr of s1 = 0.05, s2 = 0.01
    assert [round(x["lr"], 8) for x in lines] == [0.05, 0.05, 0.01]
    assert all({"id", "wrt", "loss"} <= set(x["losses"]) and x["iterations"] == 2 for x in lines)

    again = train("agw", cfg, toy, 0, seed=0, device="cpu", workdir=wd, progress=False)
    assert again.resumed and _same(again.model.state_dict(), final)  # finished: loaded, not retrained
    loaded = load_trained(wd / "model.pt")
    assert _same(loaded.model.state_dict(), final) and loaded.cfg == json.loads(json.dumps(cfg))
    assert loaded.init == {"backbone": "resnet_micro", "kind": "random", "arch": "resnet_micro"}
    assert loaded.label_map == {1: 0, 2: 1, 3: 2, 4: 3}
    with pytest.raises(VibenchError, match="different"):
        train("agw", _cfg(["loss.id_weight=0.5"]), toy, 0, seed=0, device="cpu", workdir=wd, progress=False)


def test_imbalanced_records_and_missing_modality(tmp_path):
    toy = make_toy_dataset(tmp_path / "d", train_ids=4, test_ids=1, per_modality=2, drop_infrared=(2,))
    cfg = _cfg(["stages=[{name: main, epochs: 1}]"])
    out = train("agw", cfg, toy, 0, seed=0, device="cpu", workdir=tmp_path / "w", progress=False)
    assert out.num_classes == 4 and out.skipped_ids == 1
    sub = [r for r in toy.train() if r.pid != 4]  # an imbalance-reduced subset keeps the label space
    out2 = train("agw", cfg, toy, 0, train_records=sub, seed=0, device="cpu", workdir=tmp_path / "w2", progress=False)
    assert out2.num_classes == 4 and out2.model.neck.classifier.out_features == 4
