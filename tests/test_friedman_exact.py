"""The exact null distribution of the difference of two Friedman rank sums (Eisinga et al. 2017).

Three independent computations must agree exactly (as Fractions, not approximately): enumeration of every
ranking of k systems in n blocks, the n-fold convolution of the one-block distribution, and the closed form.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

from erc_synth.evaluate_metrics.erc_metrics import erc_metrics as module
from erc_synth.evaluate_metrics.erc_metrics import (
    exact_critical_difference,
    exact_rank_sum_pvalue,
    exact_rank_sum_pvalue_fraction,
    friedman_test,
    rank_sum_difference_distribution,
)


def brute_force_difference_counts(k: int, n: int) -> tuple[int, dict[int, int]]:
    """Count R_1 - R_2 over all (k!)^n rankings (each block an independent permutation of 1..k)."""
    one_block = np.array([perm[0] - perm[1] for perm in itertools.permutations(range(1, k + 1))], dtype=np.int64)
    totals = np.zeros(1, dtype=np.int64)
    for _ in range(n):  # outer sum = enumeration of every combination of one permutation per block
        totals = (totals[:, None] + one_block[None, :]).ravel()
    values, counts = np.unique(totals, return_counts=True)
    return totals.size, {int(value): int(count) for value, count in zip(values, counts, strict=True)}


BRUTE_FORCE_CASES = [(2, n) for n in range(1, 9)] + [(3, n) for n in range(1, 6)] + [(4, 1), (4, 2), (4, 3), (5, 2)]


@pytest.mark.parametrize(("k", "n"), BRUTE_FORCE_CASES)
def test_distribution_and_pvalues_match_enumeration_of_all_rankings(k: int, n: int) -> None:
    total, brute_counts = brute_force_difference_counts(k, n)
    assert total == math.factorial(k) ** n
    denominator, counts = rank_sum_difference_distribution(k, n)
    assert denominator == (k * (k - 1)) ** n
    assert set(counts) == set(range(-n * (k - 1), n * (k - 1) + 1))
    for d, count in counts.items():
        assert Fraction(count, denominator) == Fraction(brute_counts.get(d, 0), total), d
    for d in range(n * (k - 1) + 2):
        expected = Fraction(sum(c for value, c in brute_counts.items() if abs(value) >= d), total)
        assert exact_rank_sum_pvalue_fraction(d, k, n, method="closed_form") == expected, d
        assert exact_rank_sum_pvalue_fraction(d, k, n, method="convolution") == expected, d


def test_closed_form_equals_convolution_over_a_range_of_k_and_n() -> None:
    cases = [(k, n) for k in range(2, 13) for n in range(1, 13)] + [(30, 25), (60, 8), (9, 60)]
    for k, n in cases:
        denominator, counts = rank_sum_difference_distribution(k, n)
        assert sum(counts.values()) == denominator, (k, n)
        tail = 0
        for d in range(n * (k - 1), 0, -1):
            tail += counts[d]
            closed = exact_rank_sum_pvalue_fraction(d, k, n, method="closed_form")
            assert closed == min(Fraction(1), Fraction(2 * tail, denominator)), (k, n, d)


def test_known_value_k_n_100() -> None:
    """Eisinga et al.'s worked example: P(|D| >= 100) for k = n = 100 is 0.8085251 to 7 digits."""
    assert round(exact_rank_sum_pvalue(100, 100, 100), 7) == 0.8085251
    assert round(exact_rank_sum_pvalue(100, 100, 100, method="closed_form"), 7) == 0.8085251


def test_tail_values_that_follow_from_the_model() -> None:
    k, n = 7, 5
    assert exact_rank_sum_pvalue(0, k, n) == 1.0
    # Only one outcome per block gives the largest difference k - 1, on either side.
    assert exact_rank_sum_pvalue_fraction(n * (k - 1), k, n) == Fraction(2, (k * (k - 1)) ** n)
    assert exact_rank_sum_pvalue(n * (k - 1) + 1, k, n) == 0.0
    # Two-sided and integer-valued: -d and d agree, half-integers from tied ranks round up.
    assert exact_rank_sum_pvalue(-9, k, n) == exact_rank_sum_pvalue(9, k, n)
    assert exact_rank_sum_pvalue(8.5, k, n) == exact_rank_sum_pvalue(9, k, n) < exact_rank_sum_pvalue(8, k, n)
    p_values = [exact_rank_sum_pvalue(d, k, n) for d in range(n * (k - 1) + 2)]
    assert all(a >= b for a, b in itertools.pairwise(p_values))


def test_large_k_n_stays_exact_far_in_the_tail() -> None:
    """Near the centre the exact value is close to the normal approximation; far out it is positive, tiny and
    monotone, where a float evaluation of the alternating closed form would cancel to garbage."""
    k = n = 100
    sd = math.sqrt(n * k * (k + 1) / 6)
    normal = 2 * stats.norm.sf((1000 - 0.5) / sd)
    assert exact_rank_sum_pvalue(1000, k, n) == pytest.approx(normal, rel=0.02)
    far, farther = exact_rank_sum_pvalue(4000, k, n), exact_rank_sum_pvalue(6000, k, n)
    assert 0.0 < farther < far < 1e-20


@pytest.mark.parametrize(
    ("k", "n", "message"),
    [(1, 5, "k \\(number of systems\\)"), (5, 0, "n \\(number of blocks\\)"), (2.0, 3, "k"), (True, 3, "k")],
)
def test_invalid_k_or_n_is_refused(k: object, n: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        exact_rank_sum_pvalue(1, k, n)
    with pytest.raises(ValueError, match=message):
        rank_sum_difference_distribution(k, n)


def test_unknown_method_and_non_finite_difference_are_refused() -> None:
    with pytest.raises(ValueError, match="method must be one of"):
        exact_rank_sum_pvalue(1, 3, 3, method="normal")
    with pytest.raises(ValueError, match="finite"):
        exact_rank_sum_pvalue(float("nan"), 3, 3)


def test_distribution_is_cached_and_read_only() -> None:
    first = rank_sum_difference_distribution(6, 6)
    assert rank_sum_difference_distribution(6, 6) is first
    with pytest.raises(TypeError):
        first[1][0] = 5  # type: ignore[index]


@pytest.mark.parametrize(("k", "n"), [(3, 10), (9, 9), (25, 12)])
@pytest.mark.parametrize("alpha", [0.05, 0.01, 0.05 / 36])
def test_critical_difference_is_the_smallest_significant_difference(k: int, n: int, alpha: float) -> None:
    critical = exact_critical_difference(k, n, alpha)
    assert critical is not None
    assert exact_rank_sum_pvalue_fraction(critical, k, n) <= Fraction(alpha)
    assert exact_rank_sum_pvalue_fraction(critical - 1, k, n) > Fraction(alpha)


def test_critical_difference_search_equals_a_linear_scan() -> None:
    """The search starts at the normal approximation and gallops; check it against the plain definition."""
    for k, n in [(2, 3), (2, 10), (3, 3), (4, 7), (12, 2), (6, 15)]:
        for alpha in (0.99, 0.5, 0.05, 0.01, 1e-4):
            scan = next(
                (d for d in range(1, n * (k - 1) + 1) if exact_rank_sum_pvalue_fraction(d, k, n) <= Fraction(alpha)),
                None,
            )
            assert exact_critical_difference(k, n, alpha) == scan, (k, n, alpha)


def test_critical_difference_is_none_when_nothing_can_be_significant() -> None:
    assert exact_critical_difference(2, 2, 0.05) is None  # the largest difference still has p = 0.5
    with pytest.raises(ValueError, match="alpha"):
        exact_critical_difference(3, 3, 1.5)


def test_auto_method_weighs_one_convolution_against_closed_forms() -> None:
    """Few systems over many blocks: building all tails beats even one closed form; k = n = 100 is the reverse,
    unless many differences are needed at once (as in an all-pairs friedman_test)."""
    module._clear_caches()
    assert module._convolution_pays_off([60], 5, 200)
    assert not module._convolution_pays_off([100], 100, 100)
    assert module._convolution_pays_off(range(1, 400), 10, 100)
    scores = np.random.default_rng(0).random((60, 8)).tolist()
    result = friedman_test(scores, [f"s{i}" for i in range(8)])
    assert (8, 60) in module._TAIL_TABLES  # 28 pairs and two critical differences: one table was built
    for pair in result["pairwise"]:
        closed = exact_rank_sum_pvalue(pair["rank_sum_diff"], 8, 60, method="closed_form")
        assert pair["p_value"] == closed
