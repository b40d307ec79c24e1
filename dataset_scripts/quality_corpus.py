"""The data-quality report's shape: the corpus it measures, its measures, its file and how a figure is printed.

Why here, below both ``hub_cards`` and ``classifiers``: the build reads the real splits into this shape once
(``hub_cards.folder.load_real``), the report (``classifiers.quality``) measures it, and the card prints it; the
card and the report may not import each other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .text_quality import GIBBERISH_THRESHOLD

#: The report's file inside a built folder.
QUALITY_JSON = "quality.json"
#: The measures, in the order the report and the card list them, with what each one means.
MEASURES: dict[str, str] = {
    "gibberish_share": f"utterances whose known-word share is below {GIBBERISH_THRESHOLD}",
    "bare_label_share": "utterances made only of a label or emotion word",
    "c2st_auc": "AUC of a classifier telling the set from real train utterances (0.5: indistinguishable)",
    "mauve": "MAUVE against real train utterances on MiniLM embeddings (1: each covers the other)",
    "distinct_2": "distinct word bigrams / all bigrams, equal-size samples",
    "label_js": "JS divergence of the label distribution from the real train split's",
    "transition_l1": "L1 distance of the label-transition distribution from the real train split's (0 to 2)",
    "all_labels_distinct_share": "dialogues of 4+ turns whose labels all differ",
    "kappa": "Cohen's kappa, labels vs the audit judge (real: the judge on the real test labels, its ceiling)",
    "mean_words_per_utterance": "mean words per utterance",
    "mean_turns_per_dialogue": "mean turns per dialogue",
    "repeated_utterance_share": "utterances of 3+ words repeating an earlier one, equal-size samples",
    "near_duplicate_dialogue_share": "dialogues the MinHash near-duplicate gate would drop",
}


@dataclass(frozen=True)
class Dialogue:
    """One dialogue as the report sees it: utterances and label ids (``-1`` for an unlabelled line)."""

    utterances: tuple[str, ...]
    emotions: tuple[int, ...]


def from_columns(utterances: Sequence[Sequence[str]], emotions: Sequence[Sequence[int]]) -> list[Dialogue]:
    """Dialogues from a ``dialogues`` dataset's ``utterances`` and ``emotions`` columns."""
    return [Dialogue(tuple(u), tuple(int(x) for x in e)) for u, e in zip(utterances, emotions, strict=True)]


def figure(value: Any) -> str:
    """A report figure as the tables print it."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def measure_rows(report: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """``(measure, synthetic, real, meaning)`` per measure; the two-sample test carries its intervals."""
    rows = []
    for name, meaning in MEASURES.items():
        pair = report.get(name) or {}
        synthetic, real = figure(pair.get("synthetic")), figure(pair.get("real"))
        if name == "c2st_auc":
            if pair.get("synthetic_ci"):
                synthetic += " [{:.3f}, {:.3f}]".format(*pair["synthetic_ci"])
            if pair.get("real_ci"):
                real += " [{:.3f}, {:.3f}]".format(*pair["real_ci"])
        rows.append((name, synthetic, real, meaning))
    return rows
