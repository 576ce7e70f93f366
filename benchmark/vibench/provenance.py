"""Provenance recorded with every result: code commit, package versions, hardware."""
from __future__ import annotations

import os
import platform
import subprocess
from functools import lru_cache
from importlib import metadata
from typing import Any

from vibench.paths import REPO_ROOT

_PACKAGES = ("vibench", "torch", "torchvision", "timm", "numpy", "scipy", "pandas", "pillow")


@lru_cache(maxsize=1)
def git_state() -> dict[str, Any]:
    """{'commit': sha or None, 'dirty': bool or None} of the checkout vibench runs from (both
    None for an installed wheel: its version is in the package versions)."""
    if REPO_ROOT is None:
        return {"commit": None, "dirty": None}

    def _git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    versions["python"] = platform.python_version()
    return versions


def hardware(device: str | None = None) -> dict[str, Any]:
    """CPU, core count and (when `device` is CUDA) the GPU name, CUDA and driver versions."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "device": device or "cpu",
    }
    if device and device.startswith("cuda"):
        import torch  # lazy: only CUDA runs need torch here; provenance is imported on torch-free paths

        idx = torch.device(device).index or 0
        info["gpu"] = torch.cuda.get_device_name(idx)
        info["cuda"] = torch.version.cuda
    return info


@lru_cache(maxsize=1)
def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def provenance(device: str | None = None) -> dict[str, Any]:
    return {"git": git_state(), "packages": package_versions(), "hardware": hardware(device)}
