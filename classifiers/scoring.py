"""Scores from the project's ``erc_metrics`` module, for the Trainer and for the experiment tables.

Why a thin adapter: the metric lives in ``evaluate_metrics/erc_metrics`` as a self-contained ``evaluate``
module; importing its functions directly avoids ``evaluate``'s per-call overhead inside the training loop while
computing exactly what ``evaluate.load(metric_path())`` computes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .architectures import IGNORE_INDEX, Architecture


def metric_functions():
    """``(classification_scores, friedman_test, critical_difference_plot)`` from the project's metric."""
    try:
        from erc_synth.evaluate_metrics.erc_metrics import (
            classification_scores,
            critical_difference_plot,
            friedman_test,
        )
    except ImportError:
        from erc_synth.evaluate_metrics.erc_metrics.erc_metrics import (
            classification_scores,
            critical_difference_plot,
            friedman_test,
        )
    return classification_scores, friedman_test, critical_difference_plot


def score_logits(architecture: Architecture, logits: Any, labels: Any, label_names: Sequence[str]) -> dict:
    """Full classification scores of model outputs; ``IGNORE_INDEX`` labels are left out."""
    classification_scores = metric_functions()[0]
    predictions, references = architecture.predictions_to_pairs(logits, labels)
    return classification_scores(predictions.tolist(), references.tolist(), label_names=list(label_names),
                                 labels=list(range(len(label_names))), ignore_index=IGNORE_INDEX)


def trainer_metrics(architecture: Architecture, label_names: Sequence[str]):
    """A ``compute_metrics`` for the Trainer: the scalar scores (best checkpoint is chosen by weighted F1)."""

    def compute_metrics(eval_prediction) -> dict[str, float]:
        scores = score_logits(architecture, eval_prediction.predictions, eval_prediction.label_ids, label_names)
        return {key: scores[key] for key in ("weighted_f1", "macro_f1", "micro_f1", "accuracy")}

    return compute_metrics
