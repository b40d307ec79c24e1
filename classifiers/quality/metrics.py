"""The report's cheap measures of one corpus (or of a corpus against the real train split): no model needed.

A corpus here is a sequence of ``Dialogue`` (utterances and label ids, ``-1`` for an unlabelled line). Every
function takes the corpus it measures and returns a plain number, so the report computes the synthetic figure
and the real one with the same call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from erc_synth.dataset_scripts.divergence import js_divergence
from erc_synth.dataset_scripts.gates import GateOptions, apply_gates, words
from erc_synth.dataset_scripts.quality_corpus import Dialogue
from erc_synth.dataset_scripts.text_quality import (
    GIBBERISH_THRESHOLD,
    emotion_words,
    is_bare_label,
    is_gibberish,
    known_words,
)

#: Dialogues with at least this many labelled turns count in ``all_labels_distinct_share``.
DISTINCT_MIN_TURNS = 4


def all_utterances(corpus: Sequence[Dialogue]) -> list[str]:
    return [u for d in corpus for u in d.utterances]


def gibberish_share(corpus: Sequence[Dialogue], threshold: float = GIBBERISH_THRESHOLD) -> float:
    """Share of utterances whose known-word share is below ``threshold``."""
    texts, vocabulary = all_utterances(corpus), known_words()
    return _share(sum(is_gibberish(t, threshold, vocabulary) for t in texts), len(texts))


def bare_label_share(corpus: Sequence[Dialogue]) -> float:
    """Share of utterances made only of label or emotion words."""
    texts, label_words = all_utterances(corpus), emotion_words()
    return _share(sum(is_bare_label(t, label_words) for t in texts), len(texts))


def gate_drop_shares(corpus: Sequence[Dialogue], options: GateOptions) -> dict[str, float]:
    """Share of this corpus's utterances the bad-line gate would remove, per reason, with ``options``.

    ``bad_line_dialogue`` counts the lines of dialogues dropped whole; ``total`` is the sum.
    """
    bad_lines_only = replace(options, exact_dedup=False, near_dup_threshold=None)
    _, report = apply_gates(list(enumerate(d.utterances for d in corpus)), bad_lines_only)
    total = sum(len(d.utterances) for d in corpus)
    dropped_whole = sum(len(corpus[entry["index"]].utterances) for entry in report.dropped)
    shares = {"gibberish_utterance": _share(report.gibberish_utterances, total),
              "bare_label_utterance": _share(report.bare_label_utterances, total),
              "bad_line_dialogue": _share(dropped_whole, total)}
    shares["total"] = _share(report.gibberish_utterances + report.bare_label_utterances + dropped_whole, total)
    return shares


def distinct_2(texts: Sequence[str]) -> float:
    """Distinct word bigrams over all word bigrams (bigrams stay inside an utterance)."""
    bigrams = [pair for t in texts for pair in zip(words(t), words(t)[1:], strict=False)]
    return _share(len(set(bigrams)), len(bigrams))


def mean_words(corpus: Sequence[Dialogue]) -> float:
    texts = all_utterances(corpus)
    return float(np.mean([len(words(t)) for t in texts])) if texts else 0.0


def mean_turns(corpus: Sequence[Dialogue]) -> float:
    return float(np.mean([len(d.utterances) for d in corpus])) if corpus else 0.0


def label_counts(corpus: Sequence[Dialogue], num_labels: int) -> np.ndarray:
    counts = np.zeros(num_labels)
    for d in corpus:
        for e in d.emotions:
            if e >= 0:
                counts[e] += 1
    return counts


def label_js(corpus: Sequence[Dialogue], reference: Sequence[Dialogue], num_labels: int) -> float | None:
    """JS divergence (base 2) of the label distribution from the reference's; None when a side has no label."""
    p, q = label_counts(corpus, num_labels), label_counts(reference, num_labels)
    return js_divergence(p, q) if p.sum() and q.sum() else None


def transitions(corpus: Sequence[Dialogue], num_labels: int) -> np.ndarray:
    """Joint distribution of (label of turn t, label of turn t+1) over consecutive labelled turns."""
    counts = np.zeros((num_labels, num_labels))
    for d in corpus:
        for a, b in zip(d.emotions, d.emotions[1:], strict=False):
            if a >= 0 and b >= 0:
                counts[a, b] += 1
    return counts / counts.sum() if counts.sum() else counts


def transition_l1(corpus: Sequence[Dialogue], reference: Sequence[Dialogue], num_labels: int) -> float | None:
    """L1 distance (0 to 2) between the two label-transition distributions."""
    p, q = transitions(corpus, num_labels), transitions(reference, num_labels)
    return float(np.abs(p - q).sum()) if p.sum() and q.sum() else None


def all_labels_distinct_share(corpus: Sequence[Dialogue], min_turns: int = DISTINCT_MIN_TURNS) -> float | None:
    """Share of dialogues of ``min_turns``+ labelled turns whose labels all differ; None when there are none."""
    labelled = [[e for e in d.emotions if e >= 0] for d in corpus]
    long = [e for e in labelled if len(e) >= min_turns]
    return _share(sum(len(set(e)) == len(e) for e in long), len(long)) if long else None


def repeated_utterance_share(texts: Sequence[str]) -> float:
    """Share of utterances (of 3+ words) whose normalised text already occurred earlier in the sample."""
    seen: set[tuple[str, ...]] = set()
    repeated = counted = 0
    for text in texts:
        key = tuple(words(text))
        if len(key) < 3:
            continue
        counted += 1
        repeated += key in seen
        seen.add(key)
    return _share(repeated, counted)


def near_duplicate_dialogue_share(corpus: Sequence[Dialogue]) -> float:
    """Share of dialogues the build's MinHash near-duplicate gate would drop (Jaccard >= 0.8 of word 3-shingles)."""
    options = GateOptions(exact_dedup=True, gibberish_threshold=None, bare_label_gate=False)
    _, report = apply_gates(list(enumerate(d.utterances for d in corpus)), options)
    return _share(report.exact_duplicates + report.near_duplicates, len(corpus))


def sample(items: Sequence, n: int, seed: int) -> list:
    """A seeded sample of ``n`` items in their original order (all of them when ``n`` >= their number)."""
    if n >= len(items):
        return list(items)
    picked = np.sort(np.random.default_rng(seed).choice(len(items), n, replace=False))
    return [items[i] for i in picked]


def _share(count: int, total: int) -> float:
    return round(count / total, 6) if total else 0.0
