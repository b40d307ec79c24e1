"""A damaged or hand-edited RUN_DIR met by a rerun of ``generate`` (a resume) or by ``build``: one line on
stderr naming the file (and its line or key) and exit 2, never a traceback, and the run's files left as they
were; the damage a killed writer leaves behind (a torn last line, its lock file) resumes cleanly.

One real RUN_DIR is generated per module with the embedded model, through the real console script; each probe
damages a copy of it. Every refusal happens before a model is loaded, so a probe costs one interpreter start.
A records line that is not an object or has a mistyped field is probed in test_cli_errors.py (``inspect``) and
test_run_store.py; a live writer's lock in test_run_dir_lock.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).with_name("erc-synth")
#: One row per forward pass, so that a resumed index decodes exactly as in the first run.
GENERATE = ["generate", "--benchmark", "meld", "--num-dialogues", "2", "--backend", "transformers", "--device", "cpu",
            "--batch-size", "1", "--turns", "2", "3", "--max-new-tokens", "120", "--max-utterance-chars", "40",
            "--seed", "3", "--no-progress"]

Damage = Callable[[Path], str]
DAMAGES: dict[str, Damage] = {}


def damage(name: str) -> Callable[[Damage], Damage]:
    """Register a damage: a function of a RUN_DIR copy that damages it and returns what the error line names."""

    def register(function: Damage) -> Damage:
        assert name not in DAMAGES, f"duplicate damage {name}"
        DAMAGES[name] = function
        return function

    return register


def _erc_synth(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([str(SCRIPT), *argv], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("resume") / "run"
    done = _erc_synth(*GENERATE, "--out", str(out), cwd=out.parent)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    # the damages edit these two lines by position
    assert [(r["index"], r["attempt"], r["status"]) for r in records] == [(0, 0, "accepted"), (1, 0, "accepted")]
    return out


@pytest.fixture
def copy(base_run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(base_run, tmp_path / "run"))


def _edit_manifest(run: Path, edit: Callable[[dict], object]) -> None:
    manifest = json.loads((run / "manifest.json").read_text())
    edit(manifest)
    (run / "manifest.json").write_text(json.dumps(manifest, indent=2))


def _lines(run: Path) -> list[str]:
    return (run / "records.jsonl").read_text().splitlines()


def _write_lines(run: Path, lines: list[str]) -> None:
    (run / "records.jsonl").write_text("".join(line + "\n" for line in lines))


def _edit_record(run: Path, at: int, edit: Callable[[dict], object]) -> None:
    lines = _lines(run)
    record = json.loads(lines[at])
    edit(record)
    lines[at] = json.dumps(record)
    _write_lines(run, lines)


# --- manifest.json ---------------------------------------------------------------------------------------------


@damage("manifest-not-json")
def _manifest_not_json(run: Path) -> str:
    (run / "manifest.json").write_text('{"format_version": 1, "settings": {')
    return "manifest.json: not valid JSON"


@damage("manifest-empty")
def _manifest_empty(run: Path) -> str:
    (run / "manifest.json").write_bytes(b"")
    return "manifest.json: not valid JSON"


@damage("manifest-not-utf8")
def _manifest_not_utf8(run: Path) -> str:
    raw = (run / "manifest.json").read_bytes()
    (run / "manifest.json").write_bytes(raw.replace(b'"meld"', b'"m\xe9ld"'))
    return "manifest.json: not valid JSON"


@damage("manifest-a-list")
def _manifest_a_list(run: Path) -> str:
    (run / "manifest.json").write_text("[1, 2]")
    return "manifest.json: must hold a JSON object, got list"


@damage("manifest-deeply-nested")
def _manifest_deeply_nested(run: Path) -> str:
    (run / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)
    return "manifest.json: not valid JSON"


@damage("manifest-integer-of-5000-digits")
def _manifest_huge_integer(run: Path) -> str:
    raw = (run / "manifest.json").read_text()
    (run / "manifest.json").write_text(raw.replace('"format_version": 1', '"format_version": ' + "9" * 5000))
    return "manifest.json: not valid JSON"


@damage("manifest-nan")
def _manifest_nan(run: Path) -> str:
    raw = (run / "manifest.json").read_text()
    (run / "manifest.json").write_text(raw.replace('"temperature": 0.7', '"temperature": NaN'))
    return "manifest.json: not valid JSON"


@damage("manifest-without-settings")
def _manifest_without_settings(run: Path) -> str:
    _edit_manifest(run, lambda m: m.pop("settings"))
    return "manifest.json: field 'settings' is missing or not an object"


@damage("manifest-settings-a-list")
def _manifest_settings_a_list(run: Path) -> str:
    _edit_manifest(run, lambda m: m.update(settings=[]))
    return "manifest.json: field 'settings' is missing or not an object"


@damage("manifest-format-version-text")
def _manifest_format_version_text(run: Path) -> str:
    _edit_manifest(run, lambda m: m.update(format_version="1"))
    return "manifest.json: format_version '1', expected 1"


@damage("manifest-provenance-a-list")
def _manifest_provenance_a_list(run: Path) -> str:
    _edit_manifest(run, lambda m: m.update(provenance=["model"]))
    return "manifest.json: field 'provenance' must be an object"


@damage("manifest-history-text")
def _manifest_history_text(run: Path) -> str:
    _edit_manifest(run, lambda m: m.update(history="yesterday"))
    return "manifest.json: field 'history' must be a list of objects"


@damage("manifest-num-dialogues-text")
def _manifest_num_dialogues_text(run: Path) -> str:
    _edit_manifest(run, lambda m: m["settings"].update(num_dialogues="2"))
    return "manifest.json: field 'settings.num_dialogues' must be a non-negative integer, got '2'"


@damage("manifest-num-dialogues-negative")
def _manifest_num_dialogues_negative(run: Path) -> str:
    _edit_manifest(run, lambda m: m["settings"].update(num_dialogues=-2))
    return "manifest.json: field 'settings.num_dialogues' must be a non-negative integer, got -2"


@damage("manifest-num-dialogues-huge")
def _manifest_num_dialogues_huge(run: Path) -> str:
    _edit_manifest(run, lambda m: m["settings"].update(num_dialogues=10**30))
    return f"holds a run of {10**30} dialogues; refusing to shrink it to 2"


@damage("manifest-other-seed")
def _manifest_other_seed(run: Path) -> str:
    _edit_manifest(run, lambda m: m["settings"].update(seed=4))
    return "was made with other settings, refusing to mix runs: seed: 4 (in RUN_DIR) != 3 (requested)"


@damage("manifest-other-model")
def _manifest_other_model(run: Path) -> str:
    _edit_manifest(run, lambda m: m["settings"].update(model="HuggingFaceTB/SmolLM2-360M-Instruct"))
    return "was made with other settings, refusing to mix runs: model: 'HuggingFaceTB/SmolLM2-360M-Instruct'"


@damage("manifest-other-sampling")
def _manifest_other_sampling(run: Path) -> str:
    _edit_manifest(run, lambda m: m["settings"]["sampling"].update(temperature=0.9))
    return "was made with other settings, refusing to mix runs: sampling:"


@damage("manifest-setting-removed")
def _manifest_setting_removed(run: Path) -> str:
    _edit_manifest(run, lambda m: m["settings"].pop("grammar"))
    return "was made with other settings, refusing to mix runs: grammar: None (in RUN_DIR) != True (requested)"


@damage("manifest-setting-of-another-type")
def _manifest_setting_of_another_type(run: Path) -> str:
    _edit_manifest(run, lambda m: m["settings"].update(turns="2-3"))
    return "was made with other settings, refusing to mix runs: turns: '2-3' (in RUN_DIR) != [2, 3] (requested)"


@damage("manifest-a-folder")
def _manifest_a_folder(run: Path) -> str:
    (run / "manifest.json").unlink()
    (run / "manifest.json").mkdir()
    return "manifest.json is a folder, not a file"


# --- records.jsonl ---------------------------------------------------------------------------------------------


@damage("records-middle-line-not-json")
def _records_middle_line_not_json(run: Path) -> str:
    lines = _lines(run)
    _write_lines(run, [lines[0][: len(lines[0]) // 2], *lines[1:]])
    return "records.jsonl:1: corrupt record"


@damage("records-middle-line-not-utf8")
def _records_middle_line_not_utf8(run: Path) -> str:
    raw = (run / "records.jsonl").read_bytes()
    (run / "records.jsonl").write_bytes(raw.replace(b'"status"', b'"st\xffatus"', 1))
    return "records.jsonl:1: corrupt record"


@damage("records-line-without-status")
def _records_line_without_status(run: Path) -> str:
    _edit_record(run, 1, lambda r: r.pop("status"))
    return "records.jsonl:2: record lacks field(s) status"


@damage("records-deeply-nested-line")
def _records_deeply_nested_line(run: Path) -> str:
    _write_lines(run, [*_lines(run), '{"index": ' + "[" * 100_000 + "]" * 100_000 + "}"])
    return "records.jsonl:3: corrupt record"


@damage("records-index-of-5000-digits")
def _records_huge_index(run: Path) -> str:
    lines = _lines(run)
    _write_lines(run, [*lines, lines[0].replace('"index": 0', '"index": ' + "9" * 5000)])
    return "records.jsonl:3: corrupt record"


@damage("records-seed-beyond-64-bits")
def _records_seed_beyond_64_bits(run: Path) -> str:
    _edit_record(run, 0, lambda r: r.update(seed=2**64))
    return "records.jsonl:1: field 'seed' must be a non-negative integer below 2**63"


@damage("records-duplicated-attempt")
def _records_duplicated_attempt(run: Path) -> str:
    lines = _lines(run)
    _write_lines(run, [*lines, lines[0]])
    index = json.loads(lines[0])["index"]
    return f"records.jsonl:3: index {index} attempt 0 is stored twice (first at line 1)"


@damage("records-index-beyond-the-run")
def _records_index_beyond_the_run(run: Path) -> str:
    _edit_record(run, 1, lambda r: r.update(index=7))
    return "records.jsonl:2: index 7 is beyond the run's 2 dialogues"


@damage("records-label-above-the-benchmark")
def _records_label_above(run: Path) -> str:
    _edit_record(run, 0, lambda r: r["emotions"].__setitem__(0, 7))
    return "records.jsonl:1: field 'emotions' holds label 7; meld has labels 0 to 6"


@damage("records-negative-label")
def _records_negative_label(run: Path) -> str:
    _edit_record(run, 0, lambda r: r["emotions"].__setitem__(0, -1))
    return "records.jsonl:1: field 'emotions' holds label -1; meld has labels 0 to 6"


@damage("records-target-above-the-benchmark")
def _records_target_above(run: Path) -> str:
    _edit_record(run, 0, lambda r: r.update(target_emotion=9))
    return "records.jsonl:1: field 'target_emotion' holds label 9; meld has labels 0 to 6"


@damage("records-accepted-with-fewer-labels-than-utterances")
def _records_fewer_labels(run: Path) -> str:
    _edit_record(run, 0, lambda r: r.update(emotions=r["emotions"][:-1]))
    return "records.jsonl at record index 0 attempt 0: speakers, utterances and emotions differ in length"


@damage("records-accepted-without-utterances")
def _records_accepted_without_utterances(run: Path) -> str:
    _edit_record(run, 0, lambda r: r.update(utterances=None))
    return "records.jsonl at record index 0 attempt 0: accepted record lacks a non-empty list (field 'utterances'"


@damage("records-a-folder")
def _records_a_folder(run: Path) -> str:
    (run / "records.jsonl").unlink()
    (run / "records.jsonl").mkdir()
    return "records.jsonl is a folder, not a file"


# --- writer.lock -----------------------------------------------------------------------------------------------


@damage("lock-a-folder")
def _lock_a_folder(run: Path) -> str:
    (run / "writer.lock").unlink()
    (run / "writer.lock").mkdir()
    return "writer.lock is a folder, not a file"


def _refused(done: subprocess.CompletedProcess, command: str, fragment: str) -> None:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"erc-synth {command}: error: ")
    assert fragment in lines[0], lines[0]


def _contents(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != "writer.lock"}


#: Damages that leave each request of the run readable and typed, so a resume has nothing to redo and finishes;
#: the builder, which needs whole dialogues, refuses them.
BUILD_ONLY = {"records-accepted-with-fewer-labels-than-utterances", "records-accepted-without-utterances"}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(DAMAGES) - BUILD_ONLY))
def test_a_damaged_run_dir_is_refused_on_resume_in_one_line(name: str, copy: Path) -> None:
    fragment = DAMAGES[name](copy)
    before = _contents(copy)
    done = _erc_synth(*GENERATE, "--out", str(copy), cwd=copy.parent)
    _refused(done, "generate", fragment)
    assert _contents(copy) == before  # a refused resume writes nothing


#: Damages in what ``build`` reads (the lock and the settings comparison are the writer's business).
BUILD_DAMAGES = sorted({"manifest-integer-of-5000-digits", "manifest-a-folder", "manifest-history-text",
                        "records-a-folder", "records-duplicated-attempt", "records-index-beyond-the-run",
                        "records-label-above-the-benchmark", "records-seed-beyond-64-bits", *BUILD_ONLY})


@pytest.mark.slow
@pytest.mark.parametrize("name", BUILD_DAMAGES)
def test_a_damaged_run_dir_is_refused_by_build_in_one_line(name: str, copy: Path) -> None:
    fragment = DAMAGES[name](copy)
    done = _erc_synth("build", str(copy), "--out", str(copy.parent / "built"), cwd=copy.parent)
    _refused(done, "build", fragment)
    assert not (copy.parent / "built").exists()


@pytest.mark.slow
def test_a_killed_writers_leftovers_resume_to_the_same_records(base_run: Path, copy: Path) -> None:
    """A SIGKILL mid-append leaves a torn last line and a lock file naming a dead PID: neither blocks, and the
    torn request is generated again, byte for byte."""
    raw = (copy / "records.jsonl").read_bytes()
    last = raw.rstrip(b"\n").rfind(b"\n") + 1
    (copy / "records.jsonl").write_bytes(raw[: last + (len(raw) - last) // 2])
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (copy / "writer.lock").write_text(f"{gone.pid}\n")
    done = _erc_synth(*GENERATE, "--out", str(copy), cwd=copy.parent)
    assert done.returncode == 0, done.stderr
    assert "2/2 dialogues accepted" in done.stdout
    assert (copy / "records.jsonl").read_bytes() == raw
