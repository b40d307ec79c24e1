"""Few-shot exemplars: train-split dialogues only, drawn from the request seed, never stored as text.

The real-data folder here is written by the test in MELD's csv format, with words that mark each split, so
that a validation or test line reaching a prompt, or an exemplar line reaching a built file, is visible.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from helpers.fake_backend import FakeBackend

from erc_synth.cli import main as erc_synth
from erc_synth.dataset_scripts.core.errors import ErcSynthError
from erc_synth.dataset_scripts.core.registry import get_benchmark
from erc_synth.dataset_scripts.readers.loader import read_dialogues
from erc_synth.dataset_scripts.run_store import RunStore
from erc_synth.generation.engine import GenerationConfig, SettingError, generate
from erc_synth.generation.exemplars import load_pool
from erc_synth.preset import parse_preset

MELD = get_benchmark("meld")
FILES = {"train": "train_sent_emo.csv", "validation": "dev_sent_emo.csv", "test": "test_sent_emo.csv"}
HEADER = ["Sr No.", "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID", "Season",
          "Episode", "StartTime", "EndTime"]
SPEAKERS = ("Ross", "Rachel", "Monica", "Joey")


def _line(split: str, dialogue: int, turn: int) -> str:
    return f"{split}word{dialogue} spoken in turn number {turn} of this particular {split} scene"


def write_real_data(root: Path, dialogues: int = 6) -> Path:
    """A MELD-format folder: ``dialogues`` per split, 2 to 3 turns each, every line naming its split."""
    folder = root / "meld"
    folder.mkdir(parents=True)
    for split, name in FILES.items():
        with (folder / name).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(HEADER)
            row = 1
            for d in range(dialogues):
                for t in range(2 + d % 2):
                    writer.writerow([row, _line(split, d, t), SPEAKERS[(d + t) % 4], MELD.labels[(d + t) % 7],
                                     "neutral", d, t, 1, 1, "00:00:01,000", "00:00:02,000"])
                    row += 1
    return root


def _word_first(request, target) -> str:
    return "Ross (joy): A new line that nobody wrote before.\nRachel (sadness): Another new line of my own."


def _config(tmp_path: Path, real: Path, **overrides) -> GenerationConfig:
    settings = dict(benchmark="meld", num_dialogues=5, seed=7, out=tmp_path / "run", backend="fake", turns=(2, 3),
                    prompt_version="v2", label_format="word_first", few_shot=2, real_data=real)
    settings.update(overrides)
    return GenerationConfig(**settings)


def test_prompts_hold_train_exemplars_drawn_from_each_request_seed_and_never_other_splits(tmp_path: Path) -> None:
    real = write_real_data(tmp_path / "data")
    backend = FakeBackend(write=_word_first)
    assert generate(_config(tmp_path, real), backend=backend, progress=False).accepted == 5
    train = {d.dialogue_id: d for d in read_dialogues(MELD, real)["train"]}
    records = {r["seed"]: r for r in RunStore.open(tmp_path / "run").raw_records()}
    prompts = {request.messages[0]["content"] for request in backend.requests}
    assert len(prompts) == 5  # each request its own exemplars
    for request in backend.requests:
        prompt = request.messages[0]["content"]
        assert "validationword" not in prompt and "testword" not in prompt
        ids = records[request.seed]["exemplar_ids"]
        assert len(ids) == 2 and len(set(ids)) == 2 and set(ids) <= set(train)
        for dialogue_id in ids:  # each exemplar in the dialogue's own line format, with its labels
            dialogue = train[dialogue_id]
            for speaker, text, emotion in zip(dialogue.speakers, dialogue.utterances, dialogue.emotions,
                                              strict=True):
                assert f"{speaker} ({MELD.labels[emotion]}): {text}" in prompt
        shown = {d for d in train if train[d].utterances[0] in prompt}
        assert shown == set(ids)


def test_the_same_seed_gives_the_same_bytes_and_the_manifest_holds_only_ids_and_hashes(tmp_path: Path) -> None:
    real = write_real_data(tmp_path / "data")
    for name in ("a", "b"):
        generate(_config(tmp_path, real, out=tmp_path / name), backend=FakeBackend(write=_word_first), progress=False)
    assert (tmp_path / "a" / "records.jsonl").read_bytes() == (tmp_path / "b" / "records.jsonl").read_bytes()
    manifest = (tmp_path / "a" / "manifest.json").read_text()
    few_shot = json.loads(manifest)["settings"]["few_shot"]
    pool = load_pool(MELD, real, 2, (2, 3))
    assert few_shot["k"] == 2 and few_shot["split"] == "train" and few_shot["pool_sha256"] == pool.fingerprint()
    assert "trainword" not in manifest and "trainword" not in (tmp_path / "a" / "records.jsonl").read_text()


def _copy_or_not(request, target) -> str:
    """Half the requests copy the first exemplar line of their prompt (a model that memorises its examples)."""
    if request.seed % 2:
        return _distinct(request, target)
    copied = next(line for line in request.messages[0]["content"].splitlines() if "trainword" in line)
    return f"{copied}\nRachel (sadness): Seed {request.seed % 1000} adds a line of its own."


def _distinct(request, target) -> str:
    return (f"Ross (joy): Seed {request.seed % 1000} brings a line nobody wrote.\n"
            f"Rachel (sadness): And seed {request.seed % 997} brings one more.")


def test_no_exemplar_text_reaches_a_built_file_and_copies_of_real_lines_are_dropped(tmp_path: Path) -> None:
    real = write_real_data(tmp_path / "data")
    generate(_config(tmp_path, real, num_dialogues=12), backend=FakeBackend(write=_copy_or_not), progress=False)
    copies = sum(r.seed % 2 == 0 for r in RunStore.open(tmp_path / "run").accepted())
    assert 0 < copies < 12
    assert erc_synth(["build", str(tmp_path / "run"), "--out", str(tmp_path / "built"), "--real-data",
                      str(real)]) == 0
    report = json.loads((tmp_path / "built" / "build_report.json").read_text())
    gates = report["card"]["report"]["gates"]
    assert gates["contaminated"] == copies and "test and train splits" in gates["decontaminated_against"]
    built = [p for p in (tmp_path / "built").rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in built) and any(p.name == "README.md" for p in built)
    for path in [*built, tmp_path / "run" / "manifest.json"]:
        assert b"trainword" not in path.read_bytes(), path
    card = (tmp_path / "built" / "README.md").read_text()
    assert "each prompt showed 2 real dialogues of the benchmark's train split" in card
    assert load_pool(MELD, real, 2, (2, 3)).fingerprint() in card


def test_few_shot_without_real_data_or_below_zero_is_refused_in_one_line(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("ERC_SYNTH_REAL_DATA", raising=False)
    monkeypatch.delenv("ERC_SYNTH_SHARED_DATA", raising=False)
    base = ["generate", "--benchmark", "meld", "--num-dialogues", "2", "--out", str(tmp_path / "run")]
    assert erc_synth([*base, "--few-shot", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--few-shot 2" in err and "--real-data" in err and "train split" in err
    assert erc_synth([*base, "--few-shot", "-1"]) == 2
    assert "--few-shot must be an integer in [0, 64]" in capsys.readouterr().err
    assert erc_synth([*base, "--few-shot", "1", "--real-data", str(tmp_path / "nowhere")]) == 2
    assert "--real-data" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    with pytest.raises(SettingError, match="few_shot"):
        GenerationConfig(benchmark="meld", few_shot=1)


def test_a_preset_sets_few_shot_through_the_flags_rule(tmp_path: Path) -> None:
    data = {"backend": "transformers", "model": "embedded", "seed": 1, "few_shot": 2, "prompt_version": "v2",
            "label_format": "word_first", "datasets": [{"benchmark": "meld", "mode": "natural", "num_dialogues": 2}]}
    assert parse_preset(data, "p.yaml").generation["few_shot"] == 2
    with pytest.raises(ErcSynthError, match=r"p.yaml: field 'few_shot' must be an integer in \[0, 64\]"):
        parse_preset({**data, "few_shot": -1}, "p.yaml")
