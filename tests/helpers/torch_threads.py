"""A shared fixture pinning torch to one intra-op thread for a test module.

Why: on a busy machine, two OpenMP threads spin-wait against each other and tiny models run many times slower
than on one thread; the process-wide setting is restored when the module's tests are done. A test module takes it with
``from helpers.torch_threads import one_thread  # noqa: F401`` (it is autouse: importing it is enough).
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread for every test of the importing module; the previous count is restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
