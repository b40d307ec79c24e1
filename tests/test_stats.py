"""Corpus statistics, their renderers, and the ``benchmarks``/``stats`` subcommands (in-process and as a script)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from erc_synth.cli import main
from erc_synth.dataset_scripts.core.registry import get_benchmark
from erc_synth.dataset_scripts.readers import load_reference
from erc_synth.dataset_scripts.schema import UNLABELLED, dialogues_dataset
from erc_synth.dataset_scripts.stats import corpus_stats, render_stats, render_table, split_stats


def _toy():
    rows = [
        {"dialogue_id": "a", "speakers": ["M", "F", "M"], "utterances": ["x", "y", "z"], "emotions": [0, 0, 5]},
        {"dialogue_id": "b", "speakers": ["F"], "utterances": ["w"], "emotions": [UNLABELLED]},
    ]
    return dialogues_dataset(get_benchmark("iemocap"), rows)


def test_split_stats_counts_labels_unlabelled_turns_and_speakers():
    stats = split_stats("train", _toy())
    assert stats.dialogues == 2 and stats.utterances == 4 and stats.unlabelled == 1
    assert stats.label_counts == {"neutral": 2, "happy": 0, "sad": 0, "angry": 0, "excited": 0, "frustrated": 1}
    assert stats.mean_turns == 2.0
    assert stats.mean_speakers == 1.5  # {M, F} and {F}


def test_corpus_stats_accepts_the_utterances_config(fixtures_dir):
    dialogues = corpus_stats(load_reference("iemocap", fixtures_dir, variant="dialogxl"))
    utterances = corpus_stats(load_reference("iemocap", fixtures_dir, variant="dialogxl", config="utterances"))
    assert dialogues == utterances
    assert [s.unlabelled for s in dialogues] == [2, 1, 1]


def test_render_table_aligns_numbers_right():
    text = render_table(["name", "n"], [["a", 5], ["bbb", 12]])
    assert text.splitlines() == ["name   n", "----  --", "a      5", "bbb   12"]
    markdown = render_table(["name", "n"], [["a", 5], ["bbb", 12]], "markdown")
    assert markdown.splitlines() == ["| name |  n |", "| ---- | -: |", "| a    |  5 |", "| bbb  | 12 |"]


def test_render_stats_formats():
    stats = [split_stats("train", _toy())]
    table = render_stats(stats)
    assert table.splitlines()[0].split() == [
        "split", "dialogues", "utterances", "unlabelled", "turns/dialogue", "speakers/dialogue",
        "neutral", "happy", "sad", "angry", "excited", "frustrated",
    ]
    assert table.splitlines()[2].split() == ["train", "2", "4", "1", "2.00", "1.50", "2", "0", "0", "0", "0", "1"]
    assert render_stats(stats, "markdown").startswith("| split ")
    assert json.loads(render_stats(stats, "json"))[0]["label_counts"]["frustrated"] == 1


def test_benchmarks_command_lists_the_registry(capsys):
    assert main(["benchmarks"]) == 0
    out = capsys.readouterr().out
    assert "neutral, happy, sad, angry, excited, frustrated" in out
    assert "neu, hap, sad, ang, exc, fru" in out
    assert "compm (tsv_dialogues, train/validation/test)*" in out
    assert main(["benchmarks", "--format", "json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [e["name"] for e in entries] == ["meld", "emorynlp", "iemocap"]
    assert entries[1]["spellings"]["Joyful"] == "joyful"


def test_stats_command_on_fixture_files(fixtures_dir, capsys):
    assert main(["stats", "meld", "--data-dir", str(fixtures_dir), "--format", "markdown"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].replace(" ", "") == "|train|3|8|0|2.67|2.00|2|2|1|1|0|1|1|"


def test_stats_command_on_a_built_dataset_folder(fixtures_dir, tmp_path, capsys):
    """A folder laid out like a Hub repo (parquet + README configs) is read with ``load_dataset``."""
    data = load_reference("iemocap", fixtures_dir, variant="dialogxl")
    for split, dataset in data.items():
        dataset.to_parquet(tmp_path / "dialogues" / f"{split}-00000-of-00001.parquet")
    (tmp_path / "README.md").write_text(
        "---\nconfigs:\n- config_name: dialogues\n  data_files:\n"
        + "".join(f"  - split: {s}\n    path: dialogues/{s}-*\n" for s in data)
        + "---\n"
    )
    assert main(["stats", str(tmp_path), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["split"], r["dialogues"], r["unlabelled"]) for r in rows] == [
        ("train", 3, 2), ("validation", 1, 1), ("test", 2, 1)
    ]
    assert rows[0]["label_counts"]["frustrated"] == 2


def test_stats_command_user_errors(fixtures_dir, tmp_path, capsys):
    assert main(["stats", "meld"]) == 2
    assert "needs --data-dir" in capsys.readouterr().err
    assert main(["stats", "friends", "--data-dir", str(fixtures_dir)]) == 2
    assert "neither a dataset folder nor a benchmark" in capsys.readouterr().err
    assert main(["stats", "iemocap", "--data-dir", str(fixtures_dir), "--variant", "original"]) == 2
    assert "no variant 'original'" in capsys.readouterr().err
    assert main(["stats", str(tmp_path)]) == 2  # an empty folder is not a built dataset
    assert "not a built erc-synth dataset" in capsys.readouterr().err


def _console_script() -> str:
    script = Path(sys.executable).with_name("erc-synth")
    return str(script) if script.exists() else shutil.which("erc-synth") or pytest.skip("erc-synth not installed")


def test_console_script_exit_status(fixtures_dir):
    env = {**os.environ, "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"}
    ok = subprocess.run(
        [_console_script(), "stats", "emorynlp", "--data-dir", str(fixtures_dir), "--format", "json"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    assert [r["dialogues"] for r in json.loads(ok.stdout)] == [2, 3, 1]
    bad = subprocess.run(
        [_console_script(), "stats", "meld", "--data-dir", str(fixtures_dir / "meld" / "bad" / "unknown_label")],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert bad.returncode == 2
    assert "train_sent_emo.csv:3" in bad.stderr and "'happpy'" in bad.stderr
