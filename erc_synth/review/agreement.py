"""Agreement figures of a review, each with its sample size and a bootstrap confidence interval.

Why Cohen's kappa for human vs label: it discounts the agreement two raters reach by chance from their own label
frequencies, so a set whose labels are mostly ``neutral`` does not look good by default. Why Krippendorff's alpha
between annotators: it takes any number of annotators and tasks that not everyone labelled.

Why a bootstrap over tasks (not annotations): annotations of one task are not independent, so whole tasks are
resampled with replacement (percentile interval, seeded: the same review gives the same interval).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 1000


def _kappa(pairs: np.ndarray, num_labels: int) -> float | None:
    from sklearn.metrics import cohen_kappa_score

    if len(pairs) == 0:
        return None
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        value = cohen_kappa_score(pairs[:, 0], pairs[:, 1], labels=list(range(num_labels)))
    return None if not np.isfinite(value) else float(value)


def _alpha(matrix: np.ndarray) -> float | None:
    import krippendorff

    if matrix.shape[1] == 0:
        return None
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            value = krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
    except ValueError:  # a single label value over all tasks: alpha is undefined
        return None
    return None if not np.isfinite(value) else float(value)


def _interval(values: list[float]) -> list[float] | None:
    if not values:
        return None
    low, high = np.quantile(values, [(1 - CONFIDENCE) / 2, 1 - (1 - CONFIDENCE) / 2])
    return [round(float(low), 4), round(float(high), 4)]


def _figure(statistic: str, value: float | None, n: int, boot: list[float], unit: str, seed: int) -> dict:
    return {"statistic": statistic, "value": None if value is None else round(value, 4), "n": n, "unit": unit,
            "ci": _interval(boot), "confidence": CONFIDENCE,
            "ci_method": f"percentile bootstrap over {unit}, {RESAMPLES} resamples, seed {seed}"}


def kappa_with_ci(pairs_by_task: Sequence[Sequence[tuple[int, int]]], num_labels: int, seed: int = 0) -> dict:
    """Cohen's kappa over every (human, other) pair, tasks resampled as wholes for the interval."""
    tasks = [np.asarray(p, dtype=int).reshape(-1, 2) for p in pairs_by_task if len(p)]
    flat = np.concatenate(tasks) if tasks else np.zeros((0, 2), dtype=int)
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(RESAMPLES if tasks else 0):
        pick = rng.integers(0, len(tasks), len(tasks))
        value = _kappa(np.concatenate([tasks[i] for i in pick]), num_labels)
        if value is not None:
            boot.append(value)
    figure = _figure("Cohen's kappa", _kappa(flat, num_labels), len(tasks), boot, "tasks", seed)
    figure["annotations"] = len(flat)
    return figure


def alpha_with_ci(labels_by_task: Sequence[dict[str, int]], seed: int = 0) -> dict | None:
    """Krippendorff's alpha (nominal) over the tasks that two or more annotators labelled; ``None`` when none did."""
    tasks = [t for t in labels_by_task if len(t) >= 2]
    if not tasks:
        return None
    annotators = sorted({a for t in tasks for a in t})
    matrix = np.full((len(annotators), len(tasks)), np.nan)
    for column, task in enumerate(tasks):
        for annotator, label in task.items():
            matrix[annotators.index(annotator), column] = label
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(RESAMPLES):
        value = _alpha(matrix[:, rng.integers(0, len(tasks), len(tasks))])
        if value is not None:
            boot.append(value)
    figure = _figure("Krippendorff's alpha (nominal)", _alpha(matrix), len(tasks), boot, "tasks", seed)
    figure["annotators"] = len(annotators)
    return figure
