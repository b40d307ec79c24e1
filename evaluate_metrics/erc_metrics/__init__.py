"""Python API of the ``erc_metrics`` evaluate module, importable as ``evaluate_metrics.erc_metrics``.

The implementation lives in ``erc_metrics.py`` because ``evaluate.load`` copies that one file (and only that file)
when it loads this folder by path or from the Hub; this ``__init__`` only re-exports it for ordinary imports.
"""

from .erc_metrics import (
    CORRECTIONS,
    DEFAULT_ALPHAS,
    ErcMetrics,
    classification_scores,
    critical_difference_plot,
    exact_critical_difference,
    exact_rank_sum_pvalue,
    exact_rank_sum_pvalue_fraction,
    friedman_test,
    rank_sum_difference_distribution,
)

__all__ = [
    "CORRECTIONS",
    "DEFAULT_ALPHAS",
    "ErcMetrics",
    "classification_scores",
    "critical_difference_plot",
    "exact_critical_difference",
    "exact_rank_sum_pvalue",
    "exact_rank_sum_pvalue_fraction",
    "friedman_test",
    "rank_sum_difference_distribution",
]
