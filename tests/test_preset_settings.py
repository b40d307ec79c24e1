"""The preset's typed schema: a misspelt or unknown key at any level is refused through the real console script,
with the file, the key path and a suggestion, before anything is generated."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from erc_synth.dataset_scripts.core.errors import ErcSynthError
from erc_synth.preset import load_preset, parse_preset

QUICKSTART = Path(__file__).resolve().parents[1] / "erc_synth" / "presets" / "quickstart.yaml"


def _quickstart() -> dict[str, Any]:
    return yaml.safe_load(QUICKSTART.read_text(encoding="utf-8"))


def _set(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(data)
    holder = changed
    for part in path[:-1]:
        holder = holder.setdefault(part, {}) if isinstance(part, str) else holder[part]
    holder[path[-1]] = value
    return changed


HUGE = 10**30

#: (where the typo goes, its value, the line the user must see).
PROBES = [
    (("seeed",), 3, "unknown key 'seeed'; did you mean 'seed'?"),
    (("sampling", "temprature"), 0.7, "unknown key 'sampling.temprature'; did you mean 'sampling.temperature'?"),
    (("build", "split_sed"), 3, "unknown key 'build.split_sed'; did you mean 'build.split_seed'?"),
    (("datasets", 1, "num_dialoges"), 3,
     "unknown key 'datasets[1].num_dialoges'; did you mean 'datasets[1].num_dialogues'?"),
    (("audit",), {"judge": "train", "labelpolicy": "agree"},
     "unknown key 'audit.labelpolicy'; did you mean 'audit.label_policy'?"),
    (("chat_format",), "chatmlx", "field 'chat_format' has unknown value 'chatmlx'; known: auto, vicuna"),
    (("sampling", "top_p"), 2, "field 'sampling.top_p' must be a number in (0, 1]"),
    (("endpoints",), "http://127.0.0.1:1", "field 'endpoints' has value 'http://127.0.0.1:1'"),
    (("seed",), "13", "field 'seed' has value '13': Input should be a valid integer"),
    (("build", "ratios"), [0.5, 0.5, 0.5], "field 'build.ratios' must be three shares"),
    (("datasets", 0, "benchmark"), "friends", "field 'datasets[0].benchmark' has unknown value 'friends'"),
]
#: Counts and sizes have ceilings (the engine's rules): a huge integer is one line, before anything is made.
CEILINGS = [
    (("datasets", 0, "num_dialogues"), HUGE, "field 'datasets[0].num_dialogues' must be an integer in [1, 1000000]"),
    (("sampling", "max_new_tokens"), HUGE, "field 'sampling.max_new_tokens' must be an integer in [1, 32768]"),
    (("turns",), [2, HUGE], "field 'turns' must be [min, max] with 1 <= min <= max <= 1000"),
    (("seed",), HUGE, f"field 'seed' must be an integer in [0, 4294967295], got {HUGE}"),
    (("concurrency",), HUGE, "field 'concurrency' must be an integer in [1, 4096]"),
    (("max_attempts",), HUGE, "field 'max_attempts' must be an integer in [1, 1000]"),
    (("few_shot",), HUGE, "field 'few_shot' must be an integer in [0, 64]"),
    (("max_utterance_chars",), HUGE, "field 'max_utterance_chars' must be an integer in [1, 100000]"),
    (("backend_options", "batch_size"), HUGE,
     "field 'backend_options' must hold batch_size as an integer in [1, 4096]"),
    (("build", "split_seed"), HUGE, f"field 'build.split_seed' must be an integer in [0, 4294967295], got {HUGE}"),
]
PROBES += CEILINGS


@pytest.mark.parametrize(("path", "value", "expected"), PROBES, ids=[p[2].split(";")[0] for p in PROBES])
def test_a_bad_preset_key_is_refused_with_file_key_path_and_suggestion(path, value, expected):
    with pytest.raises(ErcSynthError) as caught:
        parse_preset(_set(_quickstart(), path, value), "mine.yaml")
    assert str(caught.value).startswith(f"mine.yaml: {expected}")


#: One probe per nesting level through the real console script: top, nested mapping, list item, choice.
CLI_PROBES = [PROBES[0], PROBES[1], PROBES[3], PROBES[5], *CEILINGS]


@pytest.mark.parametrize(("path", "value", "expected"), CLI_PROBES, ids=[p[2].split(";")[0] for p in CLI_PROBES])
def test_a_bad_preset_key_is_one_line_and_exit_2_from_erc_synth_run(tmp_path, path, value, expected):
    preset = tmp_path / "mine.yaml"
    preset.write_text(yaml.safe_dump(_set(_quickstart(), path, value)), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "erc_synth.cli", "run", "--preset", str(preset), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"{preset}: {expected}" in lines[0]
    assert not (tmp_path / "out").exists()


def test_a_non_utf8_preset_is_refused_naming_the_file(tmp_path):
    preset = tmp_path / "latin1.yaml"
    preset.write_bytes(QUICKSTART.read_text(encoding="utf-8").replace("offline", "caf\xe9").encode("latin-1"))
    with pytest.raises(ErcSynthError, match=rf"{preset}: not UTF-8 text"):
        load_preset(str(preset))


def test_the_schema_keeps_what_a_preset_sets_and_nothing_more():
    preset = parse_preset(_quickstart(), "quickstart.yaml")
    assert preset.sampling == _quickstart()["sampling"]
    assert preset.build == {"split_seed": 0, "ratios": (0.8, 0.1, 0.1)}
    assert preset.generation == {"prompt_version": "v2", "label_format": "word_first", "label_plan": "benchmark"}
    assert preset.with_real_data == {"few_shot": 2}
    assert preset.turns == (4, 6) and preset.audit is None


def test_yaml_anchors_and_aliases_are_refused_with_the_line(tmp_path):
    preset = tmp_path / "bomb.yaml"
    text = QUICKSTART.read_text(encoding="utf-8")
    preset.write_text(text + 'a: &a ["x", "x"]\nb: &b [*a, *a]\nc: [*b, *b]\n', encoding="utf-8")
    line = text.count("\n") + 1
    with pytest.raises(ErcSynthError, match=rf"^{preset}:{line}: YAML anchors and aliases"):
        load_preset(str(preset))


def test_a_huge_num_dialogues_override_is_one_line_and_exit_2(tmp_path):
    done = subprocess.run([sys.executable, "-m", "erc_synth.cli", "run", "--preset", str(QUICKSTART), "--out",
                           str(tmp_path / "out"), "--num-dialogues", str(HUGE)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0] == f"erc-synth run: error: --num-dialogues must be an integer in [1, 1000000], got {HUGE}"
    assert not (tmp_path / "out").exists()
