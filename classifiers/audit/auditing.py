"""``audit_dataset``: one judge labels every utterance, and the LLM's labels are measured against its labels.

The stages are plain functions of typed values: resolve the judge, get its probabilities, compare labels
(:mod:`.statistics`), rank suspects (:mod:`.suspects`). The real benchmark's test split is read only for the
positional statistics' reference values (``..._real``) and, for the ``train`` judge, to train it; the audited
set never influences the judge.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from erc_synth.dataset_scripts.core.errors import ErcSynthError
from erc_synth.dataset_scripts.core.registry import UNLABELLED, Benchmark

from ..settings import check_seed
from .judges import JUDGE_SPECS, JudgeError, JudgeSettings, load_classifier_judge, train_judge
from .statistics import agreement_statistics, positional_statistics
from .suspects import find_suspects, suspect_examples

#: How many suspect utterances audit.json lists (all of them are counted).
TOP_SUSPECTS = 20


@dataclass
class AuditResult:
    """What an audit found. ``summary`` is audit.json; the rest is per utterance, aligned with the dialogues.

    ``judge_labels[split][i][t]`` and ``judge_probabilities[split][i][t]`` are the judge's label and probability
    row for turn ``t`` of dialogue ``i`` of ``split``; ``dialogue_ids`` records which dialogues those are, so
    :func:`~.policy.apply_label_policy` can refuse a set that is not the audited one. ``confusion`` counts
    (LLM label, judge label) pairs: rows are the LLM's labels.
    """

    summary: dict[str, Any]
    label_names: tuple[str, ...]
    dialogue_ids: dict[str, list[str]]
    llm_labels: dict[str, list[list[int]]]
    judge_labels: dict[str, list[list[int]]]
    judge_probabilities: dict[str, list[np.ndarray]]
    confusion: np.ndarray = field(repr=False)
    #: Every suspect label as ``(split, dialogue_id, turn)``, most suspect first (``summary`` lists only the top).
    suspect_keys: list[tuple[str, str, int]] = field(default_factory=list)


def _judge_labels(probabilities: np.ndarray) -> list[int]:
    """The judge's label per turn; ``UNLABELLED`` where it gave no answer (an all-zero row, e.g. an llm judge
    whose every attempt was rejected): never a guessed label."""
    labels = probabilities.argmax(axis=1).astype(int)
    labels[probabilities.sum(axis=1) <= 0] = UNLABELLED
    return labels.tolist()


def resolve_judge(spec: str, benchmark: Benchmark, *, real_data: Path | None, seed: int, cache_dir: Path | None,
                  judge_settings: JudgeSettings | None = None):
    """Parse a judge spec (``train``, ``classifier:...``, ``llm:...``) into a ready judge."""
    kind, _, value = spec.partition(":")
    if kind == "train" and not value:
        return train_judge(benchmark, real_data, settings=judge_settings, seed=seed, cache_dir=cache_dir)
    if kind == "classifier" and value:
        return load_classifier_judge(value, benchmark, spec=spec)
    if kind == "llm" and value:
        from .llm_judge import load_llm_judge

        return load_llm_judge(spec, benchmark, seed=seed, cache_dir=cache_dir)
    raise JudgeError(f"unknown judge {spec!r}; use {JUDGE_SPECS}")


def _real_positional(benchmark: Benchmark, real_data: Path | None, variant: str | None) -> dict[str, Any]:
    if real_data is None:
        return {"position_label_spearman": None, "monotonic_share": None}
    from erc_synth.classifiers.data import load_real

    real = load_real(benchmark, real_data, variant)
    if "test" not in real:
        raise ErcSynthError(f"real data {real_data}: no test split for the positional reference statistics")
    return positional_statistics(real["test"]["emotions"])


def audit_dataset(dialogues: Mapping[str, Any], benchmark: Benchmark, judge: str, *, real_data: Path | None,
                  seed: int = 0, cache_dir: Path | None = None, judge_settings: JudgeSettings | None = None,
                  source: str | None = None, top_suspects: int = TOP_SUSPECTS) -> AuditResult:
    """Audit every split of ``dialogues`` (a DatasetDict in the dialogues schema with ``benchmark``'s labels).

    ``judge`` is ``train``, ``classifier:PATH_OR_HUB_ID`` or ``llm:...`` (see :mod:`.llm_judge`); ``real_data`` is the
    folder of the benchmark's original files (needed by ``train``; without it the ``..._real`` statistics are
    ``None``). ``judge_settings`` change the ``train`` judge (tests and benchmarks use small ones). ``cache_dir``
    is where judges are cached (default ``${XDG_CACHE_HOME:-~/.cache}/erc-synth/judges``).
    """
    from erc_synth.classifiers.data import check_dialogues

    check_seed(seed)
    check_dialogues(dialogues, benchmark, source or "the audited dataset")
    if not any(label >= 0 for dataset in dialogues.values() for labels in dataset["emotions"] for label in labels):
        raise ErcSynthError(f"{source or 'the audited dataset'}: no labelled utterance to audit")
    resolved = resolve_judge(judge, benchmark, real_data=real_data, seed=seed, cache_dir=cache_dir,
                             judge_settings=judge_settings)
    probabilities = resolved.predict(dialogues)
    label_names = tuple(benchmark.labels)

    rows: list[dict] = []  # one per labelled utterance, for the suspects' report
    llm_flat, judge_flat, probability_rows = [], [], []
    llm_labels, judge_labels, dialogue_ids = {}, {}, {}
    for split, dataset in dialogues.items():
        llm_labels[split] = [list(map(int, e)) for e in dataset["emotions"]]
        judge_labels[split] = [_judge_labels(p) for p in probabilities[split]]
        dialogue_ids[split] = list(dataset["dialogue_id"])
        for i, (dialogue_id, speakers, texts) in enumerate(zip(dataset["dialogue_id"], dataset["speakers"],
                                                               dataset["utterances"], strict=True)):
            for turn, label in enumerate(llm_labels[split][i]):
                if label < 0 or judge_labels[split][i][turn] < 0:
                    continue
                rows.append({"split": split, "dialogue_id": dialogue_id, "turn": turn, "speaker": speakers[turn],
                             "utterance": texts[turn], "llm_label": label})
                llm_flat.append(label)
                judge_flat.append(judge_labels[split][i][turn])
                probability_rows.append(probabilities[split][i][turn])

    llm_array, judge_array = np.asarray(llm_flat, dtype=int), np.asarray(judge_flat, dtype=int)
    probability_matrix = (np.vstack(probability_rows) if probability_rows
                          else np.zeros((0, len(label_names)), dtype=np.float32))
    confusion = np.zeros((len(label_names), len(label_names)), dtype=int)
    np.add.at(confusion, (llm_array, judge_array), 1)

    agreement = agreement_statistics(llm_array, judge_array, label_names)
    synthetic = positional_statistics([e for split in llm_labels.values() for e in split])
    reference = _real_positional(benchmark, real_data, judge_settings.variant if judge_settings else None)
    flagged, health = find_suspects(llm_array, probability_matrix)
    summary = {
        "dataset": source,
        "benchmark": benchmark.name,
        "splits": {split: int(sum(1 for e in labels for x in e if x >= 0)) for split, labels in llm_labels.items()},
        "num_utterances": agreement["num_utterances"],
        "judge_unknown": sum(1 for split in llm_labels for i, labels in enumerate(llm_labels[split])
                             for t, label in enumerate(labels) if label >= 0 and judge_labels[split][i][t] < 0),
        "agreement": agreement["agreement"],
        "kappa": agreement["kappa"],
        "chance_agreement": agreement["chance_agreement"],
        "per_label": agreement["per_label"],
        "judge": resolved.describe(),
        "position_label_spearman": synthetic["position_label_spearman"],
        "position_label_spearman_real": reference["position_label_spearman"],
        "monotonic_share": synthetic["monotonic_share"],
        "monotonic_share_real": reference["monotonic_share"],
        "positional_dialogues": {"position_label_spearman": synthetic["position_label_spearman_dialogues"],
                                 "monotonic_share": synthetic["monotonic_share_dialogues"]},
        "suspect_utterances": {
            "count": len(flagged),
            "method": "cleanlab.filter.find_label_issues over the judge's probabilities, ranked by the judge's "
                      "confidence in another label",
            "label_health_score": health,
            "top": suspect_examples(flagged, rows, probability_matrix, label_names, top_suspects),
        },
        "seed": seed,
    }
    return AuditResult(summary=summary, label_names=label_names, dialogue_ids=dialogue_ids, llm_labels=llm_labels,
                       judge_labels=judge_labels, judge_probabilities=probabilities, confusion=confusion,
                       suspect_keys=[(rows[i]["split"], rows[i]["dialogue_id"], int(rows[i]["turn"])) for i in flagged])
