"""Example mapping and batch padding shared by the utterance-level architectures (EmoBERTa, CoMPM).

Why one place: both turn every split of a dialogues ``DatasetDict`` into one example per utterance with the same
``datasets.map`` call, and both collators pad ``input_ids`` to the batch's longest example with an attention
mask and stack the labels the same way; CoMPM only adds its speaker-memory tensors. ``torch`` and ``datasets``
are imported inside the functions so that importing an architecture stays cheap (``erc-synth --help``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def map_splits(
    dialogues: Mapping[str, Any], examples: Callable[..., dict], *, batch_size: int, fn_kwargs: dict[str, Any],
    name: str,
):
    """Apply the batched ``examples`` function to every split (replacing its columns); a ``DatasetDict``.

    The cache is bypassed on purpose: the inputs depend on tokenizer and options that the cache key cannot see.
    """
    from datasets import DatasetDict

    prepared = {}
    for split, dataset in dialogues.items():
        prepared[split] = dataset.map(
            examples,
            batched=True,
            batch_size=batch_size,
            remove_columns=dataset.column_names,
            fn_kwargs=fn_kwargs,
            load_from_cache_file=False,
            desc=f"{name} inputs ({split})",
        )
    return DatasetDict(prepared)


def pad_token_id(tokenizer) -> int:
    """The tokenizer's padding id (0 for tokenizers without one: masked out anyway)."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0


def pad_input_ids(features: list[dict], pad_id: int, longest: int) -> dict[str, torch.Tensor]:
    """``input_ids`` right-padded to ``longest`` with ``pad_id`` and the matching ``attention_mask``."""
    import torch

    input_ids = torch.full((len(features), longest), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(features), longest), dtype=torch.long)
    for row, feature in enumerate(features):
        ids = feature["input_ids"]
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        attention_mask[row, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def add_labels(batch: dict[str, Any], features: list[dict]) -> dict[str, Any]:
    """Add the ``labels`` tensor to ``batch`` when the features carry labels (prediction inputs may not)."""
    import torch

    if "labels" in features[0]:
        batch["labels"] = torch.tensor([int(f["labels"]) for f in features], dtype=torch.long)
    return batch
