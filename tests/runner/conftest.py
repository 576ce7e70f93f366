"""Fixtures for the runner tests: the mock plug-in method on the path and a shared data cache."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def runner_env() -> dict[str, str]:
    """Environment for `vibench` subprocesses: the mock plugin importable and registered."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["VIBENCH_PLUGINS"] = "runner_mock_plugin"
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


@pytest.fixture
def mock_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register the mock method in this process."""
    monkeypatch.syspath_prepend(str(HERE))
    import runner_mock_plugin  # noqa: F401
