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

from typing import Any


def __getattr__(name: str) -> Any:
    """Import the architecture (torch, transformers) only when it is asked for, not when the CLI is listed."""
    if name == "ARCHITECTURE":
        from .architecture import ARCHITECTURE

        return ARCHITECTURE
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ARCHITECTURE"]
