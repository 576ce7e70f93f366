"""The manifest of a completed cell: size and sha256 of every file the cell wrote.

``DONE`` is written last and holds ``{"protocols": [...], "manifest": {"algorithm": "sha256",
"files": {"<path relative to the cell>": {"size": n, "sha256": hex}}}}``. The manifest covers
every file of the cell directory except ``DONE`` itself, ``error.txt`` (a failure record, removed
on success) and temporary files of an interrupted atomic write (names starting with ``.``).
Stores written before manifests existed have a ``DONE`` with ``protocols`` only; readers treat
their cells as unverified (checked for structure only, :mod:`vibench.store.verify`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from vibench.io import sha256_file

ALGORITHM = "sha256"
#: files of a cell directory the manifest never lists
UNLISTED = ("DONE", "error.txt")


def listed(rel: str) -> bool:
    """True for a path (relative to the cell directory) that belongs in the manifest."""
    parts = rel.split("/")
    return rel not in UNLISTED and not any(p.startswith(".") for p in parts)


def cell_files(root: Path) -> list[str]:
    """Every manifest-listed file below `root`, as sorted POSIX paths relative to it."""
    root = Path(root)
    found = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
    return sorted(rel for rel in found if listed(rel))


def build_manifest(root: Path) -> dict[str, Any]:
    """The manifest of cell directory `root` as it is now (module docstring)."""
    root = Path(root)
    files = {}
    for rel in cell_files(root):
        path = root / rel
        files[rel] = {"size": path.stat().st_size, ALGORITHM: sha256_file(path)}
    return {"algorithm": ALGORITHM, "files": files}
