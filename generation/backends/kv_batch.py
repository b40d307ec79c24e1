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

    ``attention`` is [rows, width] (1 for a real token), ``next_positions`` [rows] (each row's next position
    id), ``logits`` [rows, vocab] (the scores for each row's next token), ``seen`` [rows, vocab] (whether a
    token id occurred in the row's prompt or output: the repetition penalty's set, kept up to date with one
    scatter per step instead of being rebuilt from the history) and ``penalty`` [rows, 1] (1.0: none).
    """

    cache: DynamicCache
    attention: torch.Tensor
    next_positions: torch.Tensor
    logits: torch.Tensor
    seen: torch.Tensor
    penalty: torch.Tensor

    @classmethod
    def prefill(cls, model: Any, prompts: list[list[int]], penalties: list[float], pad_token_id: int) -> KVBatch:
        """Run the prompts through ``model`` (left padded among themselves) and keep the last-position logits."""
        device = next(model.parameters()).device
        width = max(len(ids) for ids in prompts)
        input_ids = torch.full((len(prompts), width), pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(prompts), width), dtype=torch.long)
        vocab = model.get_output_embeddings().weight.shape[0]
        seen = torch.zeros((len(prompts), vocab), dtype=torch.bool)
        for i, ids in enumerate(prompts):
            row = torch.tensor(ids)
            input_ids[i, width - len(ids) :] = row
            attention[i, width - len(ids) :] = 1
            seen[i, row] = True
        input_ids, attention = input_ids.to(device), attention.to(device)
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache(config=model.config)
        logits = model(
            input_ids=input_ids, attention_mask=attention, position_ids=positions, cache=cache, logits_to_keep=1
        ).logits[:, -1, :]
        return cls(
            cache=cache,
            attention=attention,
            next_positions=positions[:, -1] + 1,
            logits=logits,
            seen=seen.to(device),
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
        self.next_positions = torch.cat([self.next_positions, other.next_positions])
        self.logits = torch.cat([self.logits, other.logits])
        self.seen = torch.cat([self.seen, other.seen])
        self.penalty = torch.cat([self.penalty, other.penalty])

    def select(self, keep: list[int]) -> None:
        """Keep only rows ``keep`` (in that order), then cut the leading columns no kept row attends to."""
        index = torch.tensor(keep, device=self.attention.device)
        self.cache.batch_select_indices(index)
        self.attention = self.attention[index]
        self.next_positions = self.next_positions[index]
        self.logits = self.logits[index]
        self.seen = self.seen[index]
        self.penalty = self.penalty[index]
        first = int(self.attention.any(dim=0).int().argmax())
        if first > 0:
            for layer in self.cache.layers:
                layer.keys = layer.keys[:, :, first:, :]
                layer.values = layer.values[:, :, first:, :]
            self.attention = self.attention[:, first:]

    def step(self, model: Any, tokens: torch.Tensor) -> None:
        """Feed one token per row and keep the logits of the next position."""
        self.seen.scatter_(1, tokens.unsqueeze(1), True)
        self.attention = torch.cat([self.attention, self.attention.new_ones((len(self), 1))], dim=1)
        self.logits = model(
            input_ids=tokens.unsqueeze(1),
            attention_mask=self.attention,
            position_ids=self.next_positions.unsqueeze(1),
            cache=self.cache,
            logits_to_keep=1,
        ).logits[:, -1, :]
        self.next_positions = self.next_positions + 1

    def apply_repetition_penalty(self, scores: torch.Tensor) -> torch.Tensor:
        """transformers' ``RepetitionPenaltyLogitsProcessor`` for every row at once, each with its own penalty.

        The same element-wise arithmetic (divide a positive score, multiply a negative one) on the tokens the
        row has seen; a row with penalty 1.0 keeps its scores bit for bit (x * 1 and x / 1 are exact).
        """
        penalised = torch.where(scores < 0, scores * self.penalty, scores / self.penalty)
        return torch.where(self.seen, penalised, scores)


def _pad_left(tensor: torch.Tensor, width: int) -> torch.Tensor:
    """Zero-pad ``tensor``'s sequence axis (dim 1 of a mask, dim 2 of a [batch, heads, seq, dim] cache) on the left."""
    axis = 1 if tensor.dim() == 2 else 2
    missing = width - tensor.shape[axis]
    if missing == 0:
        return tensor
    shape = list(tensor.shape)
    shape[axis] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim=axis)
