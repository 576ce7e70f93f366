"""`vibench data synth` (the click command `synth`)."""
from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from vibench.commands.synth import synth
from vibench.errors import VibenchError


def test_synth_command_writes_a_tree(tmp_path: Path) -> None:
    result = CliRunner().invoke(synth, ["--dataset", "regdb", "--root", str(tmp_path / "r"), "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "48 ids, 240 visible + 240 infrared images" in result.output
    assert (tmp_path / "r/idx/test_thermal_10.txt").is_file()


def test_synth_command_rejects_unknown_dataset(tmp_path: Path) -> None:
    result = CliRunner().invoke(synth, ["--dataset", "sysuu", "--root", str(tmp_path / "r")])
    assert isinstance(result.exception, VibenchError)
    assert "did you mean 'sysu'" in str(result.exception)
    assert not (tmp_path / "r").exists()


def test_mounted_under_vibench_data(tmp_path: Path) -> None:
    from vibench.cli import main

    assert main(["data", "synth", "--dataset", "llcm", "--root", str(tmp_path / "l")]) == 0
    assert (tmp_path / "l/idx/test_id.txt").is_file()
    assert main(["data", "synth", "--dataset", "llcm", "--root", str(tmp_path / "l")]) == 2
