"""Building a TODKAT classifier from an encoder, or from a topic-pretrained checkpoint, and reloading it.

Why two starting points: the paper pre-trains the topic layer by masked LM on each dataset before the
classifier is trained (``erc-synth train-topics``). Passing that folder as ``--encoder`` reuses its encoder and
topic layer; passing a plain encoder (Hub id or folder) starts the topic layer from scratch, which is what the
smoke experiment does to stay within minutes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .model import TodkatConfig, TodkatForDialogueEmotion
from .topic import TOPIC_LM_MODEL_TYPE, TopicMaskedLM, base_config_dict, encoder_layers


def _is_topic_checkpoint(encoder: str) -> bool:
    config = Path(encoder) / "config.json"
    if not config.is_file():
        return False
    return json.loads(config.read_text(encoding="utf-8")).get("model_type") == TOPIC_LM_MODEL_TYPE


def _knowledge_dim(options: dict[str, Any]) -> int:
    """The retriever's embedding size when a knowledge provider is configured, else 0 (the ablation)."""
    if options.get("knowledge", "none") in (None, "none"):
        return 0
    from transformers import AutoConfig

    from erc_synth.dataset_scripts.core.errors import ErcSynthError

    from .knowledge import default_retriever

    retriever = options.get("retriever") or default_retriever()
    if retriever is None:
        raise ErcSynthError("knowledge retrieval needs a sentence encoder: set the `retriever` option")
    return int(AutoConfig.from_pretrained(retriever).hidden_size)


def build_model(encoder: str, num_labels: int, label_names: list[str] | tuple[str, ...], **options: Any):
    """A new TODKAT classifier whose utterance encoder (and topic layer, if pretrained) come from ``encoder``."""
    from transformers import AutoModel

    topic_state = None
    if _is_topic_checkpoint(str(encoder)):
        topic_lm = TopicMaskedLM.from_pretrained(encoder)
        base, topic_state = topic_lm.encoder.base, topic_lm.encoder.topic.state_dict()
        topic_layer, topic_dim = topic_lm.config.topic_layer, topic_lm.config.topic_dim
        topic_inner_dim = topic_lm.config.topic_inner_dim
    else:
        base = AutoModel.from_pretrained(encoder)
        topic_layer = options.get("topic_layer") or max(1, len(encoder_layers(base)) // 2)
        topic_dim = int(options.get("topic_dim", 50))
        topic_inner_dim = int(options.get("topic_inner_dim", 256))
    config = TodkatConfig(
        encoder_config=base_config_dict(base.config),
        topic_layer=topic_layer,
        topic_dim=topic_dim,
        topic_inner_dim=topic_inner_dim,
        knowledge_dim=_knowledge_dim(options),
        fusion_layers=int(options.get("fusion_layers", 2)),
        fusion_heads=int(options.get("fusion_heads", 4)),
        kl_weight=float(options.get("kl_weight", 0.01)),
        pooling=options.get("pooling", "first"),
        num_labels=num_labels,
        id2label=dict(enumerate(label_names)),
        label2id={name: i for i, name in enumerate(label_names)},
    )
    model = TodkatForDialogueEmotion(config)
    model.topic_encoder.base.load_state_dict(base.state_dict())
    if topic_state is not None:
        model.topic_encoder.topic.load_state_dict(topic_state)
    return model


def load_model(path: str) -> TodkatForDialogueEmotion:
    """Reload a classifier saved with ``save_pretrained``."""
    return TodkatForDialogueEmotion.from_pretrained(path)
