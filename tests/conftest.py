"""Fixtures shared by several test packages (use them with ``pytest.mark.usefixtures``)."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture
def one_thread():
    """One intra-op thread for the test: toy-sized tensors only pay overhead for more on a shared
    2-core machine, and a fixed count keeps CPU results reproducible."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """Every test leaves torch's intra-op thread count as it found it: a test that lowered it
    and did not restore it once made a later speed benchmark run on one thread."""
    n = torch.get_num_threads()
    yield
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
