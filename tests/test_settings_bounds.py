"""Every count and size a command takes has a ceiling, from the one rule table its setting has.

Each case runs the real ``erc-synth`` console script with a value far past the ceiling (``10**20``, or ``1e300``
for a share) and expects exit 2, one line naming the flag and the allowed range, and nothing created. The RUN_DIR,
config or dataset each case names does not exist or is empty: the bound is checked before any input is read.
The expected range is read from the setting's rule table, so a flag cannot drift from the preset key or the
Python argument that shares the table.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from erc_synth.classifiers.settings import MAX_CELL_WORKERS, MAX_SEED
from erc_synth.dataset_scripts.core.build_defaults import BUILD_RULES
from erc_synth.dataset_scripts.core.errors import ErcSynthError
from erc_synth.generation.engine import BACKEND_OPTION_RULES, CONFIG_RULES, SAMPLING_RULES
from erc_synth.generation.tuning import TUNE_RULES
from erc_synth.generation_workers import MAX_GENERATION_WORKERS
from erc_synth.preset_schema import validate_preset

CLI = Path(sys.executable).with_name("erc-synth")
BIG = "99999999999999999999"
HUGE_SHARE = "1e300"

Argv = Callable[[Path], list[str]]


def _build(tmp: Path) -> list[str]:
    (tmp / "run").mkdir()
    return ["build", str(tmp / "run"), "--out", str(tmp / "out")]


def _build_all(tmp: Path) -> list[str]:
    (tmp / "runs").mkdir()
    return ["build-all", str(tmp / "runs"), "--out", str(tmp / "out")]


def _run(tmp: Path) -> list[str]:
    return ["run", "--out", str(tmp / "out")]


def _generate(tmp: Path) -> list[str]:
    return ["generate", "--benchmark", "meld", "--num-dialogues", "2", "--backend", "tgi", "--endpoint",
            "http://127.0.0.1:9", "--out", str(tmp / "out"), "--no-progress"]


def _tune(tmp: Path) -> list[str]:
    (tmp / "real").mkdir()
    return ["tune-generator", "--benchmark", "meld", "--real-data", str(tmp / "real"), "--out", str(tmp / "out")]


def _experiment(tmp: Path) -> list[str]:
    return ["experiment", str(tmp / "grid.yaml"), "--out", str(tmp / "out")]


def _audit(tmp: Path) -> list[str]:
    return ["audit", str(tmp / "set"), "--benchmark", "meld", "--judge", "train", "--out", str(tmp / "out")]


def _quality(tmp: Path) -> list[str]:
    return ["quality", str(tmp / "set"), "--benchmark", "meld", "--out", str(tmp / "out")]


def _rule(table: dict, name: str) -> str:
    return table[name][1]


_CASES: list[tuple[str, Argv, str, str, str]] = [
    ("run", _run, "--workers", BIG, f"an integer in [1, {MAX_GENERATION_WORKERS}]"),
    ("run", _run, "--workers", "0", f"an integer in [1, {MAX_GENERATION_WORKERS}]"),
    ("run", _run, "--num-dialogues", BIG, _rule(CONFIG_RULES, "num_dialogues")),
    *[(command, argv, f"--{name.replace('_', '-')}", value, _rule(BUILD_RULES, name))
      for command, argv in (("build", _build), ("build-all", _build_all))
      for name, value in (("split_seed", BIG), ("decontam_ngram", BIG), ("gibberish_min_words", BIG),
                          ("near_dup_threshold", HUGE_SHARE), ("decontam_threshold", HUGE_SHARE),
                          ("gibberish_threshold", HUGE_SHARE), ("max_bad_line_share", HUGE_SHARE))],
    *[("generate", _generate, f"--{name.replace('_', '-')}", BIG, _rule(CONFIG_RULES, name))
      for name in ("seed", "concurrency", "max_attempts", "steer_wave", "max_utterance_chars", "max_retries",
                   "few_shot")],
    ("generate", _generate, "--max-new-tokens", BIG, _rule(SAMPLING_RULES, "max_new_tokens")),
    ("generate", _generate, "--top-k", BIG, _rule(SAMPLING_RULES, "top_k")),
    ("generate", _generate, "--batch-size", BIG, _rule(BACKEND_OPTION_RULES, "batch_size")),
    *[("tune-generator", _tune, f"--{name.replace('_', '-')}", value, _rule(TUNE_RULES, name))
      for name, value in (("lora_r", BIG), ("lora_alpha", BIG), ("max_steps", BIG), ("batch_size", BIG),
                          ("max_length", BIG), ("max_dialogues", BIG), ("save_steps", BIG), ("seed", BIG),
                          ("lora_dropout", HUGE_SHARE), ("learning_rate", HUGE_SHARE), ("epochs", HUGE_SHARE))],
    ("experiment", _experiment, "--workers", BIG, f"in 1 <= value <= {MAX_CELL_WORKERS}"),
    ("audit", _audit, "--seed", BIG, f"in 0 <= value <= {MAX_SEED}"),
    ("quality", _quality, "--seed", BIG, f"in 0 <= value <= {MAX_SEED}"),
]


@pytest.mark.parametrize(("command", "argv", "flag", "value", "valid"),
                         [pytest.param(*case, id=f"{case[0]}{case[2]}={case[3]}") for case in _CASES])
def test_a_value_past_the_ceiling_is_one_line_naming_flag_and_range(command: str, argv: Argv, flag: str, value: str,
                                                                   valid: str, tmp_path: Path) -> None:
    done = subprocess.run([str(CLI), *argv(tmp_path), flag, value], capture_output=True, text=True, cwd=tmp_path,
                          timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"})
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith(f"erc-synth {command}: error: {flag} must be {valid}, got "), lines[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("key", "value"), [("split_seed", 10**20), ("gibberish_min_words", 10**20),
                                            ("near_dup_threshold", 1e300), ("max_bad_line_share", 1e300)])
def test_a_preset_build_key_has_the_flags_range(key: str, value: object) -> None:
    preset = {"backend": "transformers", "model": "embedded", "seed": 1,
              "datasets": [{"benchmark": "meld", "mode": "natural", "num_dialogues": 2}], "build": {key: value}}
    with pytest.raises(ErcSynthError) as caught:
        validate_preset(preset, "mine.yaml")
    assert str(caught.value) == f"mine.yaml: field 'build.{key}' must be {BUILD_RULES[key][1]}, got {value!r}"
