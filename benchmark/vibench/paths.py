"""Where vibench finds its own files (protocol definitions, reported numbers) and its caches.

Installed from a checkout (``pip install -e .``), vibench reads the repository's declarative
folders in place: ``protocols/``, ``results/reported/``. A built wheel carries copies of them as
package data (``vibench/_data/``, written by setup.py) and reads those. Folders vibench writes
to by default (the result store ``results/store``, the regression baselines and ``reports/``)
are the checkout's when running from one, else relative to the current directory.
"""
from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
#: the checkout root: ``benchmark/vibench/paths.py`` sits two folders below it
_CHECKOUT = _PACKAGE.parent.parent
#: True when running from a source checkout (editable install), False from a built wheel
IN_CHECKOUT = (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / "protocols").is_dir() \
    and _PACKAGE.parent.name == "benchmark"
_DATA = _PACKAGE / "_data"

#: the repository root when running from a checkout (None from a wheel)
REPO_ROOT: Path | None = _CHECKOUT if IN_CHECKOUT else None
PROTOCOLS_DIR = _CHECKOUT / "protocols" if IN_CHECKOUT else _DATA / "protocols"
REPORTED_DIR = _CHECKOUT / "results" / "reported" if IN_CHECKOUT else _DATA / "reported"
RESULTS_DIR = _CHECKOUT / "results" if IN_CHECKOUT else Path("results")
REPORTS_DIR = _CHECKOUT / "reports" if IN_CHECKOUT else Path("reports")


def cache_dir() -> Path:
    """vibench's cache (synthetic datasets, image caches): $VIBENCH_CACHE, else ~/.cache/vibench."""
    env = os.environ.get("VIBENCH_CACHE")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vibench"
    return base.expanduser()
