"""The label filter: keep the synthetic dialogues whose labels a classifier of the real data supports (LAMBADA's).

Why whole dialogues: a dialogue is what the generator writes and what a classifier reads as context, so a
dialogue whose labels a real-data classifier does not support is dropped whole, and the generator's other
dialogues keep their flow. (The ``agree`` label policy is the utterance-level counterpart: it unlabels a disputed
turn and keeps it as context.) A dialogue's support is the mean probability the filter's judge gives its labelled
turns' LLM labels; a dialogue without a labelled turn has nothing supported and is dropped.

Why the filter's judge learns from half the real train split: the audit measures the kept labels against a judge
of the real data, and that agreement would rise because of the filter itself if both judges had learnt from the
same dialogues. The filter's ``train`` judge learns from half ``a`` of a seeded dialogue-level split
(``classifiers.data.train_half``) and the audit's ``train`` judge from half ``b``; an ``llm`` audit judge has learnt
from neither. A ``classifier:`` audit judge may have learnt from any of them, so it is refused.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from erc_synth.dataset_scripts.core.errors import ErcSynthError
from erc_synth.dataset_scripts.core.registry import UNLABELLED

from .auditing import AuditResult
from .judges import JudgeSettings

FILTER_HALF, AUDIT_HALF = "a", "b"
UNIT = "dialogue"


def dialogue_support(llm_labels: list[int], probabilities: np.ndarray) -> float | None:
    """Mean judge probability of the dialogue's LLM labels over its labelled turns (None: no labelled turn)."""
    supported = [float(probabilities[turn, label]) for turn, label in enumerate(llm_labels) if label != UNLABELLED]
    return float(np.mean(supported)) if supported else None


def filter_settings(judge_settings: JudgeSettings | None) -> JudgeSettings:
    """The filter's ``train`` judge: the audit's settings on half ``a`` of the real train split."""
    return replace(judge_settings or JudgeSettings(), train_half=FILTER_HALF)


def independent_audit_settings(audit_judge: str | None, judge_settings: JudgeSettings | None) -> JudgeSettings | None:
    """The audit's judge settings once a filter ran, or a one-line refusal when independence cannot be shown."""
    if audit_judge is None or audit_judge.startswith("llm:"):
        return judge_settings
    if audit_judge == "train":
        settings = judge_settings or JudgeSettings()
        if settings.train_half not in (None, AUDIT_HALF):
            raise ErcSynthError(f"label filter: the audit's train judge is set to learn from half "
                                f"{settings.train_half!r}, the filter's own half; it must use half {AUDIT_HALF!r}")
        return replace(settings, train_half=AUDIT_HALF)
    raise ErcSynthError(f"label filter: audit judge {audit_judge!r} is not independent of the filter's judge (it "
                        f"may have learnt from the same real train dialogues); audit with 'train' (it then learns "
                        f"from the other half of the real train split) or an llm judge")


def filter_dialogues(dialogues: Any, result: AuditResult, min_confidence: float) -> tuple[Any, dict[str, Any]]:
    """The dialogues whose support is at least ``min_confidence``, and the filter's report for the card."""
    from datasets import DatasetDict

    if not 0.0 <= min_confidence <= 1.0:
        raise ErcSynthError(f"label filter: min_confidence must be in [0, 1], got {min_confidence!r}")
    kept_splits, dropped, supports = {}, {}, []
    for split, dataset in dialogues.items():
        if result.dialogue_ids.get(split) != list(dataset["dialogue_id"]):
            raise ErcSynthError(f"label filter: split {split!r} is not the set its judge labelled")
        keep = []
        for index, (labels, probabilities) in enumerate(zip(dataset["emotions"], result.judge_probabilities[split],
                                                            strict=True)):
            support = dialogue_support(list(labels), probabilities)
            supports.append(support if support is not None else 0.0)
            if support is not None and support >= min_confidence:
                keep.append(index)
        kept_splits[split] = dataset.select(keep)
        dropped[split] = len(dataset) - len(keep)
    generated = sum(len(d) for d in dialogues.values())
    kept = sum(len(d) for d in kept_splits.values())
    report = {
        "unit": UNIT, "min_confidence": min_confidence, "generated": generated, "kept": kept,
        "kept_share": round(kept / generated, 4) if generated else None,
        "overgeneration_factor": round(generated / kept, 4) if kept else None,
        "dropped_by_split": dropped,
        "support_median": round(float(np.median(supports)), 4) if supports else None,
        "judge": (result.summary.get("judge") or {}).get("id"),
        "judge_weighted_f1": (result.summary.get("judge") or {}).get("weighted_f1"),
        "judge_data": f"half {FILTER_HALF} of the real train split (seeded, dialogue-level); the audit's train "
                      f"judge learns from half {AUDIT_HALF}",
    }
    return DatasetDict(kept_splits), report
