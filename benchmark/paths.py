"""Where vibench finds its own files (protocol definitions, reported numbers) and its caches."""
from __future__ import annotations

import os
from pathlib import Path

#: The repository root: ``benchmark/`` (installed as ``vibench``) sits directly below it.
#: vibench is installed from a checkout (``pip install -e .``), so the declarative folders
#: ``protocols/``, ``results/`` and ``reports/`` are read from here.
REPO_ROOT = Path(__file__).resolve().parent.parent
PROTOCOLS_DIR = REPO_ROOT / "protocols"
RESULTS_DIR = REPO_ROOT / "results"
REPORTS_DIR = REPO_ROOT / "reports"


def cache_dir() -> Path:
    """vibench's cache (synthetic datasets, image caches): $VIBENCH_CACHE, else ~/.cache/vibench."""
    env = os.environ.get("VIBENCH_CACHE")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vibench"
    return base.expanduser()
