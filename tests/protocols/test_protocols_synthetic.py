"""Every protocol built on the real loaders' reading of the tiny synthetic trees (end to end)."""
from __future__ import annotations

import json
import os
import random

import pytest

from vibench.cli import main
from vibench.errors import VibenchError
from vibench.protocols import apply_training_variant, build_lists, list_protocols

synth = pytest.importorskip("vibench.data.synth")
data = pytest.importorskip("vibench.data")


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    cache = tmp_path_factory.mktemp("vibench-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VIBENCH_CACHE", str(cache))
        roots = {d: synth.ensure_synthetic(d, "tiny", 0) for d in ("sysu", "regdb", "llcm")}
    return {d: (root, data.load_dataset(d, root)) for d, root in roots.items()}


@pytest.mark.parametrize("spec", [s for s in list_protocols() if s.kind == "evaluation"], ids=lambda s: s.name)
def test_every_protocol_builds_on_synthetic(spec, synthetic, excludes):
    root, index = synthetic[spec.dataset]
    if spec.sampler.kind == "official" and not (root / "exp" / "rand_perm_cam.mat").is_file():
        with pytest.raises(VibenchError, match="rand_perm_cam.mat"):
            build_lists(spec, index, spec.trials[0])
        return
    hashes = set()
    for trial in spec.trials:
        lists = build_lists(spec, index, trial)
        hashes.add(lists.sha256)
        assert lists.query and lists.gallery
        for r in (*lists.query[:50], *lists.gallery[:50]):
            assert (root / r.path).is_file()
        for i, q in enumerate(lists.query):
            s = int(lists.query_gallery_index[i])
            if s >= 0:
                assert lists.gallery[s].path == q.path
                assert excludes(spec.rule, q, lists.gallery[s], s, s)
    if spec.trial_source == "split" or spec.sampler.kind != "all":
        assert len(hashes) > 1  # trials differ (new split files or new draws)


def test_agw_replay_on_synthetic_sysu_tree(synthetic):
    """The reference loop over the generated folders (os.listdir) gives the same gallery."""
    root, index = synthetic["sysu"]
    spec = next(s for s in list_protocols() if s.name == "sysu-all-single")
    test_ids = sorted({r.pid for r in index.test()})
    for trial in (0, 9):
        random.seed(trial)
        expected = []
        for pid in test_ids:
            for cam in (1, 2, 4, 5):
                folder = os.path.join(root, f"cam{cam}", f"{pid:04d}")
                if os.path.isdir(folder):
                    expected.append(f"cam{cam}/{pid:04d}/{random.choice(sorted(os.listdir(folder)))}")
        assert [g.path for g in build_lists(spec, index, trial).gallery] == expected


def test_imbalance_on_synthetic_training_set(synthetic):
    _, index = synthetic["sysu"]
    train = index.train()
    for spec in (s for s in list_protocols() if s.kind == "training"):
        kept = apply_training_variant(spec, train, 0)
        mod = spec.reduction.modality
        assert 0 < len(train) - len(kept) < sum(r.modality == mod for r in train)


def test_cli_show_on_synthetic_root(synthetic, capsys):
    root, _ = synthetic["llcm"]
    assert main(["protocols", "show", "llcm-v2i", "--root", str(root), "--trial", "9", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["trial"] == 9 and out["dataset"]["root"] == str(root)
    assert all(e["modality"] == "infrared" for e in out["gallery"])
