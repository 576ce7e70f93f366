"""The layering of docs/ARCHITECTURE.md ("Layers") holds, is enforced, and has no import cycles.

The contracts live in pyproject.toml (`[tool.importlinter]`) and are checked with import-linter;
the second test proves the check fails when a lower layer imports a higher one, by linting a copy
of the packages with one forbidden import added.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

import vibench
import vibench_methods

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "pyproject.toml"


def _lint(pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(config_filename=sys.argv[1]))"
    return subprocess.run([sys.executable, "-c", code, str(CONFIG)], capture_output=True, text=True, env=env,
                          timeout=300, check=False)


def test_contracts_hold() -> None:
    proc = _lint()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_a_forbidden_import_breaks_the_contracts(tmp_path: Path) -> None:
    """data is the lowest layer: a module of it importing the runner must be reported."""
    shutil.copytree(Path(vibench.__file__).parent, tmp_path / "vibench")
    shutil.copytree(Path(vibench_methods.__file__).parent, tmp_path / "vibench_methods")
    records = tmp_path / "vibench" / "data" / "records.py"
    records.write_text(records.read_text() + "\nimport vibench.runner.matrix  # forbidden: data -> runner\n")
    proc = _lint(tmp_path)
    assert proc.returncode != 0
    assert "vibench.data.records -> vibench.runner.matrix" in proc.stdout


@pytest.mark.parametrize("package", ["vibench", "vibench_methods"])
def test_no_import_cycles(package: str) -> None:
    """No module reaches itself again through the import graph (function-level imports count)."""
    graph = grimp.build_graph(package, include_external_packages=False)
    cycles = []
    for module in sorted(graph.modules):
        if not module.startswith(package):
            continue
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported != module and graph.chain_exists(importer=imported, imported=module):
                cycles.append(f"{module} <-> {imported}")
    assert cycles == []
