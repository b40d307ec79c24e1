"""The label-fidelity audit end to end, with a real MiniLM judge trained briefly on the real MELD train split.

The known-answer test: the real test dialogues with their true labels must agree with the judge clearly more
(Cohen's kappa) than the same dialogues with each dialogue's labels shuffled among its own turns. The shuffle
keeps every label count, so only the label-to-utterance link differs between the two audits.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.torch_threads import one_thread  # noqa: F401

from erc_synth.classifiers.audit import (
    AuditResult,
    JudgeError,
    JudgeSettings,
    apply_label_policy,
    audit_dataset,
    write_audit,
)
from erc_synth.dataset_scripts.core.errors import ErcSynthError
from erc_synth.dataset_scripts.core.registry import UNLABELLED, get_benchmark
from erc_synth.dataset_scripts.schema import dialogues_dataset

MELD = get_benchmark("meld")
#: A judge small enough for a test: the first 300 train dialogues, the utterance alone (no context), 120 steps.
TINY_JUDGE = JudgeSettings(limit_train=300, limit_validation=10, limit_test=20, max_steps=120, batch_size=32,
                           learning_rate=3e-4, context="none", max_length=24)
#: Test dialogues audited (the first N of the real test split).
AUDITED_DIALOGUES = 80
#: kappa(true labels) - kappa(shuffled labels), at least. Measured with TINY_JUDGE: 0.276 - 0.040 = 0.236.
KAPPA_MARGIN = 0.15


def _shuffled_within_dialogues(dataset, seed: int = 0):
    def shuffle(row: dict, index: int) -> dict:
        emotions = list(row["emotions"])
        random.Random(seed * 100_003 + index).shuffle(emotions)
        return {"emotions": emotions}

    return dataset.map(shuffle, with_indices=True, load_from_cache_file=False)


@pytest.fixture(scope="module")
def judge_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("judges")


@pytest.fixture(scope="module")
def real_test(shared_data: Path):
    from datasets import DatasetDict

    from erc_synth.classifiers.data import load_real

    real = load_real(MELD, shared_data)
    return DatasetDict({"test": real["test"].select(range(AUDITED_DIALOGUES))})


@pytest.fixture(scope="module")
def true_audit(real_test, shared_data: Path, judge_cache: Path) -> AuditResult:
    return audit_dataset(real_test, MELD, "train", real_data=shared_data, cache_dir=judge_cache,
                         judge_settings=TINY_JUDGE, source="meld test (true labels)")


@pytest.mark.slow
@pytest.mark.needs_shared_data
@pytest.mark.timeout(1800)  # the first test also trains the module's judge; a busy CPU can take minutes
def test_true_labels_agree_with_the_judge_more_than_labels_shuffled_within_dialogues(
    true_audit: AuditResult, real_test, shared_data: Path, judge_cache: Path
) -> None:
    shuffled = {"test": _shuffled_within_dialogues(real_test["test"])}
    assert [sorted(e) for e in shuffled["test"]["emotions"]] == [sorted(e) for e in real_test["test"]["emotions"]]
    shuffled_audit = audit_dataset(shuffled, MELD, "train", real_data=shared_data, cache_dir=judge_cache,
                                   judge_settings=TINY_JUDGE, source="meld test (shuffled labels)")
    true_kappa, shuffled_kappa = true_audit.summary["kappa"], shuffled_audit.summary["kappa"]
    assert true_kappa - shuffled_kappa >= KAPPA_MARGIN, (true_kappa, shuffled_kappa)
    # Same judge, same utterances: the judge's labels are identical, only the audited labels moved.
    assert shuffled_audit.judge_labels == true_audit.judge_labels


@pytest.mark.slow
@pytest.mark.needs_shared_data
@pytest.mark.timeout(1800)  # the first test also trains the module's judge; a busy CPU can take minutes
def test_a_second_audit_reuses_the_cached_judge(true_audit: AuditResult, real_test, shared_data: Path,
                                                judge_cache: Path) -> None:
    assert true_audit.summary["judge"]["reused_cache"] is False
    cached = sorted(p.name for p in judge_cache.iterdir())
    weights = next(judge_cache.glob("*/model/model.safetensors"))
    written = weights.stat().st_mtime_ns
    again = audit_dataset(real_test, MELD, "train", real_data=shared_data, cache_dir=judge_cache,
                          judge_settings=TINY_JUDGE)
    assert again.summary["judge"]["reused_cache"] is True
    assert sorted(p.name for p in judge_cache.iterdir()) == cached
    assert weights.stat().st_mtime_ns == written
    assert again.summary["kappa"] == true_audit.summary["kappa"]


@pytest.mark.slow
@pytest.mark.needs_shared_data
@pytest.mark.timeout(1800)  # the first test also trains the module's judge; a busy CPU can take minutes
def test_audit_json_has_the_fixed_keys_and_the_real_benchmarks_positional_values(
    true_audit: AuditResult, tmp_path: Path
) -> None:
    paths = write_audit(true_audit, tmp_path)
    summary = json.loads(paths["json"].read_text())
    for key in ("num_utterances", "agreement", "kappa", "chance_agreement", "per_label", "judge",
                "position_label_spearman", "position_label_spearman_real", "monotonic_share",
                "monotonic_share_real", "suspect_utterances"):
        assert key in summary, key
    labelled = sum(1 for e in true_audit.llm_labels["test"] for x in e if x != UNLABELLED)
    assert summary["num_utterances"] == labelled
    assert set(summary["per_label"]) == set(MELD.labels)
    assert summary["judge"]["id"] == "train"
    assert 0.0 < summary["judge"]["weighted_f1"] <= 1.0
    # Real dialogues: labels do not climb with the turn, in the audited sample as in the whole test split.
    assert abs(summary["position_label_spearman"]) < 0.2
    assert abs(summary["position_label_spearman_real"]) < 0.2
    assert summary["monotonic_share_real"] < 0.05
    assert summary["suspect_utterances"]["count"] >= len(summary["suspect_utterances"]["top"])
    assert paths["confusion_matrix"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Cohen's kappa" in paths["markdown"].read_text()


@pytest.mark.slow
@pytest.mark.needs_shared_data
@pytest.mark.timeout(1800)  # the first test also trains the module's judge; a busy CPU can take minutes
def test_agree_policy_unlabels_exactly_where_the_real_judge_disagrees(true_audit: AuditResult, real_test) -> None:
    agreed = apply_label_policy(real_test, true_audit, "agree")
    disagreements = 0
    for llm, judge, kept in zip(real_test["test"]["emotions"], true_audit.judge_labels["test"],
                                agreed["test"]["emotions"], strict=True):
        for a, b, c in zip(llm, judge, kept, strict=True):
            assert c == (a if a == b else UNLABELLED)
            disagreements += a != b
    assert disagreements > 0
    assert agreed["test"].features == real_test["test"].features
    assert agreed["test"]["utterances"] == real_test["test"]["utterances"]


@pytest.mark.slow
@pytest.mark.needs_shared_data
@pytest.mark.timeout(1800)  # the first test also trains the module's judge; a busy CPU can take minutes
def test_the_cached_judge_folder_is_a_classifier_judge_with_the_same_labels(
    true_audit: AuditResult, real_test, judge_cache: Path
) -> None:
    model_dir = next(judge_cache.glob("*/model"))
    as_classifier = audit_dataset(real_test, MELD, f"classifier:{model_dir}", real_data=None)
    assert as_classifier.judge_labels == true_audit.judge_labels
    assert as_classifier.summary["position_label_spearman_real"] is None
    with pytest.raises(JudgeError, match="trained for benchmark meld, but the audit is for emorynlp"):
        audit_dataset({"test": _tiny_set("emorynlp")}, get_benchmark("emorynlp"), f"classifier:{model_dir}",
                      real_data=None)


@pytest.mark.slow
@pytest.mark.needs_shared_data
@pytest.mark.timeout(1800)  # the first test also trains the module's judge; a busy CPU can take minutes
def test_erc_synth_audit_on_a_built_folder(true_audit: AuditResult, real_test, judge_cache: Path,
                                           tmp_path: Path) -> None:
    folder = tmp_path / "meld-synth-natural"
    (folder / "data" / "dialogues").mkdir(parents=True)
    real_test["test"].to_parquet(str(folder / "data" / "dialogues" / "test-00000-of-00001.parquet"))
    model_dir = next(judge_cache.glob("*/model"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "erc_synth.cli", "audit", str(folder), "--benchmark", "meld",
                           "--judge", f"classifier:{model_dir}", "--out", str(tmp_path / "audit")],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "audit" / "audit.json").read_text())
    assert summary["kappa"] == pytest.approx(true_audit.summary["kappa"])
    assert summary["dataset"] == str(folder)
    assert "kappa" in done.stdout


# --- without a model: policies on a hand-made audit result ------------------------------------------------------


def _tiny_set(benchmark: str = "meld"):
    return dialogues_dataset(get_benchmark(benchmark), [
        {"dialogue_id": "a", "speakers": ["Ross", "Rachel", "Ross"], "utterances": ["Hi.", "Oh no!", "Great!"],
         "emotions": [0, 4, 1]},
        {"dialogue_id": "b", "speakers": ["Joey", "Monica"], "utterances": ["Food?", "No."], "emotions": [2, -1]},
    ])


def _hand_made_result(judge_labels: list[list[int]]) -> AuditResult:
    data = _tiny_set()
    probabilities = [np.eye(MELD.num_labels)[labels] for labels in judge_labels]
    return AuditResult(summary={}, label_names=MELD.labels, dialogue_ids={"test": list(data["dialogue_id"])},
                       llm_labels={"test": [list(e) for e in data["emotions"]]},
                       judge_labels={"test": judge_labels}, judge_probabilities={"test": probabilities},
                       confusion=np.zeros((MELD.num_labels, MELD.num_labels), dtype=int))


def test_label_policies_on_known_disagreements() -> None:
    data = {"test": _tiny_set()}
    result = _hand_made_result([[0, 3, 1], [5, 6]])  # disagrees at a/1 and b/0; b/1 is unlabelled context
    assert apply_label_policy(data, result, "llm") is data
    assert apply_label_policy(data, result, "agree")["test"]["emotions"] == [[0, -1, 1], [-1, -1]]
    assert apply_label_policy(data, result, "judge")["test"]["emotions"] == [[0, 3, 1], [5, -1]]


def test_a_policy_refuses_a_set_that_was_not_the_audited_one() -> None:
    result = _hand_made_result([[0, 3, 1], [5, 6]])
    other = _tiny_set().map(lambda row: {"dialogue_id": row["dialogue_id"] + "x"})
    with pytest.raises(ErcSynthError, match="not the set that was audited"):
        apply_label_policy({"test": other}, result, "agree")
    with pytest.raises(ErcSynthError, match="unknown label policy 'vote'"):
        apply_label_policy({"test": _tiny_set()}, result, "vote")


def test_a_set_with_other_label_names_is_refused_before_any_judge_runs() -> None:
    with pytest.raises(ErcSynthError, match="field 'emotions' has labels"):
        audit_dataset({"test": _tiny_set("emorynlp")}, MELD, "classifier:/no/such/judge", real_data=None)


def test_an_unknown_judge_kind_is_a_user_error() -> None:
    with pytest.raises(JudgeError, match="unknown judge 'oracle'"):
        audit_dataset({"test": _tiny_set()}, MELD, "oracle", real_data=None)


def test_the_train_judge_needs_the_real_data() -> None:
    with pytest.raises(JudgeError, match="ERC_SYNTH_REAL_DATA"):
        audit_dataset({"test": _tiny_set()}, MELD, "train", real_data=None)
