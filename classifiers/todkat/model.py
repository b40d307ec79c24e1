"""The TODKAT classifier: topic-aware utterance encoder, knowledge attention, transformer encoder-decoder fusion.

Why this shape (Zhu et al., ACL 2021, sections 3.3-3.4): a dialogue is labelled as a sequence. Each utterance
is encoded by the topic-augmented encoder (:mod:`.topic`) into a pooled representation ``u_i`` and a topic
vector ``z_i``. A transformer encoder reads ``[u_i; z_i]`` over the whole dialogue. The decoder input of turn
``i`` is the same projection plus the knowledge vector ``k_i`` - an attention over the selected relation sentences
(xIntent/xReact/oReact) whose query is the topic-aware utterance representation - and the decoder runs with a
causal mask (the label of turn ``i`` is decoded from turns ``<= i`` of the decoder stream) while attending to
the whole encoded dialogue. A linear head labels every turn.

Loss = cross-entropy over labelled turns (``-100`` ignored: padding turns and unlabelled context utterances)
+ ``kl_weight`` x the mean KL of the topic posteriors of the real utterances.

Without knowledge (the ablation, ``knowledge_dim=0``) the decoder input is the utterance projection alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.utils import ModelOutput

from .topic import build_topic_encoder, init_added_module

IGNORE_INDEX = -100


class TodkatConfig(PretrainedConfig):
    """Everything needed to rebuild a TODKAT model, the base encoder's config included (self-contained folder)."""

    model_type = "todkat"
    #: The Trainer's prediction loop keeps only ``logits`` (the loss terms are scalars, logged by the trainer).
    keys_to_ignore_at_inference: ClassVar[list[str]] = ["ce", "kl"]

    def __init__(
        self,
        encoder_config: dict[str, Any] | None = None,
        topic_layer: int = 1,
        topic_dim: int = 50,
        topic_inner_dim: int = 256,
        knowledge_dim: int = 0,
        num_relations: int = 3,
        fusion_layers: int = 2,
        fusion_heads: int = 4,
        fusion_dropout: float = 0.1,
        kl_weight: float = 0.01,
        pooling: str = "first",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.encoder_config = encoder_config or {}
        self.topic_layer = topic_layer
        self.topic_dim = topic_dim
        self.topic_inner_dim = topic_inner_dim
        self.knowledge_dim = knowledge_dim
        self.num_relations = num_relations
        self.fusion_layers = fusion_layers
        self.fusion_heads = fusion_heads
        self.fusion_dropout = fusion_dropout
        self.kl_weight = kl_weight
        self.pooling = pooling


@dataclass
class TodkatOutput(ModelOutput):
    """``logits`` (batch, turns, labels); ``loss`` = ``ce`` + kl_weight x ``kl`` when labels are given."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    ce: torch.Tensor | None = None
    kl: torch.Tensor | None = None


def sinusoidal_positions(length: int, dim: int, device: torch.device) -> torch.Tensor:
    """Fixed turn-position encodings: no maximum dialogue length (IEMOCAP dialogues exceed 100 turns)."""
    position = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, device=device)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq)[:, : dim // 2]
    return table


class TodkatForDialogueEmotion(PreTrainedModel):
    """Labels every utterance of a batch of dialogues: logits (batch, turns, num_labels)."""

    config_class = TodkatConfig
    base_model_prefix = "todkat"

    def __init__(self, config: TodkatConfig) -> None:
        super().__init__(config)
        self.topic_encoder = build_topic_encoder(config)
        hidden = self.topic_encoder.base.config.hidden_size
        heads = config.fusion_heads if hidden % config.fusion_heads == 0 else 1
        self.utterance_projection = nn.Linear(hidden + config.topic_dim, hidden)
        self.fusion_encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(hidden, heads, 4 * hidden, config.fusion_dropout, batch_first=True),
            config.fusion_layers,
            enable_nested_tensor=False,
        )
        self.fusion_decoder = nn.TransformerDecoder(
            nn.TransformerDecoderLayer(hidden, heads, 4 * hidden, config.fusion_dropout, batch_first=True),
            config.fusion_layers,
        )
        if config.knowledge_dim:
            self.knowledge_projection = nn.Linear(config.knowledge_dim, hidden)
            self.knowledge_query = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(config.fusion_dropout)
        self.classifier = nn.Linear(hidden, config.num_labels)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        """New layers only; the base encoder's weights are loaded over whatever this sets."""
        init_added_module(module)

    def _encode_utterances(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, turn_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode the real utterances only: returns u (B, T, H), z (B, T, K) and per-utterance KL (N,)."""
        batch, turns, length = input_ids.shape
        real = turn_mask.bool().view(-1)
        ids = input_ids.view(-1, length)[real]
        mask = attention_mask.view(-1, length)[real]
        types = token_type_ids.view(-1, length)[real] if token_type_ids is not None else None
        hidden, topic = self.topic_encoder(ids, mask, types)
        if self.config.pooling == "mean":
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
        else:
            pooled = hidden[:, 0]
        u = hidden.new_zeros(batch * turns, hidden.shape[-1])
        z = hidden.new_zeros(batch * turns, topic.z.shape[-1])
        u[real] = pooled
        z[real] = topic.z.to(hidden.dtype)
        return u.view(batch, turns, -1), z.view(batch, turns, -1), topic.kl

    def _knowledge(self, query: torch.Tensor, embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Attention of each turn over its relation sentences: (B, T, H) query, (B, T, R, E) -> (B, T, H)."""
        keys = self.knowledge_projection(embeds.to(query.dtype))
        scores = torch.einsum("bth,btrh->btr", self.knowledge_query(query), keys) / math.sqrt(keys.shape[-1])
        has_any = mask.bool().any(-1, keepdim=True)
        scores = scores.masked_fill(~mask.bool(), torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=-1) * has_any
        return torch.einsum("btr,btrh->bth", weights, keys)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        turn_mask: torch.Tensor,
        labels: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        knowledge_embeds: torch.Tensor | None = None,
        knowledge_mask: torch.Tensor | None = None,
        **_: Any,
    ) -> TodkatOutput:
        """``input_ids``/``attention_mask`` (B, T, L), ``turn_mask`` (B, T), ``labels`` (B, T) with -100."""
        u, z, kl = self._encode_utterances(input_ids, attention_mask, turn_mask, token_type_ids)
        source = self.utterance_projection(torch.cat([u, z], dim=-1))
        source = source + sinusoidal_positions(source.shape[1], source.shape[2], source.device).to(source.dtype)
        padding = ~turn_mask.bool()
        memory = self.fusion_encoder(self.dropout(source), src_key_padding_mask=padding)
        target = source
        if self.config.knowledge_dim and knowledge_embeds is not None:
            target = source + self._knowledge(source, knowledge_embeds, knowledge_mask)
        turns = source.shape[1]
        causal = torch.ones(turns, turns, dtype=torch.bool, device=source.device).triu(1)
        decoded = self.fusion_decoder(
            self.dropout(target), memory, tgt_mask=causal, tgt_key_padding_mask=padding,
            memory_key_padding_mask=padding, tgt_is_causal=True,
        )
        logits = self.classifier(self.dropout(decoded))
        kl_mean = kl.mean() if kl.numel() else logits.new_zeros(())
        loss = ce = None
        if labels is not None:
            ce = nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE_INDEX
            ) if (labels != IGNORE_INDEX).any() else logits.sum() * 0.0
            loss = ce + self.config.kl_weight * kl_mean
        return TodkatOutput(loss=loss, logits=logits, ce=ce, kl=kl_mean)
