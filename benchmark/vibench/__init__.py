"""vibench: the reproducibility benchmark suite for visible-infrared person re-identification.

The engine lives here (``benchmark/vibench/``); the built-in method implementations are the
package ``vibench_methods`` (``methods/vibench_methods/``), registered through the
``vibench.methods`` entry-point group; declarative protocol files in ``protocols/``.
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "evaluate", "EvalResult"]


def __getattr__(name: str) -> Any:
    # Lazy re-exports keep ``import vibench`` (and the CLI start-up) free of torch imports.
    if name in ("evaluate", "EvalResult"):
        # lazy: keeps `import vibench` and the CLI start-up torch-free
        from vibench.metrics import evaluate as _mod

        return getattr(_mod, name)
    raise AttributeError(f"module 'vibench' has no attribute {name!r}")
