"""What an annotator sees for one utterance, and which utterances they see: the seeded sample.

A task is one utterance shown inside its whole dialogue (earlier turns above, later turns below, the utterance
itself highlighted), so the annotator judges it in context, as the benchmark's own annotators did. The label
under review is never put into the task: an annotator who saw it would anchor on it.

Tasks are keyed by dialogue id and turn (:func:`task_key`), which makes a re-export idempotent: a key the project
already has is not sent again. How each task was drawn (a cleanlab suspect or the seeded random sample, with the
seed and the population's size) goes into the task's ``meta``, which the labelling view does not show, and the
import reads it back for the card.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from erc_synth.dataset_scripts.core.errors import ErcSynthError

SUSPECT = "suspect"
RANDOM = "random"
#: The key under which a task's ``meta`` holds erc-synth's record.
META_KEY = "erc_synth"


@dataclass(frozen=True)
class ReviewItem:
    """One labelled utterance of the reviewed source, with its dialogue for context."""

    split: str
    dialogue_id: str
    turn: int
    speakers: tuple[str, ...]
    utterances: tuple[str, ...]
    #: The label under review (the set's synthetic label, or a real split's gold label), as a label id.
    label: int
    #: The audit judge's label id, when the set was audited.
    judge_label: int | None = None
    #: Position in the audit's suspect order (0 = most suspect), when cleanlab flagged it.
    suspect_rank: int | None = None

    @property
    def key(self) -> str:
        return task_key(self.dialogue_id, self.turn)


def task_key(dialogue_id: str, turn: int) -> str:
    """The identity of a task: the same utterance always gets the same key."""
    return f"{dialogue_id}#{int(turn)}"


def dialogue_html(speakers: Sequence[str], utterances: Sequence[str], turn: int) -> str:
    """The dialogue as escaped HTML: context turns plain, the reviewed turn marked and framed."""
    lines = []
    for index, (speaker, text) in enumerate(zip(speakers, utterances, strict=True)):
        line = f"<b>{html.escape(speaker)}:</b> {html.escape(text)}"
        if index == turn:
            lines.append('<div style="background:#fff1a8;border-left:5px solid #d49a00;padding:6px 8px;'
                         f'margin:6px 0;font-size:1.1em"><mark>{line}</mark></div>')
        else:
            lines.append(f'<div style="color:#555;padding:2px 8px">{line}</div>')
    return "<div>" + "".join(lines) + "</div>"


@dataclass(frozen=True)
class Sample:
    """The drawn utterances in task order, and how they were drawn."""

    items: list[ReviewItem]
    drawn_as: list[str]
    record: dict


def draw_sample(items: Sequence[ReviewItem], size: int, seed: int, *, suspects_first: bool) -> Sample:
    """``size`` utterances: with ``suspects_first`` the suspects in the audit's order, then a seeded random draw
    (numpy ``default_rng(seed)``) from the rest; without it, the seeded random draw from all."""
    if size < 1:
        raise ErcSynthError(f"--sample {size}: must be at least 1")
    population = list(items)
    chosen: list[ReviewItem] = []
    if suspects_first:
        chosen = sorted((i for i in population if i.suspect_rank is not None), key=lambda i: i.suspect_rank)[:size]
    taken = {i.key for i in chosen}
    rest = [i for i in population if i.key not in taken]
    order = np.random.default_rng(seed).permutation(len(rest))
    random_part = [rest[j] for j in order[: max(0, size - len(chosen))]]
    drawn_as = [SUSPECT] * len(chosen) + [RANDOM] * len(random_part)
    record = {
        "population": len(population), "requested": size, "drawn": len(chosen) + len(random_part),
        "suspects_first": suspects_first, "suspects": len(chosen), "random": len(random_part), "seed": seed,
        "method": ("the audit's cleanlab suspects first, most suspect first, then " if suspects_first else "")
        + f"a uniform random draw without replacement (numpy default_rng, seed {seed})",
    }
    return Sample(items=chosen + random_part, drawn_as=drawn_as, record=record)


def build_task(item: ReviewItem, order: int, drawn_as: str, record: Mapping[str, object], source: str) -> dict:
    """The task to import: what the view shows under ``data``, erc-synth's record under ``meta``."""
    return {
        "data": {"dialogue": dialogue_html(item.speakers, item.utterances, item.turn), "key": item.key,
                 "dialogue_id": item.dialogue_id, "turn": item.turn, "speaker": item.speakers[item.turn],
                 "utterance": item.utterances[item.turn]},
        "meta": {META_KEY: {"key": item.key, "split": item.split, "order": order, "drawn_as": drawn_as,
                            "seed": record["seed"], "population": record["population"], "source": source}},
    }
