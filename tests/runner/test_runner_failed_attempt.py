"""A cell whose previous attempt failed before producing anything is not frozen by it: the same
command runs it afterwards (issue 16, item 3), and the failure leaves no DONE and no numbers."""
from __future__ import annotations

from pathlib import Path

import pytest

from vibench.cli import main

ARGS = ["run", "--methods", "mock", "--protocols", "regdb-v2t", "--regdb-splits", "1", "--device", "cpu"]


def test_failed_attempt_does_not_freeze_the_cell(mock_plugin: None, tmp_path: Path, capsys: pytest.CaptureFixture,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from vibench.runner import runtime

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full (simulated)")

    out = tmp_path / "store"
    with monkeypatch.context() as m:
        m.setattr(runtime, "train_or_load", broken)
        assert main([*ARGS, "--out", str(out)]) == 1
    text = capsys.readouterr()
    assert "1 failed" in text.out and "disk full (simulated)" in text.err
    (cell,) = (out / "cells").iterdir()
    assert sorted(p.name for p in cell.iterdir()) == ["error.txt", "spec.json"]
    assert main(["store", "verify", str(out)]) == 0 and "1 incomplete" in capsys.readouterr().out
    # the same command, once the cause is gone, computes the cell in the same directory
    assert main([*ARGS, "--out", str(out)]) == 0
    assert "1 done" in capsys.readouterr().out
    assert (cell / "DONE").exists() and not (cell / "error.txt").exists()
