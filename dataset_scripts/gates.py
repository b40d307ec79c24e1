"""Quality gates a synthetic corpus passes before it is published.

Four gates, applied in this order to dialogues sorted by generation index:

0. **Bad lines**: an utterance of non-words (its known-word share, ``text_quality.known_word_share``, below
   ``gibberish_threshold`` with at least ``gibberish_min_words`` alphabetic words) or made only of emotion words
   (``Rachel (anger): happiness``) is removed from its dialogue; a dialogue where more than
   ``max_bad_line_share`` of the lines are bad is dropped whole. Why per line first: a small model's dialogue is
   often fine but for one derailed line, and the later gates should compare the text that is kept. The defaults
   were chosen on the real benchmark splits, where they remove at most 0.3% of the lines (docs/data-quality.md).
1. **Exact duplicates**: dialogues whose normalised text (case-folded words, punctuation and spacing dropped)
   hashes to the same SHA-256. Small LLMs at low temperature repeat themselves verbatim; such copies inflate
   a training set without adding information.
2. **Near duplicates**: MinHash signatures over word shingles, candidates found with LSH (``datasketch``) and
   confirmed by the estimated Jaccard similarity. The MinHash seed is fixed, so the same corpus always loses
   the same dialogues.
3. **Decontamination**: a dialogue sharing word n-grams (n=8 by default) with the real benchmark's *test*
   and *train* splits beyond a threshold is dropped, so a classifier pre-trained on synthetic data cannot have
   seen test text that the LLM memorised, and no line copied from a few-shot exemplar (always a train
   dialogue) or any other real line reaches a built set. The whole dialogue goes, not the line: a dialogue
   with a line cut out is no longer the one whose labels were generated.

In every gate the dialogue with the lowest index is the one kept, which makes the outcome independent of
the order in which records were written. Every dropped dialogue is reported with its gate and evidence; the
counts go into the build report and the dataset card.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from datasketch import MinHash, MinHashLSH

from .core.build_defaults import (
    BUILD_RULES,
    DECONTAM_NGRAM,
    DECONTAM_THRESHOLD,
    GIBBERISH_MIN_WORDS,
    GIBBERISH_THRESHOLD,
    MAX_BAD_LINE_SHARE,
    NEAR_DUP_THRESHOLD,
)
from .core.errors import SettingError
from .text_quality import alphabetic_words, emotion_words, is_bare_label, known_word_share, known_words

_WORD = re.compile(r"\w+", re.UNICODE)


class GateOptionError(SettingError, ValueError):
    """An out-of-range gate setting (a user error from the CLI, a ValueError for library callers)."""


@dataclass(frozen=True)
class GateOptions:
    """Settings of the quality gates; the defaults are what ``erc-synth build`` uses."""

    exact_dedup: bool = True
    #: Estimated Jaccard similarity of word shingles at or above which a dialogue is a near duplicate;
    #: ``None`` turns the gate off.
    near_dup_threshold: float | None = NEAR_DUP_THRESHOLD
    shingle_size: int = 3
    num_perm: int = 128
    minhash_seed: int = 1
    #: Word n-gram length for decontamination (8 words rarely repeat by chance across dialogues).
    decontam_ngram: int = DECONTAM_NGRAM
    #: A dialogue is dropped when the share of its n-grams found in the real test split exceeds this value;
    #: 0.0 drops a dialogue with any shared n-gram.
    decontam_threshold: float = DECONTAM_THRESHOLD
    #: A line with a known-word share below this is gibberish and removed; ``None`` turns the gate off.
    gibberish_threshold: float | None = GIBBERISH_THRESHOLD
    #: Lines with fewer alphabetic words are never called gibberish (real speech has "Ohh!", "Shhhh!").
    gibberish_min_words: int = GIBBERISH_MIN_WORDS
    #: Remove lines made only of emotion words.
    bare_label_gate: bool = True
    #: A dialogue with more than this share of bad lines is dropped whole; ``None``: only lines are removed.
    max_bad_line_share: float | None = MAX_BAD_LINE_SHARE

    def __post_init__(self) -> None:
        for spec in fields(self):
            if spec.name in BUILD_RULES:
                ok, valid = BUILD_RULES[spec.name]
                value = getattr(self, spec.name)
                if not ok(value):
                    raise GateOptionError(spec.name, f"must be {valid}, got {value!r}")


@dataclass
class GateReport:
    """What the gates did: counts for the card, and one entry per dropped dialogue for auditing."""

    input_dialogues: int = 0
    #: Lines removed by the bad-line gate, by reason, and dialogues dropped for too many bad lines.
    gibberish_utterances: int = 0
    bare_label_utterances: int = 0
    bad_line_dialogues: int = 0
    exact_duplicates: int = 0
    near_duplicates: int = 0
    contaminated: int = 0
    kept: int = 0
    decontaminated_against: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    dropped: list[dict[str, Any]] = field(default_factory=list)
    #: One entry per line removed from a dialogue that passed the bad-line gate (a later gate may still drop the
    #: dialogue): ``{"index", "turn", "gate", ...evidence}``.
    dropped_utterances: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def removed_turns(self) -> dict[int, set[int]]:
        """``{dialogue index: turns removed}``."""
        out: dict[int, set[int]] = {}
        for entry in self.dropped_utterances:
            out.setdefault(entry["index"], set()).add(entry["turn"])
        return out


def bad_line_reason(text: str, options: GateOptions, vocabulary: frozenset[str] | None,
                    label_words: frozenset[str]) -> dict[str, Any] | None:
    """Why a line fails the bad-line gate (``{"gate": ..., evidence}``), or None when it passes."""
    if options.gibberish_threshold is not None and vocabulary is not None:
        share = known_word_share(text, vocabulary)
        if (share is not None and share < options.gibberish_threshold
                and len(alphabetic_words(text)) >= options.gibberish_min_words):
            return {"gate": "gibberish_utterance", "known_word_share": round(share, 4)}
    if options.bare_label_gate and is_bare_label(text, label_words):
        return {"gate": "bare_label_utterance"}
    return None


def _bad_line_gate(ordered: Sequence[tuple[int, Sequence[str]]], options: GateOptions,
                   report: GateReport) -> tuple[list[int], dict[int, list[str]]]:
    """Remove bad lines and drop dialogues with too many; return survivors and their remaining text."""
    vocabulary = known_words() if options.gibberish_threshold is not None else None
    label_words = emotion_words()
    survivors: list[int] = []
    texts: dict[int, list[str]] = {}
    for index, utterances in ordered:
        bad = [(turn, reason) for turn, text in enumerate(utterances)
               if (reason := bad_line_reason(text, options, vocabulary, label_words)) is not None]
        share = len(bad) / len(utterances) if utterances else 0.0
        too_many = len(bad) == len(utterances) or (options.max_bad_line_share is not None
                                                  and share > options.max_bad_line_share)
        if bad and too_many:
            report.bad_line_dialogues += 1
            report.dropped.append({"index": index, "gate": "bad_lines", "bad_lines": len(bad),
                                   "share": round(share, 4)})
            continue
        for turn, reason in bad:
            report.dropped_utterances.append({"index": index, "turn": turn, **reason})
            if reason["gate"] == "gibberish_utterance":
                report.gibberish_utterances += 1
            else:
                report.bare_label_utterances += 1
        removed = {turn for turn, _ in bad}
        survivors.append(index)
        texts[index] = [text for turn, text in enumerate(utterances) if turn not in removed]
    return survivors, texts


def words(text: str) -> list[str]:
    """Case-folded word tokens of a text after Unicode normalisation (NFKC)."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def dialogue_words(utterances: Sequence[str]) -> list[str]:
    """The word sequence of a whole dialogue, utterances in order."""
    out: list[str] = []
    for utterance in utterances:
        out.extend(words(utterance))
    return out


def normalised_hash(utterances: Sequence[str]) -> str:
    """SHA-256 of the dialogue's normalised text; utterance boundaries are kept (one line per utterance)."""
    text = "\n".join(" ".join(words(u)) for u in utterances)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def ngrams(tokens: Sequence[str], n: int) -> set[tuple[str, ...]]:
    """Word n-grams of a token sequence (empty when it is shorter than n)."""
    return {tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}


def minhash(tokens: Sequence[str], options: GateOptions) -> MinHash:
    """MinHash of a dialogue's word shingles (the whole text is one shingle when it is shorter)."""
    shingles = ngrams(tokens, options.shingle_size) or {tuple(tokens)}
    signature = MinHash(num_perm=options.num_perm, seed=options.minhash_seed)
    signature.update_batch([" ".join(s).encode("utf-8") for s in sorted(shingles)])
    return signature


def reference_ngrams(reference_dialogues: Iterable[Sequence[str]], n: int) -> set[tuple[str, ...]]:
    """Every word n-gram of the reference dialogues (n-grams may span utterances, as in the synthetic side)."""
    out: set[tuple[str, ...]] = set()
    for utterances in reference_dialogues:
        out |= ngrams(dialogue_words(utterances), n)
    return out


def apply_gates(
    dialogues: Sequence[tuple[int, Sequence[str]]],
    options: GateOptions | None = None,
    reference_dialogues: Iterable[Sequence[str]] | None = None,
    reference_name: str | None = None,
) -> tuple[list[int], GateReport]:
    """Run the gates over ``(index, utterances)`` pairs; return the kept indices (ascending) and the report.

    ``reference_dialogues`` are the utterance lists of the real benchmark's test and train splits; without them the
    decontamination gate is skipped and the report says so (``decontaminated_against`` stays ``None``).
    """
    options = options or GateOptions()
    ordered = sorted(dialogues, key=lambda item: item[0])
    report = GateReport(input_dialogues=len(ordered), options=asdict(options))
    if options.gibberish_threshold is not None or options.bare_label_gate:
        survivors, text_of = _bad_line_gate(ordered, options, report)
    else:
        survivors, text_of = [index for index, _ in ordered], {index: list(utts) for index, utts in ordered}
    tokens = {index: dialogue_words(text_of[index]) for index in survivors}

    if options.exact_dedup:
        first_with_hash: dict[str, int] = {}
        kept = []
        for index in survivors:
            digest = normalised_hash(text_of[index])
            if digest in first_with_hash:
                report.exact_duplicates += 1
                report.dropped.append(
                    {"index": index, "gate": "exact_duplicate", "duplicate_of": first_with_hash[digest]})
            else:
                first_with_hash[digest] = index
                kept.append(index)
        survivors = kept

    if options.near_dup_threshold is not None:
        lsh = MinHashLSH(threshold=options.near_dup_threshold, num_perm=options.num_perm)
        signatures: dict[int, MinHash] = {}
        kept = []
        for index in survivors:
            signature = minhash(tokens[index], options)
            matches = sorted(c for c in lsh.query(signature)
                             if signatures[c].jaccard(signature) >= options.near_dup_threshold)
            if matches:
                report.near_duplicates += 1
                report.dropped.append({
                    "index": index, "gate": "near_duplicate", "duplicate_of": matches[0],
                    "jaccard": round(signatures[matches[0]].jaccard(signature), 4),
                })
            else:
                signatures[index] = signature
                lsh.insert(index, signature)
                kept.append(index)
        survivors = kept

    if reference_dialogues is not None:
        report.decontaminated_against = reference_name or "reference test split"
        reference = reference_ngrams(reference_dialogues, options.decontam_ngram)
        kept = []
        for index in survivors:
            grams = ngrams(tokens[index], options.decontam_ngram)
            shared = len(grams & reference)
            share = shared / len(grams) if grams else 0.0
            if shared and share > options.decontam_threshold:
                report.contaminated += 1
                report.dropped.append({"index": index, "gate": "contaminated", "shared_ngrams": shared,
                                       "share": round(share, 4)})
            else:
                kept.append(index)
        survivors = kept

    report.kept = len(survivors)
    report.dropped.sort(key=lambda d: d["index"])
    return survivors, report
