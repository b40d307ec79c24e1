"""The audit's statistics on hand-made label sequences whose values are worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from erc_synth.classifiers.audit.statistics import (
    agreement_statistics,
    chance_agreement,
    dialogue_spearman,
    positional_statistics,
    strictly_increasing,
)
from erc_synth.classifiers.audit.suspects import find_suspects

NAMES = ("calm", "upset")


def test_agreement_kappa_and_chance_from_the_two_marginals() -> None:
    # LLM 0 0 1 1 (plus one unlabelled turn), judge 0 1 1 1: agreement 3/4; marginals (1/2, 1/2) and (1/4, 3/4),
    # so chance = 1/2 * 1/4 + 1/2 * 3/4 = 1/2 and kappa = (3/4 - 1/2) / (1 - 1/2) = 1/2.
    stats = agreement_statistics([0, 0, 1, 1, -1], [0, 1, 1, 1, 0], NAMES)
    assert stats["num_utterances"] == 4
    assert stats["agreement"] == pytest.approx(0.75)
    assert stats["chance_agreement"] == pytest.approx(0.5)
    assert stats["kappa"] == pytest.approx(0.5)


def test_per_label_scores_take_the_judge_as_reference() -> None:
    stats = agreement_statistics([0, 0, 1, 1], [0, 1, 1, 1], NAMES)
    # "calm": the LLM said it twice, the judge agreed once, the judge said it once.
    assert stats["per_label"]["calm"] == pytest.approx({"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1})
    # "upset": the LLM said it twice, both agreed; the judge said it three times.
    assert stats["per_label"]["upset"] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})


def test_kappa_is_undefined_not_nan_when_both_raters_use_one_label() -> None:
    stats = agreement_statistics([1, 1, 1], [1, 1, 1], NAMES)
    assert stats["agreement"] == 1.0
    assert stats["chance_agreement"] == 1.0
    assert stats["kappa"] is None


def test_chance_agreement_counts_labels_neither_rater_used() -> None:
    assert chance_agreement([0, 1, 2], [2, 1, 0], num_labels=5) == pytest.approx(3 * (1 / 3) ** 2)


@pytest.mark.parametrize(
    ("emotions", "rho", "rising"),
    [
        ([0, 1, 2, 3, 4], 1.0, True),
        ([4, 3, 2, 1], -1.0, False),
        ([0, 2, 1], 0.5, False),  # ranks 1 3 2 against 1 2 3: 1 - 6 * 2 / (3 * 8)
        ([2, -1, 3, 5], 1.0, True),  # the unlabelled turn is skipped: turns 0 2 3 carry 2 3 5
        ([0, 0, 0], None, False),  # a constant sequence has no rank correlation
        ([0, 1], None, None),  # too short to say anything
    ],
)
def test_spearman_and_strict_rise_per_dialogue(emotions: list[int], rho: float | None, rising: bool | None) -> None:
    assert dialogue_spearman(emotions) == (pytest.approx(rho) if rho is not None else None)
    assert strictly_increasing(emotions) is rising


def test_positional_statistics_average_over_the_dialogues_where_defined() -> None:
    stats = positional_statistics([[0, 1, 2, 3, 4], [4, 3, 2, 1], [0, 0, 0], [0, 1], [0, 2, 1]])
    assert stats["position_label_spearman"] == pytest.approx((1.0 - 1.0 + 0.5) / 3)
    assert stats["position_label_spearman_dialogues"] == 3
    assert stats["monotonic_share"] == pytest.approx(1 / 4)
    assert stats["monotonic_share_dialogues"] == 4


def test_counting_labels_score_one_and_labels_that_fall_back_score_no_rise() -> None:
    counting = positional_statistics([list(range(6)), list(range(1, 7)), list(range(5))])
    assert counting["position_label_spearman"] == pytest.approx(1.0)
    assert counting["monotonic_share"] == pytest.approx(1.0)
    mixed = positional_statistics([[0, 3, 0, 1, 0, 3], [2, 0, 0, 2, 0], [1, 1, 0, 4]])
    assert mixed["monotonic_share"] == 0.0


def test_suspects_are_the_flipped_labels_ranked_by_the_judges_confidence_elsewhere() -> None:
    rng = np.random.default_rng(0)
    true = np.repeat(np.arange(3), 30)
    probabilities = np.full((90, 3), 0.05)
    probabilities[np.arange(90), true] = 0.9
    probabilities += rng.uniform(0, 0.01, size=probabilities.shape)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    labels = true.copy()
    flipped = [5, 40, 77]
    labels[flipped] = (true[flipped] + 1) % 3
    probabilities[40] = [0.01, 0.98, 0.01]  # labelled 2; the judge is surer of label 1 here than anywhere else
    indices, health = find_suspects(labels, probabilities)
    assert sorted(indices.tolist()) == flipped
    assert indices[0] == 40
    assert 0.0 < health < 1.0


def test_no_suspects_without_two_distinct_labels() -> None:
    indices, health = find_suspects(np.zeros(10, dtype=int), np.full((10, 3), 1 / 3))
    assert indices.size == 0
    assert health is None
