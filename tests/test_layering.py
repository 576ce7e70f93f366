"""The layering of docs/ARCHITECTURE.md ("Layers") holds, is enforced, and has no import cycles.

The contracts live in pyproject.toml (`[tool.importlinter]`) and are checked with import-linter;
the second test proves the check fails when a lower layer imports a higher one, by linting a copy
of the packages with one forbidden import added. Function-level imports must be marked
``# lazy: <reason>`` (docs/ARCHITECTURE.md, "Layers").
"""
from __future__ import annotations

import ast
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


def _function_level_imports(tree: ast.AST) -> list[ast.stmt]:
    """Import statements inside a function body, outside ``if TYPE_CHECKING:`` blocks."""
    found: list[ast.stmt] = []

    def walk(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if in_function and isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append(child)
            walk(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    walk(tree, False)
    return found


def _unmarked_lazy_imports(source: str) -> list[int]:
    """Line numbers of function-level imports with no ``# lazy: <reason>`` on their line (or the
    line above)."""
    lines = source.splitlines()
    bad = []
    for node in _function_level_imports(ast.parse(source)):
        text = "\n".join(lines[node.lineno - 2 if node.lineno > 1 else 0:node.end_lineno])
        if "# lazy:" not in text:
            bad.append(node.lineno)
    return bad


@pytest.mark.parametrize("package", [vibench, vibench_methods], ids=lambda p: p.__name__)
def test_function_level_imports_are_marked_lazy(package: object) -> None:
    """Imports sit at module level; the few that must stay lazy (torch-free CLI start-up, optional
    dependencies) say why with a ``# lazy:`` comment."""
    root = Path(package.__file__).parent  # type: ignore[attr-defined]
    unmarked = [f"{path.relative_to(root.parent)}:{line}" for path in sorted(root.rglob("*.py"))
                for line in _unmarked_lazy_imports(path.read_text(encoding="utf-8"))]
    assert unmarked == []


def test_the_lazy_import_check_finds_unmarked_imports() -> None:
    source = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import json\n"
              "def f():\n    import os\n    def g():\n        from sys import argv\n"
              "    import re  # lazy: a reason\n    # lazy: another reason\n    import math\n"
              "class C:\n    def m(self):\n        import csv\n")
    assert _unmarked_lazy_imports(source) == [5, 7, 13]
