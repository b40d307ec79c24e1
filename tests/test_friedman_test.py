"""friedman_test: ranks, omnibus statistics, pairwise exact p-values, corrections and input errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from erc_synth.evaluate_metrics.erc_metrics import (
    exact_critical_difference,
    exact_rank_sum_pvalue,
    friedman_test,
)
from erc_synth.evaluate_metrics.erc_metrics.erc_metrics import _corrected

NAMES = ["base", "synth", "other", "fourth"]


def random_scores(n: int, k: int, seed: int, decimals: int | None = None) -> list[list[float]]:
    scores = np.random.default_rng(seed).random((n, k))
    if decimals is not None:
        scores = scores.round(decimals)  # coarse scores make ties
    return scores.tolist()


def test_ranks_put_the_best_first_and_average_ties() -> None:
    scores = [[0.9, 0.5, 0.5, 0.1], [0.2, 0.8, 0.4, 0.6], [0.3, 0.3, 0.3, 0.3]]
    result = friedman_test(scores, NAMES)
    assert result["ranks"] == [[1.0, 2.5, 2.5, 4.0], [4.0, 1.0, 3.0, 2.0], [2.5, 2.5, 2.5, 2.5]]
    assert result["rank_sums"] == {"base": 7.5, "synth": 6.0, "other": 8.0, "fourth": 8.5}
    assert result["mean_ranks"] == pytest.approx({"base": 2.5, "synth": 2.0, "other": 8 / 3, "fourth": 8.5 / 3})
    assert result["blocks_with_ties"] == 2
    lower = friedman_test(scores, NAMES, higher_is_better=False)
    assert lower["ranks"][0] == [4.0, 2.5, 2.5, 1.0]
    assert lower["higher_is_better"] is False


@pytest.mark.parametrize(("seed", "decimals"), [(0, None), (1, 1), (2, 1)])
def test_omnibus_statistic_matches_scipy_including_ties(seed: int, decimals: int | None) -> None:
    scores = random_scores(12, 5, seed, decimals)
    result = friedman_test(scores, list("abcde"))
    expected = stats.friedmanchisquare(*np.asarray(scores).T)
    assert result["friedman_statistic"] == pytest.approx(expected.statistic, rel=1e-12)
    assert result["friedman_p_value"] == pytest.approx(expected.pvalue, rel=1e-9)


def test_iman_davenport_f_equals_anova_on_ranks() -> None:
    """Without ties, Iman-Davenport's F is the two-way (blocks x systems) ANOVA F computed on the ranks."""
    n, k = 15, 6
    result = friedman_test(random_scores(n, k, seed=3), list("abcdef"))
    ranks = np.asarray(result["ranks"])
    grand = ranks.mean()
    ss_systems = n * np.sum((ranks.mean(axis=0) - grand) ** 2)
    ss_blocks = k * np.sum((ranks.mean(axis=1) - grand) ** 2)
    ss_error = np.sum((ranks - grand) ** 2) - ss_systems - ss_blocks
    df_systems, df_error = k - 1, (k - 1) * (n - 1)
    f_anova = (ss_systems / df_systems) / (ss_error / df_error)
    assert result["iman_davenport_f"] == pytest.approx(f_anova, rel=1e-10)
    assert result["iman_davenport_p_value"] == pytest.approx(stats.f.sf(f_anova, df_systems, df_error), rel=1e-9)


def test_all_ties_make_the_omnibus_undefined_and_pairs_insignificant() -> None:
    result = friedman_test([[0.5, 0.5, 0.5]] * 4, ["a", "b", "c"])
    assert math.isnan(result["friedman_statistic"]) and math.isnan(result["friedman_p_value"])
    assert all(pair["p_value"] == 1.0 and pair["better"] is None for pair in result["pairwise"])


def test_perfect_agreement_gives_infinite_f() -> None:
    result = friedman_test([[3.0, 2.0, 1.0]] * 5, ["a", "b", "c"])
    assert result["iman_davenport_f"] == math.inf and result["iman_davenport_p_value"] == 0.0
    assert result["friedman_statistic"] == pytest.approx(5 * 2)  # n(k-1), its maximum


def test_pairwise_uses_exact_pvalues_of_the_rank_sum_difference() -> None:
    scores = random_scores(9, 9, seed=4)
    names = [f"s{i}" for i in range(9)]
    result = friedman_test(scores, names)
    assert result["num_comparisons"] == 36 and len(result["pairwise"]) == 36
    first = result["pairwise"][0]
    assert (first["system_a"], first["system_b"]) == ("s0", "s1")
    diff = result["rank_sums"]["s0"] - result["rank_sums"]["s1"]
    assert first["rank_sum_diff"] == diff
    assert first["p_value"] == exact_rank_sum_pvalue(diff, 9, 9)
    assert first["better"] == ("s0" if diff < 0 else "s1")


def test_bonferroni_counts_only_the_requested_comparisons() -> None:
    scores = [[0.9, 0.1, 0.5], [0.8, 0.2, 0.4], [0.7, 0.3, 0.6], [0.9, 0.2, 0.1], [0.6, 0.5, 0.55]]
    names = ["a", "b", "c"]
    one = friedman_test(scores, names, comparisons=[("a", "b")])
    two = friedman_test(scores, names, comparisons=[("a", "b"), ("c", "b")])
    every = friedman_test(scores, names)
    p = one["pairwise"][0]["p_value"]
    assert 0 < p < 0.5
    assert one["pairwise"][0]["p_value_corrected"] == p
    assert two["pairwise"][0]["p_value_corrected"] == pytest.approx(2 * p)
    assert every["num_comparisons"] == 3
    assert every["pairwise"][0]["p_value_corrected"] == pytest.approx(min(1.0, 3 * p))
    assert all(pair["p_value_corrected"] <= 1.0 for pair in every["pairwise"])
    none = friedman_test(scores, names, correction="none")
    assert [pair["p_value_corrected"] for pair in none["pairwise"]] == [pair["p_value"] for pair in none["pairwise"]]


def test_holm_step_down_on_a_worked_example() -> None:
    # Sorted: 0.01 * 3 = 0.03; 0.03 * 2 = 0.06; 0.04 * 1 = 0.04, raised to 0.06 to stay monotone.
    assert _corrected([0.01, 0.04, 0.03], "holm") == pytest.approx([0.03, 0.06, 0.06])
    assert _corrected([0.5, 0.6], "holm") == [1.0, 1.0]  # capped at 1
    assert _corrected([0.01, 0.04, 0.03], "bonferroni") == pytest.approx([0.03, 0.12, 0.09])


def test_holm_is_used_by_friedman_test_and_never_exceeds_bonferroni() -> None:
    scores = random_scores(20, 4, seed=5)
    holm = friedman_test(scores, NAMES, correction="holm")
    bonferroni = friedman_test(scores, NAMES, correction="bonferroni")
    raw = [pair["p_value"] for pair in holm["pairwise"]]
    assert [pair["p_value_corrected"] for pair in holm["pairwise"]] == pytest.approx(_corrected(raw, "holm"))
    for h, b in zip(holm["pairwise"], bonferroni["pairwise"], strict=True):
        assert h["p_value"] <= h["p_value_corrected"] <= b["p_value_corrected"]


def test_critical_differences_agree_with_the_pairwise_decisions() -> None:
    scores = random_scores(30, 4, seed=6)
    scores = [[row[0] + 0.6, row[1] + 0.3, row[2], row[3]] for row in scores]  # some real differences
    result = friedman_test(scores, NAMES, comparisons=[("base", "other"), ("synth", "fourth"), ("base", "synth")])
    critical = result["critical_differences"]
    assert set(critical) == {0.05, 0.01}
    assert critical[0.05] == exact_critical_difference(4, 30, 0.05 / 3)
    assert critical[0.01] == exact_critical_difference(4, 30, 0.01 / 3)
    assert critical[0.01] > critical[0.05]
    decisions = [
        (abs(p["rank_sum_diff"]) >= critical[0.05], p["p_value_corrected"] <= 0.05) for p in result["pairwise"]
    ]
    assert all(by_difference == by_p for by_difference, by_p in decisions)
    assert any(significant for significant, _ in decisions)
    uncorrected = friedman_test(scores, NAMES, correction="none", alphas=(0.1,))
    assert uncorrected["critical_differences"] == {0.1: exact_critical_difference(4, 30, 0.1)}


@pytest.mark.parametrize(
    ("scores", "names", "kwargs", "message"),
    [
        ([[0.1, float("nan")], [0.2, 0.3]], ["a", "b"], {}, r"scores\[0\]\[1\] = nan"),
        ([[0.1, math.inf], [0.2, 0.3]], ["a", "b"], {}, r"scores\[0\]\[1\] = inf: scores must be finite"),
        ([[0.1, "x"], [0.2, 0.3]], ["a", "b"], {}, r"scores\[0\]\[1\] = 'x' is not a number"),
        ([[0.1, 0.2, 0.3], [0.2, 0.3]], ["a", "b", "c"], {}, r"scores\[1\] has 2 scores but there are 3 systems"),
        ([[0.1, 0.2], [0.2, 0.3]], ["a", "b", "c"], {}, r"scores\[0\] has 2 scores but there are 3 systems"),
        ([[0.1], [0.2]], ["a"], {}, "at least 2 systems, got 1"),
        ([[0.1, 0.2]], ["a", "b"], {}, "at least 2 blocks"),
        ([], ["a", "b"], {}, "at least 2 blocks"),
        ([[0.1, 0.2], [0.2, 0.3]], ["a", "a"], {}, "duplicates"),
        ([[0.1, 0.2], [0.2, 0.3]], ["a", ""], {}, "non-empty string"),
        ([[0.1, 0.2], [0.2, 0.3]], "ab", {}, "system_names must be a list"),
        ([[0.1, 0.2], [0.2, 0.3]], ["a", "b"], {"comparisons": [("a", "z")]}, "unknown system 'z'"),
        ([[0.1, 0.2], [0.2, 0.3]], ["a", "b"], {"comparisons": [("a", "a")]}, "with itself"),
        ([[0.1, 0.2], [0.2, 0.3]], ["a", "b"], {"comparisons": [("a", "b"), ("b", "a")]}, "repeats the pair"),
        ([[0.1, 0.2], [0.2, 0.3]], ["a", "b"], {"comparisons": []}, "comparisons is empty"),
        ([[0.1, 0.2], [0.2, 0.3]], ["a", "b"], {"comparisons": ["a:b"]}, r"must be a pair"),
        ([[0.1, 0.2], [0.2, 0.3]], ["a", "b"], {"correction": "sidak"}, "correction must be one of"),
        ([[0.1, 0.2], [0.2, 0.3]], ["a", "b"], {"alphas": (0.05, 5)}, "alphas must lie in"),
    ],
)
def test_bad_input_is_refused_with_a_message_naming_it(scores, names, kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        friedman_test(scores, names, **kwargs)


def test_numpy_input_is_accepted() -> None:
    scores = np.random.default_rng(7).random((5, 3))
    assert friedman_test(scores, ["a", "b", "c"]) == friedman_test(scores.tolist(), ["a", "b", "c"])
