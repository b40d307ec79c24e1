"""The topic layer: a variational topic module inserted between two layers of a pretrained encoder.

Why a layer inside the encoder rather than a topic model beside it: TODKAT (Zhu et al., ACL 2021, section 3.1)
makes the language model itself topic-aware. The hidden states of layer ``l`` are attention-pooled into one
vector per utterance, a VAE encoder maps it to a Gaussian posterior over a latent topic vector ``z``, and a
decoder maps ``z`` back into the encoder's space as one extra "topic token" that the upper layers ``l+1..L``
attend to. The KL term to the standard normal prior keeps ``z`` a smooth latent code. The whole thing is
pre-trained by masked LM on a dataset's utterances (:class:`TopicMaskedLM`, ``erc-synth train-topics``), then
reused by the classifier, which reads ``z`` as the utterance's topic vector.

Any Hugging Face encoder whose base model exposes ``embeddings`` and ``encoder.layer`` (BERT, RoBERTa,
XLM-R, ELECTRA, MiniLM...) can be split this way; others are refused with a clear error.

Deliberate differences from the released code (something678/TodKat, ``topic_unsupervised_with_finetune.py``):
* the topic token stays visible to every upper layer (the released code masks it out of attention and keeps it
  for one layer only, so the MLM loss cannot shape it; the paper describes a topic-augmented LM);
* the upper layers run once (the released code runs the full encoder, then the upper half again);
* no "CLS reconstruction" term (the released code adds a log-likelihood with a positive sign to the loss, which
  rewards a worse reconstruction); the objective is the paper's: MLM + KL;
* at evaluation ``z`` is the posterior mean, so predictions are deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.masking_utils import create_bidirectional_mask
from transformers.modeling_outputs import MaskedLMOutput

from erc_synth.dataset_scripts.core.errors import ErcSynthError

#: ``model_type`` of a topic-pretrained checkpoint folder (what ``erc-synth train-topics`` writes).
TOPIC_LM_MODEL_TYPE = "todkat-topic-lm"


@dataclass
class TopicOutput:
    """What the topic layer produces for a batch of utterances (all shapes start with the utterance axis)."""

    z: torch.Tensor  # (N, topic_dim): sampled in training, the posterior mean at evaluation
    mu: torch.Tensor  # (N, topic_dim)
    logvar: torch.Tensor  # (N, topic_dim)
    kl: torch.Tensor  # (N,): KL(q(z|x) || N(0, I)) per utterance, summed over topic dimensions


class TopicLayer(nn.Module):
    """VAE over attention-pooled hidden states; returns the topic vector and the topic token for upper layers."""

    def __init__(self, hidden_size: int, topic_dim: int, inner_dim: int) -> None:
        super().__init__()
        self.pool_score = nn.Linear(hidden_size, 1)
        self.encode = nn.Sequential(nn.Linear(hidden_size, inner_dim), nn.Softplus())
        self.mu = nn.Linear(inner_dim, topic_dim)
        self.logvar = nn.Linear(inner_dim, topic_dim)
        self.decode = nn.Linear(topic_dim, hidden_size)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> tuple[TopicOutput, torch.Tensor]:
        """``hidden`` (N, L, H) and ``mask`` (N, L) of real tokens -> (topic output, topic token (N, H))."""
        scores = self.pool_score(hidden).squeeze(-1).masked_fill(~mask.bool(), torch.finfo(hidden.dtype).min)
        weights = torch.softmax(scores, dim=-1).unsqueeze(-1)
        pooled = (weights * hidden).sum(dim=1)
        inner = self.encode(pooled)
        mu = self.mu(inner)
        logvar = self.logvar(inner).clamp(-10.0, 10.0)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu) if self.training else mu
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=-1)
        return TopicOutput(z=z, mu=mu, logvar=logvar, kl=kl), self.decode(z)


def encoder_layers(base_model: nn.Module) -> nn.ModuleList:
    """The transformer blocks of a base encoder, or a user error naming the unsupported architecture."""
    layers = getattr(getattr(base_model, "encoder", None), "layer", None)
    if not isinstance(layers, nn.ModuleList) or not hasattr(base_model, "embeddings"):
        raise ErcSynthError(
            f"the topic layer needs an encoder with `embeddings` and `encoder.layer` (BERT/RoBERTa family); "
            f"{type(base_model).__name__} has not"
        )
    return layers


class TopicEncoder(nn.Module):
    """A base encoder run layer by layer with a :class:`TopicLayer` after layer ``topic_layer``.

    Returns the final hidden states of the utterance tokens (the topic token is dropped after the last layer,
    so token positions keep their meaning for the MLM head) and the topic output.
    """

    def __init__(self, base_model: PreTrainedModel, topic_layer: int, topic_dim: int, topic_inner_dim: int) -> None:
        super().__init__()
        layers = encoder_layers(base_model)
        if not 1 <= topic_layer < len(layers):
            raise ErcSynthError(
                f"topic_layer must be between 1 and {len(layers) - 1} for this encoder, not {topic_layer}"
            )
        self.base = base_model
        self.topic_layer_index = topic_layer
        self.topic = TopicLayer(base_model.config.hidden_size, topic_dim, topic_inner_dim)

    def _mask(self, embeds: torch.Tensor, attention_mask: torch.Tensor) -> Any:
        return create_bidirectional_mask(config=self.base.config, inputs_embeds=embeds, attention_mask=attention_mask)

    def _run(self, layers: Any, hidden: torch.Tensor, mask: Any) -> torch.Tensor:
        for layer in layers:
            out = layer(hidden, mask)
            hidden = out[0] if isinstance(out, tuple) else out
        return hidden

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, TopicOutput]:
        """``input_ids``/``attention_mask`` (N, L) -> (hidden states (N, L, H), topic output)."""
        kwargs = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        hidden = self.base.embeddings(input_ids=input_ids, **kwargs)
        layers = encoder_layers(self.base)
        hidden = self._run(layers[: self.topic_layer_index], hidden, self._mask(hidden, attention_mask))
        topic, token = self.topic(hidden, attention_mask)
        hidden = torch.cat([hidden, token.unsqueeze(1)], dim=1)
        extended = torch.cat([attention_mask, attention_mask.new_ones(attention_mask.shape[0], 1)], dim=1)
        hidden = self._run(layers[self.topic_layer_index :], hidden, self._mask(hidden, extended))
        return hidden[:, :-1], topic


def base_config_dict(config: PretrainedConfig) -> dict[str, Any]:
    """A base encoder config as a plain dict (stored inside the TODKAT configs so checkpoints are self-contained)."""
    return config.to_dict()


def base_config_from_dict(data: dict[str, Any]) -> PretrainedConfig:
    """Rebuild the base encoder config stored by :func:`base_config_dict`."""
    data = dict(data)
    return AutoConfig.for_model(data.pop("model_type"), **data)


def build_topic_encoder(config: PretrainedConfig) -> TopicEncoder:
    """A randomly initialised :class:`TopicEncoder` from a TODKAT config (topic LM or classifier).

    Both configs carry ``encoder_config``, ``topic_layer``, ``topic_dim`` and ``topic_inner_dim``; the base
    encoder's pretrained weights are loaded over it afterwards (``from_encoder`` / ``from_pretrained``).
    """
    base_model = AutoModel.from_config(base_config_from_dict(config.encoder_config))
    return TopicEncoder(base_model, config.topic_layer, config.topic_dim, config.topic_inner_dim)


def init_added_module(module: nn.Module) -> None:
    """BERT-style initialisation of a layer a TODKAT model adds (linear: N(0, 0.02), zero bias; LayerNorm: 1, 0).

    Used by the models' ``_init_weights``; the base encoder's weights are loaded over whatever this sets.
    """
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class TopicLMConfig(PretrainedConfig):
    """Config of the topic-augmented masked LM: the base encoder's config plus the topic layer's sizes."""

    model_type = TOPIC_LM_MODEL_TYPE

    def __init__(
        self,
        encoder_config: dict[str, Any] | None = None,
        topic_layer: int = 1,
        topic_dim: int = 50,
        topic_inner_dim: int = 256,
        kl_weight: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.encoder_config = encoder_config or {}
        self.topic_layer = topic_layer
        self.topic_dim = topic_dim
        self.topic_inner_dim = topic_inner_dim
        self.kl_weight = kl_weight


class TopicMaskedLM(PreTrainedModel):
    """The topic-augmented encoder with an MLM head; trained by ``erc-synth train-topics``.

    The MLM head (dense, GELU, LayerNorm, vocabulary projection) is our own rather than the checkpoint's, because
    sentence encoders such as MiniLM ship without one; it is dropped when the classifier reuses the encoder.
    """

    config_class = TopicLMConfig
    base_model_prefix = "topic_lm"

    def __init__(self, config: TopicLMConfig) -> None:
        super().__init__(config)
        self.encoder = build_topic_encoder(config)
        base_config = self.encoder.base.config
        hidden = base_config.hidden_size
        self.lm_head = nn.Sequential(
            nn.Linear(hidden, hidden), nn.GELU(), nn.LayerNorm(hidden, eps=base_config.layer_norm_eps),
            nn.Linear(hidden, base_config.vocab_size),
        )
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        """Only the modules this class adds are initialised here; the base encoder keeps its own weights."""
        init_added_module(module)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **_: Any,
    ) -> MaskedLMOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden, topic = self.encoder(input_ids, attention_mask, token_type_ids)
        logits = self.lm_head(hidden)
        loss = None
        if labels is not None:
            mlm = nn.functional.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1), ignore_index=-100)
            loss = mlm + self.config.kl_weight * topic.kl.mean()
        return MaskedLMOutput(loss=loss, logits=logits)

    @classmethod
    def from_encoder(
        cls, encoder: str, topic_layer: int | None = None, topic_dim: int = 50, topic_inner_dim: int = 256,
        kl_weight: float = 1.0,
    ) -> TopicMaskedLM:
        """Wrap a pretrained encoder (Hub id or folder): its weights are kept, the topic layer and head are new."""
        base = AutoModel.from_pretrained(encoder)
        layers = len(encoder_layers(base))
        config = TopicLMConfig(
            encoder_config=base_config_dict(base.config),
            topic_layer=topic_layer if topic_layer is not None else max(1, layers // 2),
            topic_dim=topic_dim,
            topic_inner_dim=topic_inner_dim,
            kl_weight=kl_weight,
        )
        model = cls(config)
        model.encoder.base.load_state_dict(base.state_dict())
        return model
