"""The malformed-input catalogue (docs/errors.md): every bad input gives one clear message that
names the file, key or value, exits 2 (bad input) or 1 (a check found problems), prints no
traceback, and leaves nothing half-written (no new output folder, no temporary file, the files
it was given unchanged)."""
from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from vibench.cli import main

HERE = Path(__file__).parent
OLD_STORE = HERE / "store" / "data" / "store-v1"
CELL = "agw__regdb__standard__split1__seed0"
RUN = ["run", "--methods", "agw", "--protocols", "regdb-v2t", "--regdb-splits", "1", "--device", "cpu"]


@dataclass
class Env:
    tmp: Path
    regdb: Path  # a copy of the tiny synthetic RegDB tree (cases may damage it)
    feats: Path  # a valid features file for that tree
    store: Path  # a copy of the committed schema-1 store
    out: Path  # an output folder no case may create

    def write(self, name: str, text: str) -> Path:
        path = self.tmp / name
        path.write_text(text)
        return path

    def npz(self, name: str, **arrays: np.ndarray) -> Path:
        path = self.tmp / name
        np.savez(path, **arrays)
        return path


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    import os

    from vibench.data import load_dataset
    from vibench.data.synth import ensure_synthetic

    old = os.environ.get("VIBENCH_CACHE")
    os.environ["VIBENCH_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    try:
        root = ensure_synthetic("regdb", "tiny")
    finally:
        if old is None:
            os.environ.pop("VIBENCH_CACHE", None)
        else:
            os.environ["VIBENCH_CACHE"] = old
    index = load_dataset("regdb", root)
    recs = sorted({r.path: r for s in index.splits for r in index.test(s)}.values())
    feats = tmp_path_factory.mktemp("feats") / "feats.npz"
    rng = np.random.default_rng(0)
    np.savez(feats, paths=np.array([r.path for r in recs]),
             features=rng.normal(size=(len(recs), 8)).astype(np.float32))
    return root, feats


@pytest.fixture
def env(source: tuple[Path, Path], tmp_path: Path) -> Env:
    regdb = tmp_path / "regdb"
    shutil.copytree(source[0], regdb)
    store = tmp_path / "store"
    shutil.copytree(OLD_STORE, store)
    feats = tmp_path / "feats.npz"
    shutil.copy(source[1], feats)
    return Env(tmp_path, regdb, feats, store, tmp_path / "never-written")


def _feats(env: Env) -> dict[str, np.ndarray]:
    with np.load(env.feats) as z:
        return {k: z[k] for k in z.files}


def _first_image(env: Env) -> Path:
    line = (env.regdb / "idx" / "train_visible_1.txt").read_text().splitlines()[0]
    return env.regdb / line.split()[0]


def _eval(env: Env, features: Path, *extra: str) -> list[str]:
    return ["eval", "--features", str(features), "--dataset", "regdb", "--root", str(env.regdb),
            "--protocols", "regdb-v2t", "--trials", "1", "--out", str(env.out), *extra]


def _cell(env: Env) -> Path:
    return env.store / "cells" / CELL


def _spec_newer(env: Env) -> None:
    path = _cell(env) / "spec.json"
    spec = json.loads(path.read_text())
    path.write_text(json.dumps({**spec, "schema_version": 99}))


# (area, id, arrange(env) -> argv, expected message substring, exit code)
Case = tuple[str, str, Callable[[Env], list[str]], str, int]
CASES: list[Case] = [
    # vibench data check
    ("data check", "unknown dataset name",
     lambda e: ["data", "check", "--dataset", "regdbx", "--root", str(e.regdb)], "unknown dataset 'regdbx' (did you mean 'regdb'?)", 2),
    ("data check", "root does not exist",
     lambda e: ["data", "check", "--dataset", "regdb", "--root", str(e.tmp / "nowhere")], "dataset root does not exist", 1),
    ("data check", "malformed index line",
     lambda e: (e.regdb.joinpath("idx", "train_visible_1.txt").open("a").write("garbage line\n"),
                ["data", "check", "--dataset", "regdb", "--root", str(e.regdb)])[1],
     "train_visible_1.txt:121: malformed line 'garbage line'", 1),
    ("data check", "missing index file",
     lambda e: (e.regdb.joinpath("idx", "test_thermal_3.txt").unlink(),
                ["data", "check", "--dataset", "regdb", "--root", str(e.regdb)])[1],
     "test_thermal_3.txt: missing index file", 1),
    ("data check", "listed image missing",
     lambda e: (_first_image(e).unlink(), ["data", "check", "--dataset", "regdb", "--root", str(e.regdb)])[1],
     "Visible/1/0001_v_01.bmp does not exist under", 1),
    ("data check", "corrupt image (--deep)",
     lambda e: (_first_image(e).write_bytes(b"junk"),
                ["data", "check", "--dataset", "regdb", "--root", str(e.regdb), "--deep"])[1],
     "0001_v_01.bmp: unreadable or corrupt image", 1),
    # vibench eval --features
    ("eval --features", "features file missing", lambda e: _eval(e, e.tmp / "none.npz"), "none.npz: no such features file", 2),
    ("eval --features", "not an .npz", lambda e: _eval(e, e.write("junk.npz", "junk")), "junk.npz: not a readable features .npz", 2),
    ("eval --features", "no 'paths' array",
     lambda e: _eval(e, e.npz("nopaths.npz", features=_feats(e)["features"])), "nopaths.npz: missing array 'paths'", 2),
    ("eval --features", "fewer rows than paths",
     lambda e: _eval(e, e.npz("short.npz", paths=_feats(e)["paths"], features=_feats(e)["features"][:-3])),
     "'features' has shape (477, 8), expected (480, D)", 2),
    ("eval --features", "NaN in features",
     lambda e: _eval(e, e.npz("nan.npz", paths=_feats(e)["paths"],
                              features=np.where(np.arange(480)[:, None] == 0, np.nan, _feats(e)["features"]))),
     "nan.npz: 'features' contains NaN or inf (row 0", 2),
    ("eval --features", "protocol of another dataset",
     lambda e: _eval(e, e.feats)[:8] + ["sysu-all-single", "--out", str(e.out)],
     "protocol sysu-all-single is defined on another dataset than 'regdb'", 2),
    ("eval --features", "--trials not integers", lambda e: _eval(e, e.feats)[:10] + ["x", "--out", str(e.out)],
     "--trials must be comma-separated integers, got 'x'", 2),
    ("eval --features", "--trials outside the protocol", lambda e: _eval(e, e.feats)[:10] + ["99", "--out", str(e.out)],
     "none of [99] selected", 2),
    # configs
    ("config", "unknown config name", lambda e: [*RUN, "--out", str(e.out), "--config", "tiyn"],
     "unknown config 'tiyn' (did you mean 'tiny'?)", 2),
    ("config", "config file missing", lambda e: [*RUN, "--out", str(e.out), "--config", str(e.tmp / "none.yaml")],
     "none.yaml does not exist", 2),
    ("config", "invalid YAML", lambda e: [*RUN, "--out", str(e.out), "--config", str(e.write("c1.yaml", "a: [1,\n"))],
     "c1.yaml is not valid YAML", 2),
    ("config", "top level not a mapping",
     lambda e: [*RUN, "--out", str(e.out), "--config", str(e.write("c2.yaml", "- 1\n- 2\n"))],
     "c2.yaml must hold a mapping at top level, got list", 2),
    ("config", "config of another method",
     lambda e: [*RUN, "--out", str(e.out), "--config", str(e.write("c3.yaml", "method: bit\n"))],
     "c3.yaml is for method 'bit', not 'agw'", 2),
    ("config", "unknown top-level key",
     lambda e: [*RUN, "--out", str(e.out), "--config", str(e.write("c4.yaml", "method: agw\nbogus_key: 1\n"))],
     "bogus_key: unknown key (known in the top level:", 2),
    # --set
    ("--set", "no '='", lambda e: [*RUN, "--out", str(e.out), "--set", "optim.lr"],
     "config override 'optim.lr' must look like key.sub=value", 2),
    ("--set", "empty key", lambda e: [*RUN, "--out", str(e.out), "--set", "=3"], "config override '=3' has an empty key", 2),
    ("--set", "value not YAML", lambda e: [*RUN, "--out", str(e.out), "--set", "optim.lr=[1,"],
     "config override 'optim.lr=[1,': value is not valid YAML", 2),
    # names and run options
    ("names", "unknown method", lambda e: ["run", "--methods", "agx", "--protocols", "regdb-v2t", "--out", str(e.out)],
     "unknown method 'agx' (did you mean 'agw'?)", 2),
    ("names", "unknown protocol", lambda e: ["run", "--methods", "agw", "--protocols", "regdb-v2x", "--out", str(e.out)],
     "unknown protocol or group 'regdb-v2x' (did you mean", 2),
    ("names", "unknown dataset in eval", lambda e: _eval(e, e.feats)[:4] + ["regbd"] + _eval(e, e.feats)[5:],
     "unknown dataset 'regbd' (did you mean 'regdb'?)", 2),
    ("names", "unknown command", lambda e: ["rnu"], "no such command 'rnu' (did you mean 'run'", 2),
    ("names", "unknown plugin module", lambda e: [*RUN, "--out", str(e.out), "--plugins", "nosuchmod"],
     "cannot import plugin module 'nosuchmod'", 2),
    ("run options", "--seeds not integers", lambda e: [*RUN, "--out", str(e.out), "--seeds", "a"],
     "--seeds 'a': expected comma-separated integers", 2),
    ("run options", "--jobs 0", lambda e: [*RUN, "--out", str(e.out), "--jobs", "0"], "--jobs 0", 2),
    ("run options", "--data-root not a folder", lambda e: [*RUN, "--out", str(e.out), "--data-root", str(e.tmp / "nowhere")],
     "nowhere: not a directory", 2),
    # backbone weights (docs/training.md, "Backbone initialisation")
    ("weights", "--weights without '='", lambda e: [*RUN, "--out", str(e.out), "--weights", "resnet50"],
     "--weights 'resnet50': expected BACKBONE=PATH", 2),
    ("weights", "--weights file missing", lambda e: [*RUN, "--out", str(e.out), "--weights", f"resnet50={e.tmp / 'none.pth'}"],
     "none.pth is not a file", 2),
    ("weights", "--weights-dir not a folder", lambda e: [*RUN, "--out", str(e.out), "--weights-dir", str(e.tmp / "nowhere")],
     "--weights-dir", 2),
    ("weights", "--weights for a backbone no method uses",
     lambda e: [*RUN, "--out", str(e.out), "--config", "paper", "--weights", f"resnet5={e.feats}"],
     "no selected method uses backbone 'resnet5' (did you mean 'resnet50'?)", 2),
    ("weights", "ImageNet file with the wrong sha256",
     lambda e: [*RUN, "--out", str(e.out), "--config", "paper", "--weights", f"resnet50={e.feats}"],
     "expected 0676ba61b6795bbe1773cffd859882e5e297624d384b6993f7c9e683e722fb8a", 2),
    ("weights", "model.weights file missing",
     lambda e: [*RUN, "--out", str(e.out), "--config", "paper", "--set", f"model.weights={e.tmp / 'r50.pth'}"],
     "r50.pth does not exist", 2),
    ("weights", "model.init: file without model.weights", lambda e: [*RUN, "--out", str(e.out), "--set", "model.init=file"],
     "model.weights: is required with model.init: file", 2),
    # the result store
    ("store", "not a store", lambda e: ["store", "verify", str(e.regdb)], "not a result store (expected a 'cells/' folder", 2),
    ("store", "report on a folder that is not a store",
     lambda e: ["report", "--results", str(e.regdb), "--out", str(e.out), "--no-plots"], "not a result store", 2),
    ("store", "truncated metrics JSON",
     lambda e: ((_cell(e) / "metrics" / "regdb-v2t.json").write_text('{"trials": {"1": {"cm'),
                ["store", "verify", str(e.store)])[1], "regdb-v2t.json: not valid JSON", 1),
    ("store", "empty metrics JSON",
     lambda e: ((_cell(e) / "metrics" / "regdb-v2t.json").write_text(""), ["store", "verify", str(e.store)])[1],
     "regdb-v2t.json: not valid JSON", 1),
    ("store", "metrics value out of range",
     lambda e: ((_cell(e) / "metrics" / "regdb-v2t.json").write_text(
         json.dumps({"protocol": "regdb-v2t", "trials": {"1": {"cmc": [70.0], "mAP": 0.5}}})),
                ["store", "verify", str(e.store)])[1], "trial 1 has 70.0; metric values are fractions in [0, 1]", 1),
    ("store", "spec from a newer vibench", lambda e: (_spec_newer(e), ["store", "verify", str(e.store)])[1],
     "schema_version 99 was written by a newer vibench", 1),
    ("store", "garbage rankings (score)",
     lambda e: ((_cell(e) / "rankings" / "regdb-v2t" / "trial-1.npz").write_bytes(b"garbage"), ["score", str(e.store)])[1],
     "trial-1.npz: not a readable rankings .npz", 1),
    ("store", "stray file under cells/", lambda e: ((e.store / "cells" / "notes.txt").write_text("x"),
                                                   ["store", "verify", str(e.store)])[1],
     "notes.txt: not a cell directory (a stray file under cells/)", 1),
    ("store", "garbage DONE", lambda e: ((_cell(e) / "DONE").write_text("{"), ["store", "verify", str(e.store)])[1],
     "DONE: not valid JSON", 1),
]


def _snapshot(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_catalogue_has_at_least_25_cases() -> None:
    assert len(CASES) >= 25 and len({c[1] for c in CASES}) == len(CASES)
    assert {c[0] for c in CASES} >= {"data check", "eval --features", "config", "--set", "names", "store"}


@pytest.mark.parametrize("area,name,arrange,message,code", CASES, ids=[f"{c[0]}: {c[1]}" for c in CASES])
def test_malformed_input(env: Env, capsys: pytest.CaptureFixture, area: str, name: str,
                         arrange: Callable[[Env], list[str]], message: str, code: int) -> None:
    argv = arrange(env)
    before = _snapshot(env.tmp)
    rc = main(argv)
    cap = capsys.readouterr()
    text = cap.out + cap.err
    assert rc == code, text
    assert message in text, text
    assert "Traceback" not in text
    assert not env.out.exists(), "an output folder was created"
    assert _snapshot(env.tmp) == before, "a file was written or changed"


def test_docs_table_lists_every_case() -> None:
    text = (HERE.parent / "docs" / "errors.md").read_text()
    for area, name, _, message, code in CASES:
        assert f"| {area} | {name} | `{message.replace('|', chr(92) + '|')}` | {code} |" in text, name
