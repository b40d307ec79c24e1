"""Every user error the console script can meet: exit 2, one line on stderr, no traceback, the culprit named.

Each probe runs the real ``erc-synth`` console script in a subprocess, as a user would. A probe is a function
of a scratch folder that prepares whatever files it needs and returns ``(argv, fragment)``: the arguments, and
the text the one-line error must contain (the flag, file, line, field or value at fault). Probes are grouped by
area; add new ones to the area's section.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

Probe = Callable[[Path], tuple[list[str], str]]
PROBES: dict[str, Probe] = {}


def probe(name: str) -> Callable[[Probe], Probe]:
    """Register a probe under a readable test id."""

    def register(function: Probe) -> Probe:
        assert name not in PROBES, f"duplicate probe {name}"
        PROBES[name] = function
        return function

    return register


# --- readers and statistics ------------------------------------------------------------------------------------


@probe("stats-unknown-benchmark")
def _stats_unknown_benchmark(tmp: Path) -> tuple[list[str], str]:
    return ["stats", "no-such-benchmark", "--data-dir", str(tmp)], "no-such-benchmark"


# --- generation ------------------------------------------------------------------------------------------------

# --- build, cards and push -------------------------------------------------------------------------------------

# --- audit -----------------------------------------------------------------------------------------------------

# --- classifiers, experiment and tables ------------------------------------------------------------------------

# --- metrics ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PROBES))
def test_user_error_is_one_line_and_exit_2(name: str, tmp_path: Path) -> None:
    argv, fragment = PROBES[name](tmp_path)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "erc_synth.cli", *argv],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert len(lines) == 1, done.stderr
    assert fragment in lines[0]
