"""Likely label errors: which synthetic labels the judge most confidently disagrees with, found by cleanlab.

Why cleanlab: confident learning (Northcutt et al. 2021) is the studied method for exactly this question, given
out-of-sample predicted probabilities; the judge never saw the synthetic set, so its probabilities are out of
sample. ``find_label_issues`` decides *which* labels are suspect (per-class thresholds from the judge's own
confidence, not one global cut); they are then ranked by the judge's confidence in a label other than the
given one, the number a reader can check by eye. ``health_summary`` gives cleanlab's overall label health.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np


def find_suspects(labels: np.ndarray, probabilities: np.ndarray) -> tuple[np.ndarray, float | None]:
    """Indices of suspect labels, most suspect first, and cleanlab's overall label health score.

    ``labels`` are the LLM's label ids (labelled utterances only); ``probabilities`` the judge's, one row each.
    With fewer than two distinct labels, or fewer utterances than labels, cleanlab cannot estimate the per-class
    thresholds it needs and nothing is flagged (the health score is then ``None``).
    """
    from cleanlab.dataset import health_summary
    from cleanlab.filter import find_label_issues

    labels = np.asarray(labels, dtype=int)
    probabilities = np.asarray(probabilities, dtype=float)
    if len(np.unique(labels)) < 2 or len(labels) < probabilities.shape[1]:
        return np.zeros(0, dtype=int), None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cleanlab warns about classes absent from ``labels``: expected here
        flagged = np.flatnonzero(find_label_issues(labels, probabilities, n_jobs=1))
        health = health_summary(labels, probabilities, verbose=False)["overall_label_health_score"]
    other = probabilities.copy()
    other[np.arange(len(labels)), labels] = -1.0
    confidence_other = other.max(axis=1)
    order = np.argsort(-confidence_other[flagged], kind="stable")
    return flagged[order], float(health)


def suspect_examples(indices: Sequence[int], rows: Sequence[dict], probabilities: np.ndarray,
                     label_names: Sequence[str], top: int) -> list[dict]:
    """The ``top`` most suspect utterances as readable records (text, both labels, the judge's confidences)."""
    examples = []
    for index in list(indices)[:top]:
        row = rows[index]
        given = int(row["llm_label"])
        other = probabilities[index].copy()
        other[given] = -1.0
        judge_label = int(other.argmax())
        examples.append({
            "split": row["split"], "dialogue_id": row["dialogue_id"], "turn": row["turn"],
            "speaker": row["speaker"], "utterance": row["utterance"],
            "llm_label": label_names[given], "judge_label": label_names[judge_label],
            "judge_confidence": round(float(probabilities[index][judge_label]), 4),
            "judge_confidence_in_llm_label": round(float(probabilities[index][given]), 4),
        })
    return examples
