"""Shared test fixtures: where the licensed benchmark copies live, and the skip when they are absent."""

from __future__ import annotations

import os
from pathlib import Path

# One OpenMP thread for torch in the tests and the processes they start, unless the caller chose otherwise: the
# models under test are tiny, and on a small shared machine OpenMP's spin-waiting threads slow them down.
# Set before anything imports torch (it reads the variable once, at import).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest

from erc_synth.dataset_scripts.core.environment import real_data_env

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = REPO_ROOT / "tests" / "fixtures"
SHARED_DATA = Path(real_data_env() or REPO_ROOT.parent / "shared" / "data")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder with the real MELD/EmoryNLP/IEMOCAP text; tests using it skip when it is absent."""
    if not (SHARED_DATA / "meld").is_dir():
        pytest.skip(f"benchmark copies not found at {SHARED_DATA} (licensed data is never committed)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES
