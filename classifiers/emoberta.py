"""EmoBERTa-style classifier: a sequence classifier over the utterance with its past and future context.

Input (Kim and Vossen 2021, with the tokenizer's own special tokens)::

    <s> SPK: past_k ... SPK: past_1 </s></s> SPK: current </s></s> SPK: future_1 ... SPK: future_k </s>

Context utterances are added alternately, nearest first (past 1, future 1, past 2, future 2, ...), while they
fit in ``max_length``. The first utterance that does not fit is cut so that the part nearest the current
utterance stays (a past utterance loses its beginning, a future one its end) and filling stops. The current
utterance is never displaced by context; only if it alone exceeds the budget is its end cut. Empty segments keep
their separators, so the current utterance is always the second segment (the first with ``context="none"``).

Options: ``context`` = ``"past_future"`` (default), ``"past"`` or ``"none"``; ``max_length`` (512 in the
paper); ``speaker_tags`` (True).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .architectures import Architecture
from .inputs import SpecialLayout, speaker_text, special_layout, target_label
from .utterance_batches import add_labels, map_splits, pad_input_ids, pad_token_id

CONTEXTS = ("past_future", "past", "none")


def build_input_ids(
    pieces: Sequence[Sequence[int]], index: int, layout: SpecialLayout, max_length: int, context: str = "past_future"
) -> list[int]:
    """Token ids of the example for utterance ``index`` of a dialogue whose utterances tokenized to ``pieces``."""
    if context not in CONTEXTS:
        raise ValueError(f"context must be one of {CONTEXTS}, got {context!r}")
    segments = {"past_future": 2, "past": 1, "none": 0}[context]
    budget = max_length - len(layout.prefix) - segments * len(layout.middle) - len(layout.suffix)
    if budget <= 0:
        raise ValueError(f"max_length {max_length} leaves no room for the utterance")
    current = list(pieces[index])[:budget]
    budget -= len(current)
    past: list[list[int]] = []  # nearest first
    future: list[list[int]] = []
    directions = []
    if context in ("past_future", "past"):
        directions.append(("past", list(range(index - 1, -1, -1))))
    if context == "past_future":
        directions.append(("future", list(range(index + 1, len(pieces)))))
    queues = dict(directions)
    while budget > 0 and any(queues.values()):
        for side, queue in directions:
            if budget <= 0 or not queue:
                continue
            tokens = list(pieces[queue.pop(0)])
            if len(tokens) <= budget:
                (past if side == "past" else future).append(tokens)
                budget -= len(tokens)
                continue
            if side == "past":
                past.append(tokens[len(tokens) - budget:])  # keep the end, nearest the current utterance
            else:
                future.append(tokens[:budget])  # keep the beginning, nearest the current utterance
            budget = 0
    ids = list(layout.prefix)
    if context != "none":
        for tokens in reversed(past):
            ids.extend(tokens)
        ids.extend(layout.middle)
    ids.extend(current)
    if context == "past_future":
        ids.extend(layout.middle)
        for tokens in future:
            ids.extend(tokens)
    ids.extend(layout.suffix)
    return ids


def _examples(batch: dict[str, list], tokenizer, layout: SpecialLayout, options: Mapping[str, Any]) -> dict:
    out: dict[str, list] = {"dialogue_id": [], "turn": [], "input_ids": [], "labels": [], "length": []}
    for i, dialogue_id in enumerate(batch["dialogue_id"]):
        speakers, utterances, emotions = batch["speakers"][i], batch["utterances"][i], batch["emotions"][i]
        texts = [speaker_text(s, u, options["speaker_tags"]) for s, u in zip(speakers, utterances, strict=True)]
        pieces = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
        for turn, emotion in enumerate(emotions):
            label = target_label(emotion)
            if label < 0 and options["drop_unlabelled"]:
                continue  # never scored; it stays in the other examples' context
            ids = build_input_ids(pieces, turn, layout, options["max_length"], options["context"])
            out["dialogue_id"].append(dialogue_id)
            out["turn"].append(turn)
            out["input_ids"].append(ids)
            out["labels"].append(label)
            out["length"].append(len(ids))
    return out


def prepare(dialogues, tokenizer, **options):
    """One example per (labelled) utterance: ``input_ids``, ``labels``, ``length``, ``dialogue_id``, ``turn``."""
    options = ARCHITECTURE.options(options)
    layout = special_layout(tokenizer)
    return map_splits(dialogues, _examples, batch_size=64, name="emoberta",
                      fn_kwargs={"tokenizer": tokenizer, "layout": layout, "options": options})


class PaddingCollator:
    """Pads ``input_ids`` to the longest example of the batch and builds the attention mask; ignores the rest."""

    def __init__(self, tokenizer, pad_to_multiple_of: int | None = None) -> None:
        self.pad_id = pad_token_id(tokenizer)
        self.multiple = pad_to_multiple_of

    def __call__(self, features: list[dict]) -> dict:
        longest = max(len(f["input_ids"]) for f in features)
        if self.multiple:
            longest = -(-longest // self.multiple) * self.multiple
        return add_labels(pad_input_ids(features, self.pad_id, longest), features)


def collator(tokenizer, **options) -> PaddingCollator:
    return PaddingCollator(tokenizer, options.get("pad_to_multiple_of"))


def _label_maps(label_names: Sequence[str]) -> dict:
    return {"id2label": dict(enumerate(label_names)), "label2id": {n: i for i, n in enumerate(label_names)}}


def build_model(encoder: str, num_labels: int, label_names: Sequence[str], **options):
    """``AutoModelForSequenceClassification`` over any encoder checkpoint (RoBERTa in the paper)."""
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(
        encoder, num_labels=num_labels, **_label_maps(label_names)
    )


def load_model(path: str):
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(path)


ARCHITECTURE = Architecture(
    name="emoberta",
    build_model=build_model,
    load_model=load_model,
    prepare=prepare,
    collator=collator,
    example_level="utterance",
    default_options={"max_length": 512, "context": "past_future", "speaker_tags": True, "drop_unlabelled": True},
    extra_options=("pad_to_multiple_of",),
    reference_hyperparameters={
        "learning_rate": 3e-6, "batch_size": 4, "epochs": 5, "warmup_ratio": 0.2, "max_length": 512,
        "source": "Kim and Vossen 2021 (EmoBERTa), roberta-large, best checkpoint by weighted F1, mean of 5 seeds",
    },
    description="EmoBERTa-style sequence classifier with speaker-tagged past and future context",
)
