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


@probe("generate-backend-vllm-not-installed")
def _generate_backend_vllm_not_installed(tmp: Path) -> tuple[list[str], str]:
    # vLLM lives in its own venv (scripts/install-vllm.sh), never in the one that runs this suite
    return ["generate", "--benchmark", "meld", "--num-dialogues", "1", "--backend", "vllm", "--out",
            str(tmp / "run")], "install it with: bash scripts/install-vllm.sh"


@probe("generate-server-kind-without-openai-backend")
def _generate_server_kind_without_openai_backend(tmp: Path) -> tuple[list[str], str]:
    return ["generate", "--benchmark", "meld", "--num-dialogues", "1", "--backend", "tgi", "--endpoint",
            "http://127.0.0.1:9", "--server", "vllm", "--out", str(tmp / "run")], "--server"


def _generate_argv(tmp: Path, *extra: str, count: int = 2) -> list[str]:
    """``generate`` against a closed port: every probe below must fail before any server is contacted."""
    return ["generate", "--benchmark", "meld", "--num-dialogues", str(count), "--backend", "tgi", "--endpoint",
            "http://127.0.0.1:9", "--out", str(tmp / "run"), "--no-progress", *extra]


for _flag, _value in (("--temperature", "nan"), ("--temperature", "-1"), ("--top-p", "0"), ("--top-p", "2"),
                      ("--top-k", "-5"), ("--typical-p", "1.5"), ("--repetition-penalty", "0"),
                      ("--request-timeout", "-1"), ("--batch-size", "0"), ("--max-attempts", "0"),
                      ("--concurrency", "0"), ("--max-new-tokens", "0")):
    probe(f"generate{_flag}-{_value}")(
        lambda tmp, flag=_flag, value=_value: (_generate_argv(tmp, flag, value), f"{flag} must be"))


@probe("generate-out-is-a-file")
def _generate_out_is_a_file(tmp: Path) -> tuple[list[str], str]:
    (tmp / "run").write_text("not a folder")
    return _generate_argv(tmp), f"{tmp / 'run'} is a file"


@probe("generate-smaller-count-than-the-run")
def _generate_smaller_count(tmp: Path) -> tuple[list[str], str]:
    from erc_synth.dataset_scripts.registry import get_benchmark
    from erc_synth.dataset_scripts.run_store import RunStore
    from erc_synth.generation.engine import GenerationConfig, run_settings

    config = GenerationConfig(benchmark="meld", num_dialogues=5, out=tmp / "run", backend="tgi",
                              endpoints=["http://127.0.0.1:9"])
    RunStore.create_or_open(tmp / "run", run_settings(config, get_benchmark("meld")))
    return _generate_argv(tmp, count=3), "refusing to shrink it to 3"


@probe("inspect-record-that-is-not-an-object")
def _inspect_record_not_an_object(tmp: Path) -> tuple[list[str], str]:
    from erc_synth.dataset_scripts.run_store import RunStore

    store = RunStore.create_or_open(tmp / "run", {"benchmark": "meld", "mode": "natural", "num_dialogues": 2})
    store.append([{"index": 0, "attempt": 0, "seed": 1, "status": "rejected", "reason": "no_lines"}])
    with open(store.records_path, "a", encoding="utf-8") as fh:
        fh.write("null\n")
    return ["inspect", str(tmp / "run")], "records.jsonl:2: a record must be a JSON object"


@probe("inspect-folder-that-is-no-run")
def _inspect_folder_that_is_no_run(tmp: Path) -> tuple[list[str], str]:
    return ["inspect", str(tmp)], "manifest.json is missing"

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
