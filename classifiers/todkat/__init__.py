"""TODKAT (Zhu et al., ACL 2021): topic-driven and knowledge-aware transformer for dialogue emotion detection.

The architecture object the trainer and the experiment runner use (see ``classifiers.architectures``):
examples are whole dialogues, logits are ``(batch, turns, num_labels)`` and labels ``(batch, turns)`` padded with
``-100``, so the registry's default ``utterance_pairs`` maps predictions back to utterances.

Pieces: :mod:`.topic` (topic layer inside the encoder, masked-LM pre-training), :mod:`.knowledge` (COMET /
JSONL / none providers, disk cache, SBERT-style retrieval), :mod:`.model` (encoder-decoder fusion and loss),
:mod:`.data` (dialogue examples and collator), :mod:`.trainer` (``compute_loss`` with CE + weighted KL),
:mod:`.training` (``train-topics``), :mod:`.cli`.

Deliberate differences from the paper and from the released code are listed in each module's docstring and in
``docs/readme/todkat.md``.
"""

from __future__ import annotations

from classifiers.architectures import Architecture

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
        "max_utterance_length": 64,
        "knowledge": "none",
        "knowledge_cache": None,
        "retriever": None,
        "topic_dim": 50,
        "kl_weight": 0.01,
        "fusion_layers": 2,
        "fusion_heads": 4,
        "pooling": "first",
    },
    reference_hyperparameters={"learning_rate": 2e-5, "per_device_train_batch_size": 2},
    description="Topic-driven, knowledge-aware transformer labelling every utterance of a dialogue (Zhu et al., 2021)",
)

__all__ = ["ARCHITECTURE", "TodkatTrainer", "build_model", "collator", "load_model", "prepare"]
