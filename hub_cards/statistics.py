"""Per-split statistics of a ``dialogues`` DatasetDict, and their Markdown tables for the card.

Why here and so small: the card needs a fixed set of numbers (dialogues, utterances, turns per dialogue,
speakers, label counts) from the in-memory build; corpus-wide statistics of any dataset, real or built, are
``dataset_scripts.stats`` / ``erc-synth stats``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from datasets import DatasetDict

from dataset_scripts.schema import UNLABELLED


def label_counts(data: DatasetDict | Mapping[str, Any], labels: Sequence[str]) -> dict[str, int]:
    """Utterance label counts over every split, in ``labels`` order (unlabelled utterances are left out)."""
    counts: Counter[int] = Counter()
    for ds in data.values():
        for emotions in ds["emotions"]:
            counts.update(e for e in emotions if e != UNLABELLED)
    return {label: counts.get(i, 0) for i, label in enumerate(labels)}


def split_statistics(data: DatasetDict, labels: Sequence[str]) -> dict[str, dict[str, Any]]:
    """For each split: dialogues, utterances, turns per dialogue (min/mean/max), speakers, label counts."""
    out: dict[str, dict[str, Any]] = {}
    for split, ds in data.items():
        turns = [len(u) for u in ds["utterances"]]
        speakers = {s for row in ds["speakers"] for s in row}
        out[split] = {
            "dialogues": len(ds),
            "utterances": sum(turns),
            "turns_min": min(turns, default=0),
            "turns_mean": round(sum(turns) / len(turns), 2) if turns else 0.0,
            "turns_max": max(turns, default=0),
            "speakers": len(speakers),
            "labels": label_counts({split: ds}, labels),
        }
    return out


def statistics_table(stats: Mapping[str, Mapping[str, Any]]) -> str:
    """Markdown table: one row per split."""
    lines = ["| split | dialogues | utterances | turns per dialogue (min / mean / max) | speakers |",
             "|---|---:|---:|---:|---:|"]
    for split, s in stats.items():
        lines.append(f"| {split} | {s['dialogues']} | {s['utterances']} | "
                     f"{s['turns_min']} / {s['turns_mean']} / {s['turns_max']} | {s['speakers']} |")
    return "\n".join(lines)


def label_table(stats: Mapping[str, Mapping[str, Any]], labels: Sequence[str]) -> str:
    """Markdown table: one row per label, one column per split."""
    splits = list(stats)
    lines = ["| label | " + " | ".join(splits) + " |", "|---|" + "---:|" * len(splits)]
    for label in labels:
        lines.append(f"| {label} | " + " | ".join(str(stats[s]["labels"][label]) for s in splits) + " |")
    return "\n".join(lines)
