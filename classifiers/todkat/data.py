"""Dialogue-level examples for TODKAT: one example per dialogue, one label per turn.

Why dialogue-level: TODKAT decodes the label sequence of a whole dialogue, so an example holds every utterance
(tokenised separately, truncated to ``max_length``), the per-turn labels (``-1`` unlabelled context
utterances become ``-100``: they stay in the input as context and are ignored by loss and metric) and, when a
knowledge provider is configured, the embeddings of the selected relation sentences per turn.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .knowledge import RELATIONS, default_retriever, make_provider, select_knowledge

IGNORE_INDEX = -100
UNLABELLED = -1


def _knowledge_table(dialogues: Any, options: dict[str, Any]) -> tuple[Any, int]:
    """Selected knowledge embeddings for every distinct utterance of every split, or (None, 0) for ``none``."""
    provider = make_provider(options.get("knowledge", "none"), options.get("knowledge_cache"), **options)
    if provider is None:
        return None, 0
    from erc_synth.dataset_scripts.core.errors import ErcSynthError

    from .knowledge import SentenceEmbedder

    retriever = options.get("retriever") or default_retriever()
    if retriever is None:
        raise ErcSynthError("knowledge retrieval needs a sentence encoder: set the `retriever` option")
    embedder = SentenceEmbedder(retriever)
    utterances = [u for split in dialogues.values() for dialogue in split["utterances"] for u in dialogue]
    return select_knowledge(utterances, provider, embedder), embedder.dim


def prepare(dialogues: Any, tokenizer: Any, **options: Any) -> Any:
    """``dialogues`` DatasetDict (project schema) -> DatasetDict of model inputs, one row per dialogue."""
    from datasets import DatasetDict

    max_length = int(options.get("max_length", 64))
    knowledge, knowledge_dim = _knowledge_table(dialogues, options)

    def encode(row: dict[str, Any]) -> dict[str, Any]:
        ids = tokenizer(list(row["utterances"]), truncation=True, max_length=max_length)["input_ids"]
        out = {
            "input_ids": ids,
            "labels": [IGNORE_INDEX if e == UNLABELLED else int(e) for e in row["emotions"]],
            "length": sum(len(x) for x in ids),
        }
        if knowledge is not None:
            embeds, masks = [], []
            for utterance in row["utterances"]:
                vectors = [knowledge.embeddings[utterance].get(r) for r in RELATIONS]
                embeds.append([v if v is not None else [0.0] * knowledge_dim for v in vectors])
                masks.append([int(v is not None) for v in vectors])
            out["knowledge_embeds"] = embeds
            out["knowledge_mask"] = masks
        return out

    prepared = {}
    for split, data in dialogues.items():
        prepared[split] = data.map(encode, remove_columns=data.column_names, load_from_cache_file=False)
    return DatasetDict(prepared)


def collator(tokenizer: Any, **_: Any) -> Callable[[list[dict]], dict]:
    """Pads dialogues to the batch's most turns and utterances to its longest utterance; builds the masks."""
    import torch

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def collate(features: list[dict]) -> dict[str, Any]:
        batch = len(features)
        turns = max(len(f["input_ids"]) for f in features)
        length = max(len(u) for f in features for u in f["input_ids"])
        input_ids = torch.full((batch, turns, length), pad_id, dtype=torch.long)
        attention_mask = torch.zeros((batch, turns, length), dtype=torch.long)
        turn_mask = torch.zeros((batch, turns), dtype=torch.long)
        labels = torch.full((batch, turns), IGNORE_INDEX, dtype=torch.long)
        for b, feature in enumerate(features):
            for t, ids in enumerate(feature["input_ids"]):
                input_ids[b, t, : len(ids)] = torch.tensor(ids, dtype=torch.long)
                attention_mask[b, t, : len(ids)] = 1
            turn_mask[b, : len(feature["input_ids"])] = 1
            labels[b, : len(feature["labels"])] = torch.tensor(feature["labels"], dtype=torch.long)
        out = {"input_ids": input_ids, "attention_mask": attention_mask, "turn_mask": turn_mask, "labels": labels}
        if "knowledge_embeds" in features[0]:
            relations = len(features[0]["knowledge_embeds"][0])
            dim = len(features[0]["knowledge_embeds"][0][0])
            embeds = torch.zeros((batch, turns, relations, dim), dtype=torch.float32)
            mask = torch.zeros((batch, turns, relations), dtype=torch.long)
            for b, feature in enumerate(features):
                count = len(feature["knowledge_embeds"])
                embeds[b, :count] = torch.tensor(feature["knowledge_embeds"], dtype=torch.float32)
                mask[b, :count] = torch.tensor(feature["knowledge_mask"], dtype=torch.long)
            out["knowledge_embeds"] = embeds
            out["knowledge_mask"] = mask
        return out

    return collate
