"""Token-level helpers shared by the utterance-level architectures: special-token layout and label mapping.

Why derive the layout from the tokenizer: EmoBERTa's input (``<s> A </s></s> B </s></s> C </s>``) is RoBERTa's
pair template extended to three segments. Encoders such as MiniLM/BERT use ``[CLS] A [SEP] B [SEP]``; asking the
tokenizer how it joins a pair gives the right prefix, separator and suffix for any encoder without a table of
model families.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from erc_synth.dataset_scripts.schema import UNLABELLED

from .architectures import IGNORE_INDEX


@dataclass(frozen=True)
class SpecialLayout:
    """Special tokens around and between segments, as the tokenizer's own pair template places them."""

    prefix: tuple[int, ...]
    middle: tuple[int, ...]
    suffix: tuple[int, ...]


def _find(haystack: Sequence[int], needle: Sequence[int], start: int = 0) -> int:
    for i in range(start, len(haystack) - len(needle) + 1):
        if list(haystack[i:i + len(needle)]) == list(needle):
            return i
    return -1


def special_layout(tokenizer) -> SpecialLayout:
    """Find the tokenizer's prefix / between-segments / suffix special tokens by encoding a probe pair."""
    first, second = "hello", "world"
    a = tokenizer(first, add_special_tokens=False)["input_ids"]
    b = tokenizer(second, add_special_tokens=False)["input_ids"]
    pair = tokenizer(first, second)["input_ids"]
    ia = _find(pair, a)
    ib = _find(pair, b, ia + len(a)) if ia >= 0 else -1
    if ia < 0 or ib < 0:  # a tokenizer without a pair template: fall back to its cls/sep tokens
        cls = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
        sep = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
        return SpecialLayout(tuple(t for t in (cls,) if t is not None), (sep,), (sep,))
    return SpecialLayout(tuple(pair[:ia]), tuple(pair[ia + len(a):ib]), tuple(pair[ib + len(b):]))


def first_token_id(tokenizer) -> int:
    """The token CoMPM pools (``<s>`` / ``[CLS]``)."""
    layout = special_layout(tokenizer)
    if layout.prefix:
        return layout.prefix[0]
    if tokenizer.cls_token_id is not None:
        return tokenizer.cls_token_id
    raise ValueError("the tokenizer has neither a prefix special token nor a cls token to pool")


def target_label(emotion: int) -> int:
    """ClassLabel index -> training label; the schema's unlabelled value becomes the loss's ignore index."""
    return IGNORE_INDEX if emotion == UNLABELLED else int(emotion)


def speaker_text(speaker: str, utterance: str, speaker_tags: bool = True) -> str:
    """``SPEAKER: utterance`` (the speaker tag both architectures put before each utterance)."""
    return f"{speaker}: {utterance}" if speaker_tags else utterance
