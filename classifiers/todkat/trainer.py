"""The TODKAT Trainer: its ``compute_loss`` combines cross-entropy and the weighted topic KL, and logs both.

Why a custom ``compute_loss``: the objective has two terms of different nature (classification and the
variational prior of the topic layer); logging them separately is the only way to see whether the KL term
dominates (posterior collapse or a too-large ``kl_weight``) while the summed loss still looks healthy.
Each term is a per-batch mean, so the Trainer's gradient-accumulation scaling applies unchanged.
"""

from __future__ import annotations

from typing import Any

from transformers import Trainer


class TodkatTrainer(Trainer):
    """``Trainer`` whose loss is ``ce + kl_weight * kl``; ``train_ce`` and ``train_kl`` are added to the logs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._terms: dict[str, list[float]] = {"train_ce": [], "train_kl": []}

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        outputs = model(**inputs)
        if outputs.ce is None:
            raise ValueError("TODKAT needs `labels` in the batch to compute its loss")
        kl_weight = self.accelerator.unwrap_model(model).config.kl_weight
        loss = outputs.ce + kl_weight * outputs.kl
        if model.training:
            self._terms["train_ce"].append(float(outputs.ce.detach()))
            self._terms["train_kl"].append(float(outputs.kl.detach()))
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:
            for name, values in self._terms.items():
                if values:
                    logs[name] = round(sum(values) / len(values), 4)
                    values.clear()
        super().log(logs, start_time)
