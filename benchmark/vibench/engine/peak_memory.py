"""Peak memory of a training epoch: resident set size on CPU, allocated tensor memory on CUDA.

On CUDA the figure is ``torch.cuda.max_memory_allocated`` since :func:`reset_peak` (tensors only,
not the allocator's cache or the CUDA context). On CPU it is the process's peak resident set size
(``VmHWM`` of ``/proc/self/status``); Linux lets a process reset that high-water mark
(``/proc/self/clear_refs``, value 5), so each epoch reports its own peak (scope "since_reset").
Where the reset is not possible the figure is the process's lifetime peak (scope "process",
from ``resource.getrusage``), an upper bound for the epoch.
"""
from __future__ import annotations

import resource
import sys
from pathlib import Path
from typing import Any

import torch

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def reset_peak(device: torch.device) -> bool:
    """Start a new peak window on `device`; False when only the lifetime peak can be read."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return True
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return _vm_hwm() is not None


def _vm_hwm() -> int | None:
    """VmHWM (peak resident set size) of this process in bytes, None where unavailable."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                value, unit = line.split()[1:3]
                return int(value) * {"kB": 1024, "mB": 1 << 20, "gB": 1 << 30}.get(unit, 1024)
    except (OSError, ValueError, IndexError):
        return None
    return None


def read_peak(device: torch.device, was_reset: bool) -> dict[str, Any]:
    """{"kind": "cuda_allocated" | "rss", "bytes": n, "scope": "since_reset" | "process"}."""
    if device.type == "cuda":
        return {"kind": "cuda_allocated", "bytes": int(torch.cuda.max_memory_allocated(device)),
                "scope": "since_reset"}
    hwm = _vm_hwm() if was_reset else None
    if hwm is not None:
        return {"kind": "rss", "bytes": hwm, "scope": "since_reset"}
    # ru_maxrss is in kilobytes on Linux, bytes on macOS
    scale = 1 if sys.platform == "darwin" else 1024
    return {"kind": "rss", "bytes": int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * scale,
            "scope": "process"}
