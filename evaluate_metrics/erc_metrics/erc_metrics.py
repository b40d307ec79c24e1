"""ERC metrics: weighted F1 per test set, and Friedman rank sums with exact pairwise p-values.

This file is a self-contained Hugging Face ``evaluate`` module (it imports nothing from erc-synth), so that it
works when loaded by path and when pushed alone to the Hub:

    evaluate.load("evaluate_metrics/erc_metrics")              # config "default": classification scores
    evaluate.load("evaluate_metrics/erc_metrics", "friedman")  # config "friedman": rank-sum tests

The same computations are plain functions (``classification_scores``, ``friedman_test``,
``exact_rank_sum_pvalue``, ``rank_sum_difference_distribution``, ``critical_difference_plot``) for code that
does not need ``evaluate``'s batching.

Why exact p-values: the study compares a few chosen pairs of classifiers over many test sets (blocks). The
usual normal approximation of the difference of two Friedman rank sums is poor in the tails and for few blocks;
Eisinga, Heskes, Pelzer and Te Grotenhuis (2017) give the exact distribution in closed form. Its terms are huge
alternating sums (k = n = 100 involves numbers with hundreds of digits), so they are evaluated in Python's
exact integers and only the final ratio is rounded to a float.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from functools import lru_cache
from itertools import combinations
from pathlib import Path
from types import MappingProxyType
from typing import Any

import datasets
import evaluate
import numpy as np
from scipy import stats
from sklearn.metrics import f1_score, precision_recall_fscore_support

CORRECTIONS = ("bonferroni", "holm", "none")
DEFAULT_ALPHAS = (0.05, 0.01)
PVALUE_METHODS = ("auto", "closed_form", "convolution")
#: Cost of the convolution per packed-bit^1.585 (Karatsuba) relative to one closed-form term-bit; measured with
#: benchmarks/bench_friedman.py-style timings over k, n in 9..200 (the ratio held within 20 %).
_CONVOLUTION_COST_FACTOR = 1 / 540
#: Tail tables kept per (k, n); a k = n = 100 table holds about 1.6 MB of integers.
_MAX_TAIL_TABLES = 32
_TAIL_TABLES: dict[tuple[int, int], list[int]] = {}

_CITATION = """\
@article{eisinga2017exact,
  title   = {Exact p-values for pairwise comparison of Friedman rank sums, with application to comparing
             classifiers},
  author  = {Eisinga, Rob and Heskes, Tom and Pelzer, Ben and Te Grotenhuis, Manfred},
  journal = {BMC Bioinformatics},
  volume  = {18},
  number  = {68},
  year    = {2017},
  doi     = {10.1186/s12859-017-1486-2}
}
"""

_DESCRIPTION = """\
Metrics for emotion recognition in conversation (ERC). Config "default": weighted, macro and micro F1,
accuracy, per-class F1 and support of utterance-level emotion predictions, leaving out references equal to
ignore_index (unlabelled context utterances). Config "friedman": Friedman rank sums of k systems over n test
sets, the omnibus Friedman chi-square and Iman-Davenport F tests, and exact two-sided p-values for the
difference of two rank sums (Eisinga et al. 2017) with Bonferroni or Holm correction over the comparisons
actually requested, plus the exact critical differences.
"""

_KWARGS_DESCRIPTION = """\
Config "default":
    predictions (list of int): predicted class ids.
    references (list of int): gold class ids; items equal to ignore_index are left out.
    label_names (list of str, optional): class names by id; per_class_f1 and support are keyed by name.
    labels (list of int, optional): the class ids averaged over (default: all of label_names, else every id seen).
    ignore_index (int, optional, default -100): reference value of unlabelled items.
Returns: weighted_f1, macro_f1, micro_f1, accuracy (fractions in [0, 1]), per_class_f1 (dict), support (dict of
    reference counts).

Config "friedman":
    scores (list of list of float): one row per test set (block), one column per system.
    system_names (list of str): the k system names, in column order.
    comparisons (list of [str, str], optional): pairs of system names to test (default: all pairs).
    correction ("bonferroni" | "holm" | "none", default "bonferroni"): over the number of requested comparisons.
    higher_is_better (bool, default True): rank 1 goes to the highest score (False: to the lowest).
    alphas (list of float, default [0.05, 0.01]): levels of the exact critical differences.
Returns: ranks, rank_sums, mean_ranks, friedman_statistic, friedman_p_value, friedman_df, iman_davenport_f,
    iman_davenport_p_value, iman_davenport_df, pairwise (list of dicts), critical_differences (dict by alpha),
    and bookkeeping keys.

Examples:
    >>> metric = evaluate.load("evaluate_metrics/erc_metrics", "friedman")
    >>> result = metric.compute(scores=[[0.61, 0.58], [0.40, 0.35], [0.66, 0.67]], system_names=["a", "b"])
    >>> result["rank_sums"]
    {'a': 4.0, 'b': 5.0}
"""


# ---------------------------------------------------------------------------------------------------------------
# Classification scores
# ---------------------------------------------------------------------------------------------------------------


def _as_class_ids(values: Any, name: str) -> np.ndarray:
    """Return ``values`` as a 1-D int64 array, refusing logits, fractions and strings with a clear message."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D sequence of class ids, got shape {array.shape} (take the argmax of logits first)"
        )
    if array.size == 0:
        return array.astype(np.int64)
    if array.dtype.kind == "b" or array.dtype.kind not in "iuf":
        raise ValueError(
            f"{name} must hold integer class ids, got dtype {array.dtype} (first value {array[0].item()!r})"
        )
    if array.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(array) | (array != np.round(array)))
        if bad.size:
            raise ValueError(f"{name}[{bad[0]}] = {array[bad[0]].item()!r} is not an integer class id")
    return array.astype(np.int64)


def classification_scores(
    predictions: Sequence[int],
    references: Sequence[int],
    label_names: Sequence[str] | None = None,
    labels: Sequence[int] | None = None,
    ignore_index: int | None = -100,
) -> dict[str, Any]:
    """Weighted/macro/micro F1, accuracy, per-class F1 and support of class-id predictions.

    Items whose reference equals ``ignore_index`` are left out before scoring: in ERC data, context utterances
    without a gold emotion carry that value, and counting them would score the model on guesses. A prediction
    equal to ``ignore_index`` on a labelled item is an error (it means the caller did not decode its logits).

    ``labels`` restricts the averaging to those class ids (as in scikit-learn); ``accuracy`` is always over every
    kept item. ``per_class_f1`` and ``support`` (number of references per class) are keyed by label name when
    ``label_names`` is given, else by class id. All scores are fractions in [0, 1], not percentages.
    """
    preds = _as_class_ids(predictions, "predictions")
    refs = _as_class_ids(references, "references")
    if preds.shape != refs.shape:
        raise ValueError(f"predictions and references differ in length: {preds.size} != {refs.size}")
    if ignore_index is not None:
        keep = refs != ignore_index
        dropped_preds = np.flatnonzero(keep & (preds == ignore_index))
        if dropped_preds.size:
            raise ValueError(
                f"predictions[{dropped_preds[0]}] equals ignore_index ({ignore_index}) but its reference is "
                f"labelled ({refs[dropped_preds[0]]})"
            )
        preds, refs = preds[keep], refs[keep]
    if refs.size == 0:
        raise ValueError("no labelled items to score: every reference is missing or equals ignore_index")

    if label_names is not None:
        label_names = [str(name) for name in label_names]
        if len(set(label_names)) != len(label_names):
            raise ValueError(f"label_names has duplicates: {label_names}")
        for name, array in (("predictions", preds), ("references", refs)):
            outside = array[(array < 0) | (array >= len(label_names))]
            if outside.size:
                raise ValueError(
                    f"{name} holds class id {int(outside[0])}, outside 0..{len(label_names) - 1} of label_names"
                )
    if labels is None:
        labels = range(len(label_names)) if label_names is not None else np.union1d(refs, preds)
    labels = [int(label) for label in labels]
    if not labels:
        raise ValueError("labels is empty: nothing to average over")
    if label_names is not None:
        unknown = [label for label in labels if not 0 <= label < len(label_names)]
        if unknown:
            raise ValueError(f"labels holds class id {unknown[0]}, outside 0..{len(label_names) - 1} of label_names")

    _, _, per_class, support = precision_recall_fscore_support(
        refs, preds, labels=labels, average=None, zero_division=0
    )

    def key(label: int) -> str | int:
        return label_names[label] if label_names is not None else label

    return {
        "weighted_f1": float(f1_score(refs, preds, labels=labels, average="weighted", zero_division=0)),
        "macro_f1": float(f1_score(refs, preds, labels=labels, average="macro", zero_division=0)),
        "micro_f1": float(f1_score(refs, preds, labels=labels, average="micro", zero_division=0)),
        "accuracy": float(np.mean(preds == refs)),
        "per_class_f1": {key(label): float(value) for label, value in zip(labels, per_class, strict=True)},
        "support": {key(label): int(count) for label, count in zip(labels, support, strict=True)},
    }


# ---------------------------------------------------------------------------------------------------------------
# Exact distribution of the difference of two Friedman rank sums (Eisinga et al. 2017)
# ---------------------------------------------------------------------------------------------------------------


def _check_k_n(k: int, n: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 2:
        raise ValueError(f"k (number of systems) must be an integer >= 2, got {k!r}")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"n (number of blocks) must be an integer >= 1, got {n!r}")


@lru_cache(maxsize=4096)
def _upper_tail_count(d: int, k: int, n: int) -> int:
    """Number of the (k(k-1))^n equally likely outcomes with D >= d, for an integer d >= 1 (closed form).

    One block contributes X = r_a - r_b, with P(X = x) = (k - |x|) / (k(k-1)) for 0 < |x| < k. Its generating
    function is (t^(1-k) (1 + t + ... + t^(k-1))^2 - k) / (k(k-1)); expanding the n-th power binomially and
    reading off cumulative coefficients gives Eisinga et al.'s formula:

        sum_{h=1..n} C(n, h) (-k)^(n-h) sum_{i>=0} (-1)^i C(2h, i) C((k+1)h - k i - d, 2h),

    where the last binomial is zero once its top falls below 2h. Everything is an exact integer, so the large
    cancelling terms cannot lose precision.
    """
    total = 0
    for h in range(1, n + 1):
        inner = 0
        for i in range(2 * h + 1):
            top = (k + 1) * h - k * i - d
            if top < 2 * h:
                break
            term = math.comb(2 * h, i) * math.comb(top, 2 * h)
            inner += -term if i % 2 else term
        if inner:
            total += math.comb(n, h) * (-k) ** (n - h) * inner
    return total


def _integer_difference(d: float | int | Fraction) -> int:
    """|d| rounded up: under the null hypothesis D is an integer, so P(|D| >= d) = P(|D| >= ceil(|d|))."""
    if isinstance(d, float) and not math.isfinite(d):
        raise ValueError(f"rank-sum difference must be finite, got {d!r}")
    return math.ceil(abs(Fraction(d)))


def exact_rank_sum_pvalue_fraction(d: float | int | Fraction, k: int, n: int, method: str = "auto") -> Fraction:
    """Exact two-sided P(|D| >= |d|) as a Fraction, for D the difference of two rank sums (k systems, n blocks).

    Non-integer ``d`` (from average ranks of ties) is rounded up, because D itself only takes integer values
    under the null hypothesis of untied, exchangeable ranks (the model of Eisinga et al.).

    ``method``: ``"closed_form"`` (Eisinga et al.'s sum, cached per (d, k, n)), ``"convolution"`` (tails of the
    whole distribution, cached per (k, n)), or ``"auto"``: the tail table when it is already cached or cheaper
    to build than this one closed-form value (few systems and many blocks), else the closed form. Both are
    exact and agree to the last digit.
    """
    _check_k_n(k, n)
    if method not in PVALUE_METHODS:
        raise ValueError(f"method must be one of {PVALUE_METHODS}, got {method!r}")
    d_int = _integer_difference(d)
    if d_int == 0:
        return Fraction(1)
    if d_int > n * (k - 1):
        return Fraction(0)
    if method == "convolution" or (method == "auto" and _convolution_pays_off([d_int], k, n)):
        tail = _upper_tail_counts(k, n)[d_int]
    else:
        tail = _upper_tail_count(d_int, k, n)
    return min(Fraction(1), Fraction(2 * tail, (k * (k - 1)) ** n))


def exact_rank_sum_pvalue(d: float | int | Fraction, k: int, n: int, method: str = "auto") -> float:
    """Exact two-sided p-value P(|D| >= |d|) of a rank-sum difference d (Eisinga et al. 2017), as a float.

    Computed as an exact Fraction and rounded once, so it is accurate to the last digit even for k = n = 100,
    where the alternating closed-form terms have hundreds of digits.
    """
    return float(exact_rank_sum_pvalue_fraction(d, k, n, method))


def _slot_bits(k: int, n: int) -> int:
    """Bits per coefficient in the Kronecker packing: every coefficient of the n-th power is <= (k(k-1))^n."""
    bits = ((k * (k - 1)) ** n).bit_length() + 1
    return bits + (-bits % 8)  # byte-aligned slots so unpacking is a slice, not a shift per slot


def _packed_bits(k: int, n: int) -> int:
    """Size of the packed n-th power, the driver of the convolution's cost."""
    return _slot_bits(k, n) * (2 * n * (k - 1) + 1)


def _closed_form_cost(d: int, k: int, n: int) -> float:
    """Relative cost of one closed-form tail: its number of binomial terms times their size in bits.

    For block count h the inner sum runs while (k - 1) h - k i >= d, so large d and large k skip most terms.
    """
    terms = sum(max(0, ((k - 1) * h - d) // k + 1) for h in range(1, n + 1))
    return terms * n * math.log2(k * n)


def _convolution_pays_off(differences: Iterable[int], k: int, n: int) -> bool:
    """Whether the tail table (cached, or built once) is cheaper than one closed form per listed difference."""
    if (k, n) in _TAIL_TABLES:
        return True
    closed = sum(_closed_form_cost(d, k, n) for d in differences)
    return _packed_bits(k, n) ** 1.585 * _CONVOLUTION_COST_FACTOR <= closed


@lru_cache(maxsize=64)
def rank_sum_difference_distribution(k: int, n: int) -> tuple[int, Mapping[int, int]]:
    """The whole exact null distribution of D, by n-fold convolution of the one-block distribution.

    Returns ``(denominator, counts)`` with ``counts[d]`` the number of the ``denominator = (k(k-1))^n``
    equally likely outcomes where D = d, for d in -n(k-1)..n(k-1). Why it exists next to the closed form: it
    is an independent computation (used to cross-check the closed form) and gives every tail at once. The
    convolution is done by Kronecker substitution, packing the one-block polynomial into one Python integer and
    raising it to the n-th power, so it stays fast for moderate k and n; it is cached per (k, n).
    """
    _check_k_n(k, n)
    k, n = int(k), int(n)
    denominator = (k * (k - 1)) ** n
    slot_bits = _slot_bits(k, n)
    one_block = 0
    for offset in range(2 * k - 1):  # offset = x + (k - 1) for x in -(k-1)..(k-1)
        x = offset - (k - 1)
        if x:
            one_block |= (k - abs(x)) << (slot_bits * offset)
    packed = (one_block**n).to_bytes((slot_bits * (2 * n * (k - 1) + 1)) // 8 + 1, "little")
    slot_bytes = slot_bits // 8
    counts = {}
    for offset in range(2 * n * (k - 1) + 1):
        chunk = packed[offset * slot_bytes : (offset + 1) * slot_bytes]
        counts[offset - n * (k - 1)] = int.from_bytes(chunk, "little")
    return denominator, MappingProxyType(counts)  # read-only: the cached object is shared by every caller


def _upper_tail_counts(k: int, n: int) -> list[int]:
    """``tails[d]`` = number of outcomes with D >= d, for d in 0..n(k-1), from the distribution; cached."""
    if (k, n) not in _TAIL_TABLES:
        _, counts = rank_sum_difference_distribution(k, n)
        tails = [0] * (n * (k - 1) + 2)
        for d in range(n * (k - 1), -1, -1):
            tails[d] = tails[d + 1] + counts[d]
        if len(_TAIL_TABLES) >= _MAX_TAIL_TABLES:
            _TAIL_TABLES.pop(next(iter(_TAIL_TABLES)))  # drop the oldest
        _TAIL_TABLES[(k, n)] = tails[:-1]
    return _TAIL_TABLES[(k, n)]


def _clear_caches() -> None:
    """Forget every cached tail and distribution (for benchmarks that time a fresh process)."""
    _upper_tail_count.cache_clear()
    rank_sum_difference_distribution.cache_clear()
    _TAIL_TABLES.clear()


def exact_critical_difference(k: int, n: int, alpha: float) -> int | None:
    """Smallest integer rank-sum difference d with exact P(|D| >= d) <= alpha, or None if none reaches alpha.

    The two-sided p-value falls as d grows, so the answer is a boundary in 1..n(k-1). Why not a plain
    bisection: each exact evaluation costs up to tens of milliseconds at k = n = 100, and the normal
    approximation (variance n k (k+1) / 6) already lands within a few units of the answer; so the search starts
    there and gallops outwards to bracket the boundary, then bisects, using a handful of exact evaluations.
    None happens with very few blocks (e.g. k = n = 2: even the largest difference has p = 0.5).
    """
    _check_k_n(k, n)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    threshold = Fraction(alpha)
    top = n * (k - 1)

    def significant(d: int) -> bool:
        return exact_rank_sum_pvalue_fraction(d, k, n) <= threshold

    if not significant(top):
        return None
    guess = math.ceil(float(stats.norm.isf(alpha / 2)) * math.sqrt(n * k * (k + 1) / 6))
    guess = min(max(guess, 1), top)
    # Bracket: low is known not significant (or 0), high is known significant.
    step = 1
    if significant(guess):
        high, low = guess, guess - step
        while low >= 1 and significant(low):
            high, step = low, step * 2
            low = high - step
        low = max(low, 0)
    else:
        low, high = guess, guess + step
        while high < top and not significant(high):
            low, step = high, step * 2
            high = low + step
        high = min(high, top)
    while high - low > 1:
        middle = (low + high) // 2
        if significant(middle):
            high = middle
        else:
            low = middle
    return high


# ---------------------------------------------------------------------------------------------------------------
# Friedman test
# ---------------------------------------------------------------------------------------------------------------


def _score_matrix(scores: Any, k: int) -> np.ndarray:
    """Check that ``scores`` is n rows of k finite numbers and return it as an (n, k) float array."""
    if isinstance(scores, np.ndarray):
        rows = list(scores) if scores.ndim == 2 else None
    elif isinstance(scores, Sequence) and not isinstance(scores, str):
        rows = list(scores)
    else:
        rows = None
    if rows is None:
        raise ValueError("scores must be a list of rows (one per test set), each a list of one score per system")
    for block, row in enumerate(rows):
        if isinstance(row, str) or not isinstance(row, Sequence | np.ndarray):
            raise ValueError(f"scores[{block}] must be a list of {k} scores, got {row!r}")
        if len(row) != k:
            raise ValueError(f"scores[{block}] has {len(row)} scores but there are {k} systems")
        for system, value in enumerate(row):
            if isinstance(value, np.generic):
                value = value.item()  # plain Python values read better in the error messages below
            if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
                raise ValueError(f"scores[{block}][{system}] = {value!r} is not a number")
            if not math.isfinite(value):
                raise ValueError(
                    f"scores[{block}][{system}] = {value!r}: scores must be finite (drop or re-run that test set; "
                    "NaN cannot be ranked)"
                )
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), k)


def _comparison_pairs(comparisons: Sequence[Sequence[str]] | None, system_names: list[str]) -> list[tuple[str, str]]:
    """Validate the requested pairs; the default is every pair in column order."""
    if comparisons is None:
        return list(combinations(system_names, 2))
    if isinstance(comparisons, str):
        raise ValueError("comparisons must be a list of [system_a, system_b] pairs, not a string")
    pairs: list[tuple[str, str]] = []
    seen: set[frozenset[str]] = set()
    for position, pair in enumerate(comparisons):
        if isinstance(pair, str) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise ValueError(f"comparisons[{position}] must be a pair [system_a, system_b], got {pair!r}")
        a, b = pair
        for name in (a, b):
            if name not in system_names:
                raise ValueError(f"comparisons[{position}] names unknown system {name!r}; systems: {system_names}")
        if a == b:
            raise ValueError(f"comparisons[{position}] compares {a!r} with itself")
        if frozenset((a, b)) in seen:
            raise ValueError(f"comparisons[{position}] repeats the pair {a!r}, {b!r} (it would inflate the correction)")
        seen.add(frozenset((a, b)))
        pairs.append((a, b))
    if not pairs:
        raise ValueError("comparisons is empty: request at least one pair, or pass None for all pairs")
    return pairs


def _corrected(p_values: list[float], correction: str) -> list[float]:
    """Adjust p-values for the m comparisons actually requested (m = len(p_values)), capped at 1."""
    m = len(p_values)
    if correction == "none":
        return list(p_values)
    if correction == "bonferroni":
        return [min(1.0, p * m) for p in p_values]
    # Holm's step-down: the i-th smallest p (0-based) is multiplied by m - i, then made monotone.
    order = sorted(range(m), key=lambda index: p_values[index])
    adjusted = [0.0] * m
    running = 0.0
    for step, index in enumerate(order):
        running = max(running, min(1.0, (m - step) * p_values[index]))
        adjusted[index] = running
    return adjusted


def _omnibus(ranks: np.ndarray) -> dict[str, Any]:
    """Friedman chi-square (with scipy's tie correction) and the Iman-Davenport F, with their p-values."""
    n, k = ranks.shape
    degrees = {"friedman_df": k - 1, "iman_davenport_df": [k - 1, (k - 1) * (n - 1)]}
    rank_sums = ranks.sum(axis=0)
    tie_term = 0.0
    for row in ranks:
        _, counts = np.unique(row, return_counts=True)
        tie_term += float(np.sum(counts**3 - counts))
    correction = 1.0 - tie_term / (k * (k * k - 1) * n)
    if correction <= 0:  # every block is one big tie: the statistic is 0/0, so report it as undefined
        nan = float("nan")
        return {
            "friedman_statistic": nan,
            "friedman_p_value": nan,
            "iman_davenport_f": nan,
            "iman_davenport_p_value": nan,
            **degrees,
        }
    chi2 = (12.0 / (k * n * (k + 1)) * float(np.sum(rank_sums**2)) - 3.0 * n * (k + 1)) / correction
    chi2 = max(chi2, 0.0)  # rounding can leave -1e-15 when all rank sums are equal
    denominator = n * (k - 1) - chi2
    if denominator <= 1e-12 * n * k:  # perfect agreement of every block: F is infinite
        f_stat, f_p = math.inf, 0.0
    else:
        f_stat = (n - 1) * chi2 / denominator
        f_p = float(stats.f.sf(f_stat, k - 1, (k - 1) * (n - 1)))
    return {
        "friedman_statistic": float(chi2),
        "friedman_p_value": float(stats.chi2.sf(chi2, k - 1)),
        "iman_davenport_f": float(f_stat),
        "iman_davenport_p_value": f_p,
        **degrees,
    }


def friedman_test(
    scores: Sequence[Sequence[float]],
    system_names: Sequence[str],
    comparisons: Sequence[Sequence[str]] | None = None,
    correction: str = "bonferroni",
    higher_is_better: bool = True,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
) -> dict[str, Any]:
    """Friedman rank sums of k systems over n blocks, with exact pairwise p-values for the requested pairs.

    ``scores[b][s]`` is the score of system ``system_names[s]`` on test set ``b``. Within each block, rank 1 is
    the best system (highest score, or lowest with ``higher_is_better=False``) and ties share the average rank.

    Each pair (a, b) in ``comparisons`` gets ``rank_sum_diff = R_a - R_b`` (negative: a ranks better), its exact
    two-sided p-value P(|D| >= |R_a - R_b|) and the p-value corrected over the number of comparisons actually
    requested (``bonferroni`` multiplies by it, capped at 1; ``holm`` is the step-down version; ``none``).
    ``critical_differences[alpha]`` is the smallest rank-sum difference that is significant at ``alpha`` for
    that many comparisons (alpha / m for bonferroni and holm, the latter's most stringent step), or None.

    The exact distribution assumes untied ranks, as in Eisinga et al.; ``blocks_with_ties`` reports how many
    blocks had ties, in which case the p-values are those of the untied null distribution at the observed
    difference. Raises ValueError for k < 2, n < 2, ragged rows, non-finite scores, unknown or repeated names.
    """
    if isinstance(system_names, str) or not isinstance(system_names, Sequence):
        raise ValueError("system_names must be a list of strings, one per score column")
    names = list(system_names)
    for position, name in enumerate(names):
        if not isinstance(name, str) or not name:
            raise ValueError(f"system_names[{position}] = {name!r} must be a non-empty string")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"system_names has duplicates: {duplicates}")
    k = len(names)
    if k < 2:
        raise ValueError(f"the Friedman test needs at least 2 systems, got {k}")
    matrix = _score_matrix(scores, k)
    n = matrix.shape[0]
    if n < 2:
        raise ValueError(f"the Friedman test needs at least 2 blocks (test sets), got {n}")
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {CORRECTIONS}, got {correction!r}")
    alphas = [float(alpha) for alpha in alphas]
    for alpha in alphas:
        if not 0 < alpha < 1:
            raise ValueError(f"alphas must lie in (0, 1), got {alpha!r}")
    pairs = _comparison_pairs(comparisons, names)

    ranks = stats.rankdata(-matrix if higher_is_better else matrix, method="average", axis=1)
    rank_sums = ranks.sum(axis=0)
    column = {name: index for index, name in enumerate(names)}
    differences = [float(rank_sums[column[a]] - rank_sums[column[b]]) for a, b in pairs]
    needed = [d for d in {_integer_difference(diff) for diff in differences} if 0 < d <= n * (k - 1)]
    # The critical-difference searches add a handful of evaluations near the normal guess for each alpha.
    guesses = [math.ceil(float(stats.norm.isf(alpha / 2)) * math.sqrt(n * k * (k + 1) / 6)) for alpha in alphas]
    needed += [min(max(guess, 1), n * (k - 1)) for guess in guesses for _ in range(6)]
    if needed and _convolution_pays_off(needed, k, n):
        _upper_tail_counts(k, n)  # many differences: build the whole table once, "auto" then reads from it
    p_values = [exact_rank_sum_pvalue(diff, k, n) for diff in differences]
    corrected = _corrected(p_values, correction)
    m = len(pairs)
    level_divisor = 1 if correction == "none" else m

    pairwise = []
    for (a, b), diff, p, p_corr in zip(pairs, differences, p_values, corrected, strict=True):
        better = None if diff == 0 else (a if diff < 0 else b)
        pairwise.append(
            {
                "system_a": a,
                "system_b": b,
                "rank_sum_diff": diff,
                "p_value": p,
                "p_value_corrected": p_corr,
                "better": better,
            }
        )
    return {
        "system_names": names,
        "num_blocks": n,
        "num_systems": k,
        "higher_is_better": bool(higher_is_better),
        "ranks": ranks.tolist(),
        "rank_sums": {name: float(value) for name, value in zip(names, rank_sums, strict=True)},
        "mean_ranks": {name: float(value) / n for name, value in zip(names, rank_sums, strict=True)},
        **_omnibus(ranks),
        "blocks_with_ties": int(sum(len(np.unique(row)) < k for row in ranks)),
        "correction": correction,
        "num_comparisons": m,
        "pairwise": pairwise,
        "critical_differences": {alpha: exact_critical_difference(k, n, alpha / level_divisor) for alpha in alphas},
    }


def _non_significant_groups(mean_ranks: list[float], critical_mean_rank: float | None) -> list[tuple[int, int]]:
    """Maximal runs (first, last index in sorted order) of systems whose mean ranks differ by less than the CD."""
    if critical_mean_rank is None:
        return [(0, len(mean_ranks) - 1)] if len(mean_ranks) > 1 else []
    groups: list[tuple[int, int]] = []
    for first in range(len(mean_ranks)):
        last = first
        while last + 1 < len(mean_ranks) and mean_ranks[last + 1] - mean_ranks[first] < critical_mean_rank:
            last += 1
        if last > first and not (groups and groups[-1][1] >= last):
            groups.append((first, last))
    return groups


def critical_difference_plot(result: Mapping[str, Any], path: str | Path, alpha: float | None = None) -> Path:
    """Draw a Demšar-style critical-difference diagram of mean ranks to a PNG and return its path.

    Systems sit on an axis of mean ranks (1 = best, on the left); a bar shows the exact critical difference at
    ``alpha`` (default: the first alpha of ``result``) in mean-rank units (rank-sum CD / n), and thick lines join
    systems whose mean ranks are closer than it, i.e. that this test cannot tell apart.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["mean_ranks"])
    mean_ranks = [float(result["mean_ranks"][name]) for name in names]
    k, n = int(result["num_systems"]), int(result["num_blocks"])
    differences = result["critical_differences"]
    if alpha is None:
        alpha = next(iter(differences))
    if alpha not in differences:
        raise ValueError(f"no critical difference at alpha={alpha}; result has {list(differences)}")
    critical = differences[alpha]
    comparisons = result.get("num_comparisons", "?")
    critical_mean_rank = None if critical is None else critical / n

    order = sorted(range(k), key=lambda index: mean_ranks[index])
    sorted_ranks = [mean_ranks[index] for index in order]
    left = order[: (k + 1) // 2]
    right = order[(k + 1) // 2 :]
    rows = max(len(left), len(right))

    figure, axes = plt.subplots(figsize=(max(6.0, 0.8 * k + 4), 1.6 + 0.35 * rows))
    axes.set_xlim(0.5, k + 0.5)
    axes.set_ylim(-(rows + 1.5), 2.0)
    axes.axis("off")
    axes.hlines(0, 1, k, color="black", linewidth=1)
    for tick in range(1, k + 1):
        axes.vlines(tick, 0, 0.15, color="black", linewidth=1)
        axes.text(tick, 0.25, str(tick), ha="center", va="bottom", fontsize=9)
    for row, index in enumerate(left):
        y = -(row + 1)
        axes.plot([mean_ranks[index], mean_ranks[index], 0.9], [0, y, y], color="black", linewidth=0.8)
        axes.text(0.85, y, f"{names[index]} ({mean_ranks[index]:.2f})", ha="right", va="center", fontsize=9)
    for row, index in enumerate(reversed(right)):
        y = -(row + 1)
        axes.plot([mean_ranks[index], mean_ranks[index], k + 0.1], [0, y, y], color="black", linewidth=0.8)
        axes.text(k + 0.15, y, f"({mean_ranks[index]:.2f}) {names[index]}", ha="left", va="center", fontsize=9)
    if critical_mean_rank is not None:
        axes.hlines(1.2, 1, 1 + critical_mean_rank, color="black", linewidth=2)
        axes.vlines([1, 1 + critical_mean_rank], 1.1, 1.3, color="black", linewidth=1)
        axes.text(
            1 + critical_mean_rank + 0.1,
            1.2,
            f"CD = {critical} rank sum = {critical_mean_rank:.2f} mean rank"
            f" (alpha {alpha}, {comparisons} comparison(s))",
            ha="left",
            va="center",
            fontsize=9,
        )
    else:
        axes.text(
            1,
            1.2,
            f"no difference can be significant at alpha {alpha} ({comparisons} comparison(s))",
            ha="left",
            va="bottom",
            fontsize=9,
        )
    for depth, (first, last) in enumerate(_non_significant_groups(sorted_ranks, critical_mean_rank)):
        y = -0.3 - 0.2 * depth
        axes.hlines(y, sorted_ranks[first] - 0.03, sorted_ranks[last] + 0.03, color="black", linewidth=3)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=150)
    plt.close(figure)
    return path


# ---------------------------------------------------------------------------------------------------------------
# The evaluate module
# ---------------------------------------------------------------------------------------------------------------

_FEATURES = {
    "default": datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
    "friedman": datasets.Features({"scores": datasets.Sequence(datasets.Value("float64"))}),
}


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ErcMetrics(evaluate.Metric):
    """The ``evaluate`` face of this file: config ``default`` scores classifiers, ``friedman`` compares them."""

    def _info(self) -> evaluate.MetricInfo:
        if self.config_name not in _FEATURES:
            raise ValueError(f"unknown config {self.config_name!r}; erc_metrics has {sorted(_FEATURES)}")
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=_FEATURES[self.config_name],
            reference_urls=["https://doi.org/10.1186/s12859-017-1486-2"],
        )

    def _compute(
        self,
        predictions: list[int] | None = None,
        references: list[int] | None = None,
        scores: list[list[float]] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        if self.config_name == "friedman":
            return friedman_test(scores, **kwargs)
        if scores is not None:  # evaluate would pass it through silently; it belongs to the other config
            raise ValueError('scores= is an input of the "friedman" config: evaluate.load(path, "friedman")')
        return classification_scores(predictions, references, **kwargs)
