"""Label-fidelity statistics: pure functions of label sequences, no model and no I/O.

Why these numbers. Raw agreement between the LLM's labels and a judge's flatters a set whose labels are mostly
the majority class, so Cohen's kappa reports agreement beyond what the two label marginals give by chance; the
chance level is reported next to it so a reader sees both. The positional statistics catch the failure that
agreement cannot name: labels that encode the turn position (``(0) (1) (2) ...``). Spearman's rho between turn
index and label id is +1 for a dialogue whose labels rise with the turn; the same statistic on the real
benchmark says how much of that real conversations show (label ids are arbitrary, so a real set sits near 0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from erc_synth.dataset_scripts.core.registry import UNLABELLED

#: A dialogue needs this many labelled turns before its positional statistics mean anything.
MIN_POSITIONAL_TURNS = 3


def _finite(value: float) -> float | None:
    """``None`` for NaN (an undefined statistic), so JSON files never carry NaN."""
    return None if value is None or math.isnan(value) else float(value)


def labelled_pairs(llm: Sequence[int], judge: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The (LLM, judge) label pairs of the utterances the LLM labelled; unlabelled context is left out."""
    llm_array, judge_array = np.asarray(llm, dtype=int), np.asarray(judge, dtype=int)
    if llm_array.shape != judge_array.shape:
        raise ValueError(f"{llm_array.shape[0]} LLM labels but {judge_array.shape[0]} judge labels")
    keep = llm_array != UNLABELLED
    return llm_array[keep], judge_array[keep]


def chance_agreement(llm: Sequence[int], judge: Sequence[int], num_labels: int) -> float | None:
    """Agreement expected by chance from the two marginals: sum over labels of p_llm(k) * p_judge(k)."""
    a, b = np.asarray(llm, dtype=int), np.asarray(judge, dtype=int)
    if a.size == 0:
        return None
    p_a = np.bincount(a, minlength=num_labels) / a.size
    p_b = np.bincount(b, minlength=num_labels) / b.size
    return float(np.dot(p_a, p_b))


def agreement_statistics(llm: Sequence[int], judge: Sequence[int], label_names: Sequence[str]) -> dict:
    """``agreement``, ``kappa``, ``chance_agreement`` and ``per_label`` of the LLM's labels, judge as reference.

    Kappa is scikit-learn's ``cohen_kappa_score``; it is ``None`` when undefined (both raters used one and the
    same label, so chance agreement is 1). ``per_label`` gives precision, recall and F1 of the LLM's labels
    against the judge's, and the judge's support of each label.
    """
    from sklearn.metrics import cohen_kappa_score, precision_recall_fscore_support

    a, b = labelled_pairs(llm, judge)
    labels = list(range(len(label_names)))
    chance = chance_agreement(a, b, len(labels))
    if a.size == 0:
        empty = {"precision": None, "recall": None, "f1": None, "support": 0}
        return {"num_utterances": 0, "agreement": None, "kappa": None, "chance_agreement": None,
                "per_label": {name: dict(empty) for name in label_names}}
    agreement = float(np.mean(a == b))
    kappa = None if chance is not None and chance >= 1.0 else _finite(cohen_kappa_score(a, b, labels=labels))
    precision, recall, f1, support = precision_recall_fscore_support(b, a, labels=labels, zero_division=0)
    per_label = {name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                        "support": int(support[i])} for i, name in enumerate(label_names)}
    return {"num_utterances": int(a.size), "agreement": agreement, "kappa": kappa, "chance_agreement": chance,
            "per_label": per_label}


def _labelled_turns(emotions: Sequence[int]) -> tuple[list[int], list[int]]:
    turns = [t for t, e in enumerate(emotions) if e != UNLABELLED]
    return turns, [int(emotions[t]) for t in turns]


def dialogue_spearman(emotions: Sequence[int]) -> float | None:
    """Spearman's rho between turn index and label id over a dialogue's labelled turns.

    ``None`` (left out of the mean) for fewer than ``MIN_POSITIONAL_TURNS`` labelled turns or one label
    throughout: rho is undefined for a constant sequence, and counting such dialogues as 0 would pull every
    set towards 0 by how often its dialogues stay on one emotion rather than by how labels follow position.
    """
    from scipy.stats import spearmanr

    turns, labels = _labelled_turns(emotions)
    if len(turns) < MIN_POSITIONAL_TURNS or len(set(labels)) < 2:
        return None
    return _finite(spearmanr(turns, labels).statistic)


def strictly_increasing(emotions: Sequence[int]) -> bool | None:
    """Whether the labelled turns' label ids strictly increase; ``None`` below ``MIN_POSITIONAL_TURNS``."""
    _, labels = _labelled_turns(emotions)
    if len(labels) < MIN_POSITIONAL_TURNS:
        return None
    return all(b > a for a, b in pairwise(labels))


def positional_statistics(dialogues: Sequence[Sequence[int]]) -> dict:
    """``position_label_spearman`` (mean rho over dialogues where defined) and ``monotonic_share``.

    ``monotonic_share`` is the share of dialogues with ``MIN_POSITIONAL_TURNS`` or more labelled turns whose
    labels strictly increase. The counts of dialogues behind each number are returned too.
    """
    rhos = [rho for rho in (dialogue_spearman(d) for d in dialogues) if rho is not None]
    monotonic = [flag for flag in (strictly_increasing(d) for d in dialogues) if flag is not None]
    return {
        "position_label_spearman": float(np.mean(rhos)) if rhos else None,
        "position_label_spearman_dialogues": len(rhos),
        "monotonic_share": float(np.mean(monotonic)) if monotonic else None,
        "monotonic_share_dialogues": len(monotonic),
    }
