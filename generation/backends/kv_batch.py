"""The device state of a continuously refilled decoding batch: one KV cache, mask, positions and penalty record.

Why a batch that rows join and leave: decoding a static batch to completion makes every slot wait for the
slowest row, and a slot freed by a short dialogue stays empty. Here newcomers are prefilled on their own and
their cache is merged into the running one: both sides are padded on the left to the same length (padding is
masked, and every row keeps its own position ids, so a row's attention sees exactly its own tokens), then
concatenated on the batch dimension. Finished rows are dropped, and leading columns that every remaining row
masks are cut, so the cache does not keep the padding of rows that left.

Only ``DynamicLayer`` caches (full attention) are merged: a sliding-window layer keeps a per-layer window
whose left padding would shift, so ``mergeable`` is False and the caller admits newcomers only into an
empty batch (static batching for those models).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer


@dataclass
class KVBatch:
    """Per-row tensors of the running batch, row ``i`` of each belonging to the same request.

    ``attention`` is [rows, width] (1 for a real token), ``ids`` [rows, width] (the token id of each cache
    column; a padding column repeats one of the row's own ids, so the set of ids per row is exactly its prompt
    and output: the repetition penalty's set, grown by one column per step, padded, merged and trimmed with
    the cache instead of being rebuilt from the history), ``next_positions`` [rows] (each row's next position
    id), ``logits`` [rows, vocab] (the scores for each row's next token) and ``penalty`` [rows, 1] (1.0: none).
    """

    cache: DynamicCache
    attention: torch.Tensor
    ids: torch.Tensor
    next_positions: torch.Tensor
    logits: torch.Tensor
    penalty: torch.Tensor

    @classmethod
    def prefill(cls, model: Any, prompts: list[list[int]], penalties: list[float], pad_token_id: int) -> KVBatch:
        """Run the prompts through ``model`` (left padded among themselves) and keep the last-position logits."""
        device = next(model.parameters()).device
        width = max(len(ids) for ids in prompts)
        input_ids = torch.full((len(prompts), width), pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, ids in enumerate(prompts):
            input_ids[i, : width - len(ids)] = ids[0]  # padding repeats a prompt id (masked all the same)
            input_ids[i, width - len(ids) :] = torch.tensor(ids)
            attention[i, width - len(ids) :] = 1
        input_ids, attention = input_ids.to(device), attention.to(device)
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache(config=model.config)
        logits = model(
            input_ids=input_ids, attention_mask=attention, position_ids=positions, cache=cache, logits_to_keep=1
        ).logits[:, -1, :]
        return cls(
            cache=cache,
            attention=attention,
            ids=input_ids,
            next_positions=positions[:, -1] + 1,
            logits=logits,
            penalty=torch.tensor(penalties, dtype=torch.float32, device=device).unsqueeze(1),
        )

    def __len__(self) -> int:
        return self.attention.shape[0]

    @property
    def mergeable(self) -> bool:
        """Whether another batch can join this one (full-attention cache layers only)."""
        return all(type(layer) is DynamicLayer for layer in self.cache.layers)

    def merge(self, other: KVBatch) -> None:
        """Append ``other``'s rows after this batch's rows (left-pad the shorter side's cache and mask)."""
        width = max(self.attention.shape[1], other.attention.shape[1])
        for mine, theirs in zip(self.cache.layers, other.cache.layers, strict=True):
            mine.keys = torch.cat([_pad_left(mine.keys, width), _pad_left(theirs.keys, width)], dim=0)
            mine.values = torch.cat([_pad_left(mine.values, width), _pad_left(theirs.values, width)], dim=0)
        self.attention = torch.cat([_pad_left(self.attention, width), _pad_left(other.attention, width)], dim=0)
        self.ids = torch.cat([_pad_ids(self.ids, width), _pad_ids(other.ids, width)], dim=0)
        self.next_positions = torch.cat([self.next_positions, other.next_positions])
        self.logits = torch.cat([self.logits, other.logits])
        self.penalty = torch.cat([self.penalty, other.penalty])

    def select(self, keep: list[int]) -> None:
        """Keep only rows ``keep`` (in that order), then cut the leading columns no kept row attends to."""
        index = torch.tensor(keep, device=self.attention.device)
        self.cache.batch_select_indices(index)
        self.attention = self.attention[index]
        self.next_positions = self.next_positions[index]
        self.ids = self.ids[index]
        self.logits = self.logits[index]
        self.penalty = self.penalty[index]
        first = int(self.attention.any(dim=0).int().argmax())
        if first > 0:
            for layer in self.cache.layers:
                layer.keys = layer.keys[:, :, first:, :]
                layer.values = layer.values[:, :, first:, :]
            self.attention = self.attention[:, first:]
            self.ids = self.ids[:, first:]

    def step(self, model: Any, tokens: torch.Tensor) -> None:
        """Feed one token per row and keep the logits of the next position."""
        self.ids = torch.cat([self.ids, tokens.unsqueeze(1)], dim=1)
        self.attention = torch.cat([self.attention, self.attention.new_ones((len(self), 1))], dim=1)
        self.logits = model(
            input_ids=tokens.unsqueeze(1),
            attention_mask=self.attention,
            position_ids=self.next_positions.unsqueeze(1),
            cache=self.cache,
            logits_to_keep=1,
        ).logits[:, -1, :]
        self.next_positions = self.next_positions + 1

    def apply_repetition_penalty(self, scores: torch.Tensor, rows: torch.Tensor | None = None) -> None:
        """transformers' ``RepetitionPenaltyLogitsProcessor`` on ``rows`` (default all) at once, in place.

        The same gather, element-wise arithmetic (divide a positive score, multiply a negative one) and
        scatter over each row's ids, each row with its own penalty; a repeated id writes the same value twice.
        Its cost follows the rows' lengths, not the vocabulary.
        """
        ids, penalty = (self.ids, self.penalty) if rows is None else (self.ids[rows], self.penalty[rows])
        target = scores if rows is None else scores[rows]
        picked = target.gather(1, ids)
        target.scatter_(1, ids, torch.where(picked < 0, picked * penalty, picked / penalty))
        if rows is not None:
            scores[rows] = target


def _pad_ids(ids: torch.Tensor, width: int) -> torch.Tensor:
    """Left-pad a [rows, columns] id matrix with each row's own first id (no new id enters its set)."""
    missing = width - ids.shape[1]
    if missing == 0:
        return ids
    return torch.cat([ids[:, :1].expand(-1, missing), ids], dim=1)


def _pad_left(tensor: torch.Tensor, width: int) -> torch.Tensor:
    """Zero-pad ``tensor``'s sequence axis (dim 1 of a mask, dim 2 of a [batch, heads, seq, dim] cache) on the left."""
    axis = 1 if tensor.dim() == 2 else 2
    missing = width - tensor.shape[axis]
    if missing == 0:
        return tensor
    shape = list(tensor.shape)
    shape[axis] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim=axis)
