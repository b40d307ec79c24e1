"""The label filter: LAMBADA's classifier filter over whole dialogues, its judge independent of the audit's.

The known-answer test builds a RUN_DIR (in a temporary folder, never committed) from real MELD test dialogues,
half of them with every label moved to another emotion, and checks that a real MiniLM judge trained on half the
real train split drops clearly more of the relabelled dialogues than of the untouched ones.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.builder_support import make_run_dir, settings_for
from helpers.torch_threads import one_thread  # noqa: F401

from erc_synth.classifiers.audit import AuditResult, JudgeSettings, filter_dialogues, independent_audit_settings
from erc_synth.classifiers.data import train_half
from erc_synth.dataset_scripts.core.errors import ErcSynthError
from erc_synth.dataset_scripts.core.registry import get_benchmark
from erc_synth.dataset_scripts.run_store import RunStore
from erc_synth.dataset_scripts.schema import dialogues_dataset

MELD = get_benchmark("meld")
FIXTURES = Path(__file__).parent / "fixtures"
TINY_JUDGE = JudgeSettings(limit_train=300, limit_validation=10, limit_test=20, max_steps=120, batch_size=32,
                           learning_rate=3e-4, context="none", max_length=24)


def _three_dialogues():
    return dialogues_dataset(MELD, [
        {"dialogue_id": "a", "speakers": ["R", "M"], "utterances": ["Hi.", "Oh no!"], "emotions": [0, 4]},
        {"dialogue_id": "b", "speakers": ["J", "P"], "utterances": ["Food?", "No."], "emotions": [2, -1]},
        {"dialogue_id": "c", "speakers": ["J", "P"], "utterances": ["Hm.", "Ok."], "emotions": [-1, -1]},
    ])


def _result(probabilities: list[np.ndarray], data) -> AuditResult:
    return AuditResult(summary={"judge": {"id": "train", "weighted_f1": 0.5}}, label_names=MELD.labels,
                       dialogue_ids={"train": list(data["dialogue_id"])},
                       llm_labels={"train": [list(e) for e in data["emotions"]]},
                       judge_labels={"train": [list(p.argmax(axis=1)) for p in probabilities]},
                       judge_probabilities={"train": probabilities},
                       confusion=np.zeros((MELD.num_labels, MELD.num_labels), dtype=int))


def test_dialogues_are_kept_by_the_mean_support_of_their_labelled_turns():
    data = _three_dialogues()
    rows = np.full((2, MELD.num_labels), 0.0)
    a = rows.copy()
    a[0, 0], a[1, 4] = 0.9, 0.3  # support (0.9 + 0.3) / 2 = 0.6
    b = rows.copy()
    b[0, 2], b[1, 0] = 0.4, 1.0  # only turn 0 is labelled: support 0.4
    kept, report = filter_dialogues({"train": data}, _result([a, b, rows.copy()], data), 0.5)
    assert kept["train"]["dialogue_id"] == ["a"]  # c has no labelled turn: nothing supported, dropped
    assert (report["generated"], report["kept"], report["kept_share"]) == (3, 1, 0.3333)
    assert report["overgeneration_factor"] == 3.0 and report["dropped_by_split"] == {"train": 2}
    assert report["support_median"] == 0.4 and report["min_confidence"] == 0.5
    assert filter_dialogues({"train": data}, _result([a, b, rows.copy()], data), 0.4)[0]["train"][
        "dialogue_id"] == ["a", "b"]


def test_the_audit_judge_learns_from_the_other_half_or_is_refused():
    assert independent_audit_settings("train", None).train_half == "b"
    assert independent_audit_settings("train", TINY_JUDGE).max_steps == 120
    assert independent_audit_settings(None, TINY_JUDGE) is TINY_JUDGE
    assert independent_audit_settings("llm:embedded", TINY_JUDGE) is TINY_JUDGE
    with pytest.raises(ErcSynthError, match="audit judge 'classifier:/x' is not independent"):
        independent_audit_settings("classifier:/x", None)
    with pytest.raises(ErcSynthError, match="half 'a', the filter's own half"):
        independent_audit_settings("train", JudgeSettings(train_half="a"))


def test_the_two_halves_are_disjoint_seeded_and_cover_the_train_split():
    from datasets import DatasetDict

    rows = [{"dialogue_id": f"d{i}", "speakers": ["A"], "utterances": ["x"], "emotions": [0]} for i in range(11)]
    data = DatasetDict(train=dialogues_dataset(MELD, rows), test=dialogues_dataset(MELD, rows[:2]))
    a, b = (set(train_half(data, half, 0)["train"]["dialogue_id"]) for half in ("a", "b"))
    assert len(a) == 6 and len(b) == 5 and not a & b and a | b == {f"d{i}" for i in range(11)}
    assert set(train_half(data, "a", 1)["train"]["dialogue_id"]) != a
    assert train_half(data, "b", 0)["test"]["dialogue_id"] == ["d0", "d1"]


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "erc_synth.cli", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd)


@pytest.mark.parametrize("value, fragment", [
    ("1.5", "--label-filter: '1.5': must be in [0, 1]"),
    ("high", "--label-filter: 'high': expected a number in [0, 1]"),
])
def test_a_bad_filter_value_names_the_flag_and_exits_2(value, fragment, tmp_path):
    run = make_run_dir(tmp_path / "run", mode="natural", n=12)
    result = _cli("build", str(run), "--out", str(tmp_path / "out"), "--label-filter", value)
    assert result.returncode == 2
    assert fragment in result.stderr.strip().splitlines()[-1]  # after argparse's usage lines
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize("flags, fragment", [
    ([], "--label-filter trains its judge on the real benchmark: it needs --real-data"),
    (["--real-data", str(FIXTURES), "--no-decontaminate", "--audit", "classifier:/x"],
     "audit judge 'classifier:/x' is not independent"),
])
def test_a_filter_that_cannot_run_is_refused_in_one_line_before_any_training(flags, fragment, tmp_path):
    run = make_run_dir(tmp_path / "run", mode="natural", n=12)
    result = _cli("build", str(run), "--out", str(tmp_path / "out"), "--label-filter", "0.3", *flags)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and fragment in result.stderr
    assert not (tmp_path / "out").exists()


def _relabelled_run(path: Path, shared_data: Path, count: int) -> tuple[Path, set[str]]:
    """A RUN_DIR of real MELD test dialogues; every other one has each label moved to another emotion."""
    from erc_synth.classifiers.data import load_real

    test = load_real(MELD, shared_data)["test"]
    chosen = [row for row in test if sum(1 for e in row["emotions"] if e >= 0) >= 3][:count]
    store = RunStore.create_or_open(path, settings_for("meld", "natural", count, seed=3),
                                    {"model_id": "test", "model_sha": "x", "erc_synth_version": "0"})
    flipped = set()
    records = []
    for index, row in enumerate(chosen):
        emotions = list(row["emotions"])
        if index % 2:
            emotions = [(e + 3) % MELD.num_labels if e >= 0 else e for e in emotions]
            flipped.add(index)
        records.append({"index": index, "seed": index, "target_emotion": None, "attempt": 0, "status": "accepted",
                        "reason": None, "detail": None, "raw_text": "{...}", "speakers": list(row["speakers"]),
                        "utterances": list(row["utterances"]), "emotions": emotions})
    store.append(records)
    store.close()
    return path, flipped


@pytest.mark.slow
@pytest.mark.needs_shared_data
@pytest.mark.timeout(1800)
def test_the_filter_drops_relabelled_dialogues_far_more_often(shared_data: Path, tmp_path: Path):
    from erc_synth.hub_cards.folder import build_folder
    from erc_synth.label_auditor import ClassifierAuditor

    run, flipped = _relabelled_run(tmp_path / "run", shared_data, 80)
    out = tmp_path / "built"
    report = build_folder(run, out, real_data_dir=shared_data, decontaminate=False, ratios=(1.0, 0.0, 0.0),
                          audit="train", audit_cache_dir=tmp_path / "judges", judge_settings=TINY_JUDGE,
                          auditor=ClassifierAuditor(), label_filter=0.25,
                          bad_line_gates={"gibberish_threshold": None, "bare_label_gate": False,
                                          "max_bad_line_share": None})
    summary = report.build["label_filter"]
    kept_ids = _kept_ids(out)
    kept_index = {int(i.rsplit("-", 1)[-1]) for i in kept_ids}
    untouched = {i for i in range(80) if i not in flipped}
    dropped_flipped = 1 - len(kept_index & flipped) / len(flipped)
    dropped_untouched = 1 - len(kept_index & untouched) / len(untouched)
    assert dropped_flipped > dropped_untouched + 0.3, (dropped_flipped, dropped_untouched)
    assert summary["generated"] == 80  # the bad-line gate is off: every dialogue reaches the filter
    assert summary["kept"] == len(kept_ids) == sum(report.build["split_sizes"].values())
    stored = json.loads((out / "build_report.json").read_text())
    assert stored["card"]["report"]["label_filter"] == summary
    audit = json.loads((out / "audit" / "audit.json").read_text())
    assert audit["judge"]["settings"]["train_half"] == "b"
    card = (out / "README.md").read_text()
    assert "Label filter (LAMBADA-style, by dialogue)" in card and f"kept the {summary['kept']} of" in card


def _kept_ids(folder: Path) -> list[str]:
    from erc_synth.dataset_scripts.built_files import load_built_config

    return [i for split in load_built_config(folder, "dialogues").values() for i in split["dialogue_id"]]


@pytest.mark.parametrize("value, fragment", [
    ("0.3", "build.label_filter trains its judge on the real benchmark"),
    ("1.5", "field 'build.label_filter' must be a number in [0, 1], or none to turn the gate off, got 1.5"),
    ("'high'", "field 'build.label_filter' has value 'high'"),
])
def test_a_presets_filter_is_checked_before_any_generation(value, fragment, tmp_path, monkeypatch):
    monkeypatch.delenv("ERC_SYNTH_REAL_DATA", raising=False)
    preset = tmp_path / "mine.yaml"
    preset.write_text("backend: transformers\nmodel: embedded\nseed: 1\n"
                      f"build: {{label_filter: {value}}}\n"
                      "datasets:\n  - {benchmark: meld, mode: natural, num_dialogues: 1}\n")
    # Run where no real data folder is found by looking beside the working folder.
    result = _cli("run", "--preset", str(preset), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and fragment in result.stderr
    assert not (tmp_path / "out" / "runs").exists()  # nothing was generated
