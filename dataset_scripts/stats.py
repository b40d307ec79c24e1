"""Corpus statistics per split, and a table renderer that dataset cards reuse.

Both are pure: ``corpus_stats`` only reads the datasets it is given and ``render_stats`` returns a string, so a
card builder can embed the same table the ``erc-synth stats`` command prints.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from .core.registry import UNLABELLED

FORMATS: tuple[str, ...] = ("table", "markdown", "json")


@dataclass(frozen=True)
class SplitStats:
    """One split at a glance. ``label_counts`` lists every label in ClassLabel order, zeros included."""

    split: str
    dialogues: int
    utterances: int
    label_counts: dict[str, int]
    #: Utterances kept as context without a label (``schema.UNLABELLED``).
    unlabelled: int
    mean_turns: float
    mean_speakers: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def split_stats(split: str, dataset) -> SplitStats:
    """Statistics of one ``dialogues`` (or ``utterances``) Dataset."""
    if "emotions" not in dataset.column_names:
        from .schema import utterances_to_dialogues  # imports datasets: only when converting

        dataset = utterances_to_dialogues(dataset)
    names = dataset.features["emotions"].feature.names
    counts = [0] * len(names)
    unlabelled = 0
    columns = dataset.select_columns(["speakers", "emotions"]).to_dict()
    for emotions in columns["emotions"]:
        for emotion in emotions:
            if emotion == UNLABELLED or emotion is None:
                unlabelled += 1
            else:
                counts[emotion] += 1
    dialogues = len(columns["emotions"])
    utterances = sum(len(e) for e in columns["emotions"])
    distinct_speakers = sum(len(set(s)) for s in columns["speakers"])
    return SplitStats(
        split=split,
        dialogues=dialogues,
        utterances=utterances,
        label_counts=dict(zip(names, counts, strict=True)),
        unlabelled=unlabelled,
        mean_turns=utterances / dialogues if dialogues else 0.0,
        mean_speakers=distinct_speakers / dialogues if dialogues else 0.0,
    )


def corpus_stats(data: Mapping[str, object]) -> list[SplitStats]:
    """One ``SplitStats`` per split of a ``DatasetDict`` (either config), in the dict's split order."""
    return [split_stats(split, dataset) for split, dataset in data.items()]


def render_table(headers: Sequence[str], rows: Sequence[Sequence[object]], fmt: str = "table") -> str:
    """A plain-text (aligned columns) or Markdown (pipe) table; numbers are right-aligned in both."""
    if fmt not in ("table", "markdown"):
        raise ValueError(f"unknown table format {fmt!r}")
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    numeric = [all(isinstance(row[i], int | float) for row in rows) and bool(rows) for i in range(len(headers))]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> list[str]:
        return [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric, strict=True)]

    if fmt == "markdown":
        rule = [("-" * (w - 1) + ":") if num else "-" * w for w, num in zip(widths, numeric, strict=True)]
        out = [line(cells[0]), rule, *(line(r) for r in cells[1:])]
        return "\n".join("| " + " | ".join(r) + " |" for r in out) + "\n"
    rule = ["-" * w for w in widths]
    out = [line(cells[0]), rule, *(line(r) for r in cells[1:])]
    return "\n".join("  ".join(r).rstrip() for r in out) + "\n"


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def render_stats(stats: Sequence[SplitStats], fmt: str = "table") -> str:
    """Render ``corpus_stats`` output as ``table`` (plain text), ``markdown`` or ``json``."""
    if fmt == "json":
        return json.dumps([s.as_dict() for s in stats], indent=2) + "\n"
    labels = list(stats[0].label_counts) if stats else []
    headers = ["split", "dialogues", "utterances", "unlabelled", "turns/dialogue", "speakers/dialogue", *labels]
    rows = [
        [s.split, s.dialogues, s.utterances, s.unlabelled, s.mean_turns, s.mean_speakers,
         *(s.label_counts.get(label, 0) for label in labels)]
        for s in stats
    ]
    return render_table(headers, rows, fmt)
