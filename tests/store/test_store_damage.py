"""Damaged stores: every kind of damage is named (file and problem, no traceback) by `vibench
store verify`, `vibench report` and `vibench score`, which go on with the intact cells; `vibench
run` recomputes exactly the damaged parts and ends with the numbers it had before."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

import pytest

from vibench.cli import main

RUN = ["run", "--methods", "mock", "--protocols", "regdb-v2t", "--regdb-splits", "1,2", "--device", "cpu"]
PROTOCOL = "regdb-v2t"


@pytest.fixture(scope="module")
def intact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import sys

    here = Path(__file__).parents[1] / "runner"
    sys.path.insert(0, str(here))
    import runner_mock_plugin  # noqa: F401

    out = tmp_path_factory.mktemp("intact") / "store"
    assert main([*RUN, "--out", str(out)]) == 0
    return out


def _cells(out: Path) -> list[Path]:
    return sorted(p for p in (out / "cells").iterdir() if p.is_dir())


def _metrics(out: Path) -> dict[str, dict]:
    return {p.parent.parent.name: json.loads(p.read_text())["trials"]
            for p in sorted((out / "cells").glob(f"*/metrics/{PROTOCOL}.json"))}


def _run(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _edit_map(path: Path) -> None:
    """Change the first digit of the stored mAP in place (same size, still valid JSON)."""
    text = path.read_text()
    i = text.index('"mAP": 0.') + len('"mAP": 0.')
    path.write_text(text[:i] + str((int(text[i]) + 1) % 10) + text[i + 1:])
    json.loads(path.read_text())


# (name, damage(cell) -> damaged path, expected message, step `vibench run` reports, files kept)
CASES: list[tuple[str, Callable[[Path], Path], str, str, tuple[str, ...]]] = [
    ("truncated spec", lambda c: (_truncate(c / "spec.json"), c / "spec.json")[1],
     "bytes, the manifest recorded", "re-evaluate every protocol", ("train/model.pt", "features.npz")),
    ("truncated metrics", lambda c: (_truncate(c / "metrics" / f"{PROTOCOL}.json"), c / "metrics" / f"{PROTOCOL}.json")[1],
     "truncated or replaced", f"re-evaluate {PROTOCOL}", ("train/model.pt", "features.npz")),
    ("empty metrics", lambda c: ((c / "metrics" / f"{PROTOCOL}.json").write_text(""), c / "metrics" / f"{PROTOCOL}.json")[1],
     "truncated or replaced", f"re-evaluate {PROTOCOL}", ("train/model.pt", "features.npz")),
    ("hand-edited mAP", lambda c: (_edit_map(c / "metrics" / f"{PROTOCOL}.json"), c / "metrics" / f"{PROTOCOL}.json")[1],
     "sha256 differs", f"re-evaluate {PROTOCOL}", ("train/model.pt", "features.npz")),
    ("deleted features", lambda c: ((c / "features.npz").unlink(), c / "features.npz")[1],
     "missing (listed in DONE's manifest)", "re-extract", ("train/model.pt",)),
    ("deleted rankings", lambda c: ((c / "rankings" / PROTOCOL / "trial-1.npz").unlink(),
                                    c / "rankings" / PROTOCOL / "trial-1.npz")[1],
     "missing (listed in DONE's manifest)", f"re-evaluate {PROTOCOL}", ("train/model.pt", "features.npz")),
    ("garbage rankings", lambda c: ((c / "rankings" / PROTOCOL / "trial-1.npz").write_bytes(b"garbage" * 10),
                                    c / "rankings" / PROTOCOL / "trial-1.npz")[1],
     "truncated or replaced", f"re-evaluate {PROTOCOL}", ("train/model.pt", "features.npz")),
    ("truncated checkpoint", lambda c: (_truncate(c / "train" / "model.pt"), c / "train" / "model.pt")[1],
     "truncated or replaced", "retrain", ()),
    ("garbage DONE", lambda c: ((c / "DONE").write_text("{\"protoc"), c / "DONE")[1],
     "not valid JSON", "rewrite DONE", ("train/model.pt", "features.npz", f"metrics/{PROTOCOL}.json")),
]


@pytest.mark.parametrize("name,damage,message,step,kept", CASES, ids=[c[0] for c in CASES])
def test_damage_is_named_and_repaired(intact: Path, tmp_path: Path, capsys: pytest.CaptureFixture, name: str,
                                      damage: Callable[[Path], Path], message: str, step: str,
                                      kept: tuple[str, ...]) -> None:
    out = tmp_path / "store"
    shutil.copytree(intact, out)
    cell, other = _cells(out)
    stamps = {rel: (cell / rel).stat().st_mtime_ns for rel in kept}
    path = damage(cell)

    code, text, err = _run(capsys, "store", "verify", out)
    assert code == 1 and f"{path}: " in text and message in text, text
    assert f"{other.name}: damaged" not in text and "1 damaged, 1 ok" in text

    # report and score name the damaged cell and go on with the other one
    from vibench.report.aggregate import load_store

    summary = load_store(out)
    assert [c.path.name for c in summary.cells] == [other.name]
    assert any(str(path) in n and message in n for n in summary.store_notes), summary.store_notes
    code, text, err = _run(capsys, "score", out)
    assert code == 1 and "Traceback" not in err
    assert f"DAMAGED {path}: " in text or f"DAMAGED {cell / 'DONE'}" in text, text
    assert [line.split()[-1] for line in text.splitlines() if line.startswith(f"cells/{other.name}")] == ["ok"]

    # run says what it found, recomputes only that, and ends with the same numbers
    code, text, err = _run(capsys, *RUN, "--out", out)
    assert code == 0, err
    assert f"damaged: {path}: " in err and step in err, err
    assert "1 repaired, 1 skipped" in text
    for rel, stamp in stamps.items():
        assert (cell / rel).stat().st_mtime_ns == stamp, f"{rel} was recomputed"
    assert _metrics(out) == _metrics(intact)
    code, text, _ = _run(capsys, "store", "verify", out)
    assert code == 0 and "2 ok" in text


def test_stray_entries_are_named_and_do_not_stop_readers(intact: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "store"
    shutil.copytree(intact, out)
    (out / "cells" / "notes.txt").write_text("mine")
    (out / "cells" / "backup").mkdir()
    code, text, _ = _run(capsys, "store", "verify", out)
    assert code == 1 and "stray file under cells/" in text and "no spec.json, no DONE" in text
    from vibench.report.aggregate import load_store

    summary = load_store(out)
    assert len(summary.cells) == 2 and len(summary.store_notes) == 2
    code, text, err = _run(capsys, *RUN, "--out", out)
    assert code == 0 and "2 skipped" in text


def test_store_without_manifests_is_read_unverified(intact: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    """A DONE without a manifest (stores written before manifests) is read with a note."""
    out = tmp_path / "store"
    shutil.copytree(intact, out)
    for cell in _cells(out):
        (cell / "DONE").write_text(json.dumps({"protocols": [PROTOCOL]}))
    code, text, _ = _run(capsys, "store", "verify", out)
    assert code == 0 and "2 unverified" in text and "written before manifests" in text
    code, text, err = _run(capsys, *RUN, "--out", out)
    assert code == 0 and "2 skipped" in text and "written before manifests" in err
    # structural damage is still found without a manifest
    _truncate(_cells(out)[0] / "features.npz")
    code, text, _ = _run(capsys, "store", "verify", out)
    assert code == 1 and "features.npz: not a readable archive" in text


def test_manifest_lists_every_file_by_hand(intact: Path) -> None:
    from vibench.io import sha256_file

    cell = _cells(intact)[0]
    manifest = json.loads((cell / "DONE").read_text())["manifest"]
    files = sorted(p.relative_to(cell).as_posix() for p in cell.rglob("*") if p.is_file() and p.name != "DONE")
    assert sorted(manifest["files"]) == files
    for rel, entry in manifest["files"].items():
        assert entry == {"size": (cell / rel).stat().st_size, "sha256": sha256_file(cell / rel)}
