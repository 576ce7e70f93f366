"""`vibench eval` and `vibench score` end to end on the synthetic dataset trees."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from vibench.cli import main


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """Tiny synthetic SYSU and RegDB trees plus identity-clustered features for every test image."""
    from vibench.data import load_dataset
    from vibench.data.synth import ensure_synthetic

    old = os.environ.get("VIBENCH_CACHE")
    os.environ["VIBENCH_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    try:
        out = {}
        for ds in ("sysu", "regdb"):
            root = ensure_synthetic(ds, "tiny")
            index = load_dataset(ds, root)
            recs = sorted({r.path: r for s in index.splits for r in index.test(s)}.values())
            rng = np.random.default_rng(0)
            pids = np.array([r.pid for r in recs])
            feats = rng.normal(size=(pids.max() + 1, 16))[pids] + rng.normal(size=(len(recs), 16))
            fpath = tmp_path_factory.mktemp(ds) / "feats.npz"
            np.savez(fpath, paths=np.array([r.path for r in recs]), features=feats.astype(np.float32),
                     features_pool=feats.astype(np.float32) * 2)
            out[ds] = (root, fpath, recs, feats)
        yield out
    finally:
        if old is None:
            os.environ.pop("VIBENCH_CACHE", None)
        else:
            os.environ["VIBENCH_CACHE"] = old


def _run(capsys, *args):
    rc = main([str(a) for a in args])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_eval_writes_store_and_score_reproduces_it(synth, tmp_path, capsys):
    root, feats, _, _ = synth["sysu"]
    out = tmp_path / "res"
    rc, text, err = _run(capsys, "eval", "--features", feats, "--dataset", "sysu", "--root", root,
                         "--protocols", "sysu-all-single,mixed", "--trials", "0,1", "--out", out, "--json")
    assert rc == 0, err
    doc = json.loads(text)["protocols"]
    assert "sysu-all-single" in doc and "sysu-mix-i" in doc and "regdb-mix-i" not in doc  # group filtered
    m = json.loads((out / "metrics" / "sysu-all-single.json").read_text())
    assert set(m["trials"]) == {"0", "1"} and m["rule"] == "sysu" and len(m["trials"]["0"]["cmc"]) == 20
    assert (out / "rankings" / "sysu-mix-i" / "trial-1.npz").is_file()
    rc, text, err = _run(capsys, "score", out)
    assert rc == 0, err
    assert "0 mismatches" in text and "MISMATCH" not in text
    # tamper with one stored number: score must notice and exit non-zero
    m["trials"]["1"]["mAP"] += 1e-9
    (out / "metrics" / "sysu-all-single.json").write_text(json.dumps(m))
    rc, text, _ = _run(capsys, "score", out)
    assert rc == 1 and "MISMATCH mAP" in text


def test_eval_regdb_split_table(synth, capsys):
    root, feats, _, _ = synth["regdb"]
    rc, text, err = _run(capsys, "eval", "--features", feats, "--dataset", "regdb", "--root", root,
                         "--protocols", "regdb-v2t", "--trials", "1")
    assert rc == 0, err
    assert text.splitlines()[0].split()[:3] == ["protocol", "trials", "R1"]
    assert text.splitlines()[1].split()[:2] == ["regdb-v2t", "1"]


def test_missing_features_fail_without_writing(synth, tmp_path, capsys):
    root, _, recs, feats = synth["sysu"]
    partial = tmp_path / "partial.npz"
    np.savez(partial, paths=np.array([r.path for r in recs[:-3]]), features=feats[:-3])
    out = tmp_path / "res"
    rc, _, err = _run(capsys, "eval", "--features", partial, "--dataset", "sysu", "--root", root,
                      "--protocols", "sysu-all-single,sysu-all-multi", "--out", out)
    assert rc == 2 and "no features for" in err
    assert not out.exists()


@pytest.mark.parametrize("content,match", [
    (dict(paths=np.array(["a.jpg", "b.jpg"]), features=np.array([[0.0, np.nan], [1.0, 1.0]])), "NaN or inf"),
    (dict(paths=np.array(["a.jpg", "b.jpg"]), features=np.ones((3, 2))), "expected \\(2, D\\)"),
    (dict(paths=np.array(["a.jpg", "a.jpg"]), features=np.ones((2, 2))), "listed twice"),
    (dict(features=np.ones((2, 2))), "missing array 'paths'"),
])
def test_bad_features_file(synth, tmp_path, capsys, content, match):
    root = synth["sysu"][0]
    f = tmp_path / "f.npz"
    np.savez(f, **content)
    out = tmp_path / "res"
    rc, _, err = _run(capsys, "eval", "--features", f, "--dataset", "sysu", "--root", root,
                      "--protocols", "sysu-all-single", "--out", out)
    assert rc == 2 and match.replace("\\", "") in err.replace("\\", "")
    assert not out.exists()


def test_unknown_protocol_and_wrong_dataset(synth, capsys):
    root, feats, _, _ = synth["sysu"]
    rc, _, err = _run(capsys, "eval", "--features", feats, "--dataset", "sysu", "--root", root,
                      "--protocols", "sysu-all-singel")
    assert rc == 2 and "did you mean 'sysu-all-single'" in err
    rc, _, err = _run(capsys, "eval", "--features", feats, "--dataset", "sysu", "--root", root,
                      "--protocols", "regdb-v2t")
    assert rc == 2 and "another dataset" in err


def test_score_errors(tmp_path, capsys):
    rc, _, err = _run(capsys, "score", tmp_path / "nowhere")
    assert rc == 2 and "no such results directory" in err
    rc, _, err = _run(capsys, "score", tmp_path)
    assert rc == 2 and "no rankings" in err
    bad = Path(tmp_path) / "cell" / "rankings" / "p" / "trial-0.npz"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"junk")
    # a damaged rankings file is named (no traceback) and the exit code says something failed
    rc, out, _ = _run(capsys, "score", tmp_path)
    assert rc == 1 and f"DAMAGED {bad}: not a readable rankings" in out
