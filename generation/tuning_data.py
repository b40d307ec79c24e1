"""The tuning set: real train dialogues rendered as the generation prompts and answers the generator sees.

Why exactly the generation format: a generator tuned on anything else learns a format the grammar then fights.
Each example is (1) the chat messages ``prompts.build_messages`` makes for a request (template ``v2``, label
format ``word_first``: "Speaker (joy): utterance", the label before the words), with the mode and, in balanced
mode, a target emotion that occurs in the dialogue, and (2) the answer, the dialogue rendered by
``exemplars.render_lines`` (the same lines a few-shot prompt shows). Every answer is read back by the run's own
validator (``validation.judge``) and kept only when it is accepted with the same labels, so the model is never
trained on a line the parser would reject (unknown speaker, a monologue); what was left out is counted by reason.

Why half natural, half balanced: a tuned generator serves both modes, so it sees both prompts. Which mode and
which target a dialogue gets is drawn from a sha256 of its id, so the set is the same on every machine.

Nothing here is written to disk: the texts stay in memory and only ids and hashes leave this module.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from erc_synth.dataset_scripts.core.errors import SettingError
from erc_synth.dataset_scripts.core.registry import Benchmark

from .backends.base import GenerationResult
from .exemplars import render_lines
from .parsing import Rejection
from .prompts import build_messages
from .validation import judge

if TYPE_CHECKING:
    from erc_synth.dataset_scripts.readers.base import Dialogue

#: The prompt a tuned generator is trained on (and should be run with).
TUNE_PROMPT_VERSION = "v2"
TUNE_LABEL_FORMAT = "word_first"


@dataclass(frozen=True)
class TuneExample:
    """One training pair: the request's chat messages and the answer the generator should write."""

    dialogue_id: str
    mode: str
    target_label: int | None
    messages: tuple[dict[str, str], ...]
    answer: str


@dataclass
class TuneSet:
    """The examples of one benchmark's train split, with what was left out and why."""

    benchmark: Benchmark
    variant: str
    turns: tuple[int, int]
    examples: list[TuneExample]
    dropped: Counter[str] = field(default_factory=Counter)

    def ids_sha256(self) -> str:
        """sha256 of the examples' dialogue ids, modes and targets: names the set without any of its text."""
        digest = hashlib.sha256()
        for example in self.examples:
            digest.update(f"{example.dialogue_id}\x1f{example.mode}\x1f{example.target_label}\x1e".encode())
        return digest.hexdigest()

    def content_sha256(self) -> str:
        """sha256 of the rendered prompts and answers: part of the cache key, so a changed reader or template
        retrains even when the ids are the same."""
        digest = hashlib.sha256()
        for example in self.examples:
            for message in example.messages:
                digest.update(message["content"].encode() + b"\x1f")
            digest.update(example.answer.encode() + b"\x1e")
        return digest.hexdigest()

    def summary(self) -> dict[str, Any]:
        """The manifest's ``data`` block: counts, ids hash and the left-out reasons; no text."""
        modes = Counter(example.mode for example in self.examples)
        return {"benchmark": self.benchmark.name, "variant": self.variant, "split": "train",
                "examples": len(self.examples), "modes": dict(sorted(modes.items())), "turns": list(self.turns),
                "ids_sha256": self.ids_sha256(), "left_out_by_reason": dict(sorted(self.dropped.items())),
                "prompt_version": TUNE_PROMPT_VERSION, "label_format": TUNE_LABEL_FORMAT}


def _draw(dialogue_id: str, purpose: str, size: int) -> int:
    digest = hashlib.sha256(f"erc-synth/tune/{purpose}/{dialogue_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % size


def example_for(dialogue: Dialogue, benchmark: Benchmark, turns: tuple[int, int]) -> TuneExample | Rejection:
    """The training pair of one dialogue, or the validator's rejection of its rendered answer."""
    dialogue_id = str(dialogue.dialogue_id)
    balanced = _draw(dialogue_id, "mode", 2) == 1
    present = sorted(set(dialogue.emotions))
    target = present[_draw(dialogue_id, "target", len(present))] if balanced else None
    mode = "balanced" if balanced else "natural"
    answer = render_lines(dialogue, benchmark, TUNE_LABEL_FORMAT)
    verdict = judge(GenerationResult(text=answer, finish_reason="stop"), benchmark, turns=turns, target_label=target)
    if isinstance(verdict, Rejection):
        return verdict
    if list(verdict.emotions) != list(dialogue.emotions):
        return Rejection("label_changed", "the answer reads back with other labels")
    messages = build_messages(benchmark, mode, turns=turns, target_label=target, version=TUNE_PROMPT_VERSION,
                              label_format=TUNE_LABEL_FORMAT)
    return TuneExample(dialogue_id, mode, target, messages, answer)


def build_tune_set(benchmark: Benchmark, dialogues: Sequence[Dialogue], variant: str,
                   turns: tuple[int, int] | None = None, max_dialogues: int | None = None) -> TuneSet:
    """The tuning set of ``dialogues`` (a train split), sorted by id; ``max_dialogues`` keeps the first N kept."""
    from erc_synth.dataset_scripts.schema import UNLABELLED

    low, high = turns or benchmark.turns
    tune = TuneSet(benchmark, variant, (low, high), [])
    for dialogue in sorted(dialogues, key=lambda d: str(d.dialogue_id)):
        if max_dialogues is not None and len(tune.examples) >= max_dialogues:
            break
        if UNLABELLED in dialogue.emotions:
            tune.dropped["unlabelled_utterance"] += 1
            continue
        if len(dialogue.utterances) < low:
            tune.dropped["too_few_turns"] += 1
            continue
        if len(dialogue.utterances) > high:  # the prompt asks for at most `high` turns: show the opening
            from erc_synth.dataset_scripts.readers.base import Dialogue as _Dialogue

            dialogue = _Dialogue(dialogue.dialogue_id, dialogue.speakers[:high], dialogue.utterances[:high],
                                 dialogue.emotions[:high])
        outcome = example_for(dialogue, benchmark, (low, high))
        if isinstance(outcome, Rejection):
            tune.dropped[outcome.reason] += 1
        else:
            tune.examples.append(outcome)
    return tune


def load_tune_set(benchmark: Benchmark, real_data: str | Path, *, variant: str | None = None,
                  turns: tuple[int, int] | None = None, max_dialogues: int | None = None) -> TuneSet:
    """Read the benchmark's train split under ``real_data`` and build its tuning set."""
    from erc_synth.dataset_scripts.readers.loader import read_dialogues

    variant_name = variant or benchmark.default_variant
    splits = read_dialogues(benchmark, real_data, variant_name, splits=("train",))
    if "train" not in splits:
        raise SettingError("real_data", f"{real_data}: {benchmark.name} variant {variant_name!r} has no train split")
    tune = build_tune_set(benchmark, splits["train"], variant_name, turns, max_dialogues)
    if not tune.examples:
        raise SettingError("real_data", f"{real_data}: no {benchmark.name} train dialogue could be rendered "
                            f"(left out: {dict(tune.dropped)})")
    return tune
