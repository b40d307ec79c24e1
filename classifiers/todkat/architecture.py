"""The TODKAT ``Architecture`` object (kept out of the package ``__init__`` so ``erc-synth --help`` stays fast)."""

from __future__ import annotations

from erc_synth.classifiers.architectures import Architecture

from .builder import build_model, load_model
from .data import collator, prepare
from .trainer import TodkatTrainer

ARCHITECTURE = Architecture(
    name="todkat",
    build_model=build_model,
    load_model=load_model,
    prepare=prepare,
    collator=collator,
    trainer_class=TodkatTrainer,
    example_level="dialogue",
    default_options={
        "max_length": 64,
        "knowledge": "none",
        "knowledge_cache": None,
        "retriever": None,
        "topic_dim": 50,
        "kl_weight": 0.01,
        "fusion_layers": 2,
        "fusion_heads": 4,
        "pooling": "first",
    },
    # Read without a default: the topic layer's place and size (from scratch), and COMET generation settings.
    extra_options=("topic_layer", "topic_inner_dim", "num_candidates", "knowledge_batch_size", "max_new_tokens",
                   "query_format"),
    reference_hyperparameters={"learning_rate": 2e-5, "per_device_train_batch_size": 2},
    description="Topic-driven, knowledge-aware transformer labelling every utterance of a dialogue (Zhu et al., 2021)",
)
