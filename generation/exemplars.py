"""Few-shot exemplars: real dialogues of the benchmark's *train* split shown in the prompt as worked examples.

Why real and why train: a small model imitates what it is shown far better than what it is told, and real
dialogues show it the benchmark's register, its line length and how often ``neutral`` occurs. Only the train
split is ever read (``read_dialogues(..., splits=("train",))``), so no validation or test text can reach a
prompt, and the decontamination gate drops any synthetic dialogue that copies a real train or test line.

Why nothing of the text is stored: the licensed transcripts (IEMOCAP may not be redistributed) must never
reach a RUN_DIR, a built set or a card. The manifest records ``k``, the pool's size and a sha256 of the pool
(``ExemplarPool.fingerprint``); each record names the ids of its exemplars and a sha256 of its exemplar block.

The pool: train dialogues whose every utterance is labelled and whose length lies in the run's turn range,
preferring those whose speakers are all the benchmark's listed ones (so the example and the grammar agree);
with fewer than ``k`` such dialogues, the first tier that has ``k`` of them is used (in range with any
speakers, then any dialogue of at least the minimum length, cut to the maximum). Dialogues are sorted by id,
and a request's ``k`` are drawn without replacement by a sha256 Fisher-Yates from the request's seed, so the
prompt of an (index, attempt) is the same on every resume.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from erc_synth.dataset_scripts.core.errors import SettingError
from erc_synth.dataset_scripts.core.registry import Benchmark

if TYPE_CHECKING:  # the readers import datasets; the console script's --help must stay light
    from erc_synth.dataset_scripts.readers.base import Dialogue

#: The words around the exemplars; recorded in the manifest (it holds no real text).
EXEMPLAR_BLOCK_HEADER = "Here are {k} real dialogues of this kind, written in that form:"
EXEMPLAR_BLOCK_FOOTER = "Now write a new dialogue, with new words, in the same form."
_FORBIDDEN = str.maketrans({"\n": " ", "\r": " ", "(": "", ")": "", ":": ""})


def _clean(text: str) -> str:
    """The text as one line without the characters the line format gives a meaning (parentheses, colons)."""
    return " ".join(text.translate(_FORBIDDEN).split())


def render_lines(dialogue: Dialogue, benchmark: Benchmark, label_format: str) -> str:
    """A dialogue in the line format generation asks for (``Speaker (joy): utterance`` for ``word_first``)."""
    lines = []
    for speaker, utterance, emotion in zip(dialogue.speakers, dialogue.utterances, dialogue.emotions, strict=True):
        name, text = _clean(speaker), _clean(utterance)
        label = str(emotion) if label_format == "number" else benchmark.labels[emotion]
        if label_format == "word_first":
            lines.append(f"{name} ({label}): {text}")
        else:
            lines.append(f"{name}: {text} ({label})")
    return "\n".join(lines)


def _selection(size: int, k: int, seed: int) -> list[int]:
    """``k`` distinct positions of ``range(size)``: the first ``k`` steps of a sha256-driven Fisher-Yates."""
    order = list(range(size))
    for i in range(k):
        digest = hashlib.sha256(f"erc-synth/exemplars/{seed}/{i}".encode()).digest()
        j = i + int.from_bytes(digest[:8], "big") % (size - i)
        order[i], order[j] = order[j], order[i]
    return order[:k]


@dataclass(frozen=True)
class ExemplarPool:
    """The train dialogues a run's exemplars are drawn from, and how many each prompt shows."""

    benchmark: Benchmark
    variant: str
    k: int
    dialogues: tuple[Dialogue, ...]
    tier: str

    def fingerprint(self) -> str:
        """sha256 of the pool's ids, speakers, utterances and labels: identifies it without storing its text."""
        digest = hashlib.sha256()
        for d in self.dialogues:
            digest.update("\x1f".join([str(d.dialogue_id), *d.speakers, *d.utterances,
                                       *map(str, d.emotions)]).encode() + b"\x1e")
        return digest.hexdigest()

    def settings(self) -> dict[str, Any]:
        """The manifest's ``few_shot`` block: numbers, ids and hashes only."""
        return {"k": self.k, "split": "train", "variant": self.variant, "pool": self.tier,
                "pool_dialogues": len(self.dialogues), "pool_sha256": self.fingerprint(),
                "header": EXEMPLAR_BLOCK_HEADER, "footer": EXEMPLAR_BLOCK_FOOTER}

    def choose(self, seed: int) -> list[Dialogue]:
        return [self.dialogues[i] for i in _selection(len(self.dialogues), self.k, seed)]

    def block(self, seed: int, label_format: str) -> tuple[str, list[str], str]:
        """The prompt's exemplar block for a request's seed, its exemplar ids, and the block's sha256."""
        chosen = self.choose(seed)
        parts = [EXEMPLAR_BLOCK_HEADER.format(k=self.k)]
        for number, dialogue in enumerate(chosen, 1):
            parts.append(f"Example {number}:\n{render_lines(dialogue, self.benchmark, label_format)}")
        parts.append(EXEMPLAR_BLOCK_FOOTER)
        text = "\n\n".join(parts)
        return text, [str(d.dialogue_id) for d in chosen], hashlib.sha256(text.encode()).hexdigest()


def _cut(dialogue: Dialogue, high: int) -> Dialogue:
    from erc_synth.dataset_scripts.readers.base import Dialogue

    return Dialogue(dialogue.dialogue_id, dialogue.speakers[:high], dialogue.utterances[:high],
                    dialogue.emotions[:high])


def load_pool(benchmark: Benchmark, real_data: str | Path, k: int, turns: tuple[int, int],
              variant: str | None = None) -> ExemplarPool:
    """The exemplar pool of the benchmark's train split under ``real_data`` (see the module docstring)."""
    from erc_synth.dataset_scripts.readers.loader import read_dialogues
    from erc_synth.dataset_scripts.schema import UNLABELLED

    variant_name = variant or benchmark.default_variant
    splits = read_dialogues(benchmark, real_data, variant_name, splits=("train",))
    if "train" not in splits:
        raise SettingError("few_shot", f"needs the {benchmark.name} train split; variant {variant_name!r} under "
                                       f"{real_data} has none")
    low, high = turns
    labelled = sorted((d for d in splits["train"] if d.utterances and UNLABELLED not in d.emotions),
                      key=lambda d: str(d.dialogue_id))
    known = set(benchmark.speakers)
    in_range = [d for d in labelled if low <= len(d.utterances) <= high]
    tiers = (
        ("train dialogues in the turn range, listed speakers only", [d for d in in_range if set(d.speakers) <= known]),
        ("train dialogues in the turn range", in_range),
        ("train dialogues of at least the minimum length, cut to the maximum",
         [_cut(d, high) for d in labelled if len(d.utterances) >= low]),
    )
    for tier, dialogues in tiers:
        if len(dialogues) >= k:
            return ExemplarPool(benchmark, variant_name, k, tuple(dialogues), tier)
    raise SettingError("few_shot", f"{k}: the {benchmark.name} train split under {real_data} has only "
                                   f"{len(tiers[-1][1])} labelled dialogues of at least {low} turns")
