"""Raw LLM text -> a parsed dialogue, or a rejection with a reason code. Pure functions, no I/O.

Two shapes are read: the line format the prompts ask for (``Speaker: utterance (N)``, one line per utterance)
and the JSON shape the OpenAI-compatible backend's schema forces (``{"turns": [{"speaker", "utterance",
"emotion"}]}``).

The label may also come before the utterance, inside the speaker part (``Speaker (joy): utterance``, the
``word_first`` format of ``generation.grammar``). Lines end at ``\\n`` only, as in the grammar: ``str.splitlines()``
would also break at ``\\r``, ``\\x0b``, ``\\x85``, ``\\u2028``..., which the grammar allows inside an utterance,
and would reject a grammar-valid output as ``missing_label``. A ``\\r\\n`` line ending still reads: the ``\\r`` is
trailing whitespace.

What is tolerated, because real LLMs do it and the meaning is unambiguous: numbering or bullets before the
speaker ("1. Joey: ..."), markdown bold around the speaker or label, quotes around the utterance, trailing
spaces, prose lines without a ``Speaker:`` prefix (preambles such as "Here is the dialogue:"), a label word
instead of its number ("(joy)", case-insensitive, any spelling the registry knows), a number with its word
("(1: joy)") when both agree, and a first name for a speaker listed by full name when only one speaker has it.

What is never done: inventing or guessing a label. A line with a speaker but no trailing label, an unknown
word, a number out of range, or a number that disagrees with its word rejects the whole dialogue.

Duplicates: only repetition *inside* one dialogue (a looping model) is rejected here. Whether a dialogue
repeats another one depends on which finished first under concurrency, so cross-dialogue duplicates are left to
the build gates (MinHash dedup at build time), where all accepted dialogues are seen at once in index order.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from erc_synth.dataset_scripts.core.registry import Benchmark

#: Every rejection reason the parser can give, with what it means (``erc-synth inspect`` prints these codes).
REASONS: dict[str, str] = {
    "no_lines": "no 'Speaker: utterance (N)' line (or no turn in the JSON)",
    "invalid_json": "the output looks like JSON but does not decode to the expected shape",
    "missing_label": "a dialogue line without a trailing (N) label",
    "unknown_label": "a label that is neither a number nor a known emotion word",
    "label_conflict": "a label whose number and word disagree",
    "label_out_of_range": "a label number outside the benchmark's label set",
    "unknown_speaker": "a speaker outside the benchmark's allowed speakers",
    "empty_utterance": "a dialogue line with a speaker and a label but no words",
    "too_few_turns": "fewer turns than the requested minimum",
    "too_many_turns": "more turns than the requested maximum",
    "one_speaker": "every turn by the same speaker (a monologue, not a dialogue)",
    "repetition": "the same utterance repeated inside the dialogue (a looping model)",
    "target_absent": "balanced mode: no utterance carries the target emotion",
}

#: Reasons given outside the parser (``generation.validation``), registered here so Rejection checks them.
EXTRA_REASONS: dict[str, str] = {
    "truncated": "generation stopped at max_new_tokens before the dialogue was complete",
    "plan_mismatch": "the labels differ from the dialogue's label plan (a backend that did not force them)",
}

#: Utterances shorter than this many words may repeat ("Yeah.", "What?") without counting as a loop.
REPETITION_MIN_WORDS = 3


@dataclass(frozen=True)
class ParsedDialogue:
    """A dialogue that passed every check; emotions are label indices of the benchmark."""

    speakers: tuple[str, ...]
    utterances: tuple[str, ...]
    emotions: tuple[int, ...]
    #: Non-dialogue lines skipped (preambles, stage directions), kept as a count for inspection.
    ignored_lines: int = 0


@dataclass(frozen=True)
class Rejection:
    """Why an output was rejected: a code from ``REASONS`` and a human-readable detail."""

    reason: str
    detail: str
    line: int | None = field(default=None)

    def __post_init__(self) -> None:
        if self.reason not in REASONS and self.reason not in EXTRA_REASONS:
            raise ValueError(f"unknown rejection reason {self.reason!r}")


_FENCE = re.compile(r"^\s*```[a-zA-Z]*\s*\n(?P<body>.*?)\n\s*```\s*$", re.DOTALL)
_PREFIX = re.compile(r"^\s*(?:(?:\d{1,3}\s*[.):]|[-*•>]|#{1,6})\s+)?")
_TRAILING_LABEL = re.compile(r"[\(\[]\s*(?P<label>[^()\[\]]{1,40}?)\s*[\)\]][\s.*_]*$")
_LABEL_PREFIX = re.compile(r"^(?:emotion|label)\s*[:=]?\s*", re.IGNORECASE)
_NUMBER = re.compile(r"^[+-]?\d+$")
_NUMBER_AND_WORD = re.compile(r"^(?P<num>[+-]?\d+)\s*[:=,.\-–]?\s*(?P<word>[A-Za-z][A-Za-z ]*)$")
_WORD_AND_NUMBER = re.compile(r"^(?P<word>[A-Za-z][A-Za-z ]*?)\s*[:=,\-–]?\s*(?P<num>[+-]?\d+)$")
_WORD = re.compile(r"^[A-Za-z][A-Za-z ]*$")
_HEAD_LABEL = re.compile(r"^(?P<speaker>[^()\[\]]+?)\s*[\(\[]\s*(?P<label>[^()\[\]]{1,40}?)\s*[\)\]]\s*$")
_QUOTES = "\"'“”‘’«»"
_MAX_SPEAKER_WORDS = 4


class _LineError(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.lineno: int | None = None


def _speaker_table(benchmark: Benchmark) -> dict[str, str]:
    return _speaker_table_of(benchmark.speakers)


@cache
def _speaker_table_of(speakers: tuple[str, ...]) -> dict[str, str]:
    """Lower-cased spellings a speaker may be written with -> the registry's spelling (built once per set)."""
    table = {name.lower(): name for name in speakers}
    first_names: dict[str, list[str]] = {}
    for name in speakers:
        parts = name.split()
        if len(parts) > 1:
            first_names.setdefault(parts[0].lower(), []).append(name)
    for first, names in first_names.items():
        if len(names) == 1 and first not in table:
            table[first] = names[0]
    return table


def _label_table(benchmark: Benchmark) -> dict[str, int]:
    return _label_table_of(benchmark.labels, tuple(benchmark.spellings.items()))


@cache
def _label_table_of(labels: tuple[str, ...], spellings: tuple[tuple[str, str], ...]) -> dict[str, int]:
    return {spelling.lower(): labels.index(canonical) for spelling, canonical in spellings}


def _resolve_label(raw: str, benchmark: Benchmark, labels: dict[str, int]) -> int:
    text = _LABEL_PREFIX.sub("", raw.strip().strip("*_ ").strip())
    number: int | None = None
    word: str | None = None
    if _NUMBER.match(text):
        number = int(text)
    elif (m := _NUMBER_AND_WORD.match(text)) or (m := _WORD_AND_NUMBER.match(text)):
        number, word = int(m["num"]), m["word"].strip()
    elif _WORD.match(text):
        word = text.strip()
    else:
        raise _LineError("unknown_label", f"label {raw!r} is neither a number nor an emotion word")
    if number is not None and not 0 <= number < benchmark.num_labels:
        raise _LineError("label_out_of_range", f"label {number} outside 0..{benchmark.num_labels - 1}")
    if word is not None:
        from_word = labels.get(word.lower())
        if from_word is None:
            raise _LineError("unknown_label", f"label word {word!r} is not a {benchmark.name} emotion")
        if number is not None and number != from_word:
            raise _LineError("label_conflict", f"label {raw!r}: number {number} is not {word!r}")
        return from_word
    assert number is not None
    return number


def _resolve_speaker(raw: str, speakers: dict[str, str]) -> str:
    name = speakers.get(raw.lower())
    if name is None:
        raise _LineError("unknown_speaker", f"speaker {raw!r} is not one of the allowed speakers")
    return name


def _clean_utterance(text: str) -> str:
    text = text.strip().strip("*_").strip()
    if len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    return text


def _split_speaker(line: str) -> tuple[str, str, str | None] | None:
    """``(speaker, rest, label before the colon or None)`` when the line looks like ``Speaker: ...`` or
    ``Speaker (label): ...``, else None (prose)."""
    body = _PREFIX.sub("", line, count=1)
    if ":" not in body:
        return None
    head, rest = body.split(":", 1)
    speaker = head.replace("*", "").replace("_", " ").strip().strip(_QUOTES).strip()
    head_label = None
    if match := _HEAD_LABEL.match(speaker):
        speaker, head_label = match["speaker"].strip(), match["label"]
    rest = rest.lstrip("*_ ").rstrip()
    if not speaker or len(speaker.split()) > _MAX_SPEAKER_WORDS or not (rest.strip() or head_label):
        return None
    return speaker, rest, head_label  # a labelled head with nothing after it is an empty utterance, not prose


def _parse_lines(text: str, benchmark: Benchmark) -> tuple[list[tuple[str, str, int]], int]:
    speakers, labels = _speaker_table(benchmark), _label_table(benchmark)
    turns: list[tuple[str, str, int]] = []
    ignored = 0
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        split = _split_speaker(line)
        if split is None:
            ignored += 1
            continue
        raw_speaker, rest, head_label = split
        try:
            speaker = _resolve_speaker(raw_speaker, speakers)
            # a label before the colon is the line's label: what follows is all utterance, brackets included
            match = _TRAILING_LABEL.search(rest) if head_label is None else None
            if match is None and head_label is None:
                raise _LineError("missing_label", f"no trailing (N) label in {rest.strip()[-60:]!r}")
            emotion = _resolve_label(head_label if match is None else match["label"], benchmark, labels)
            utterance = _clean_utterance(rest[: match.start()] if match else rest)
            if not utterance:
                raise _LineError("empty_utterance", "speaker and label but no words")
        except _LineError as exc:
            exc.detail = f"line {lineno}: {exc.detail}"
            exc.lineno = lineno
            raise
        turns.append((speaker, utterance, emotion))
    return turns, ignored


def _json_value(data: Any, path: str, kind: type, what: str) -> Any:
    if not isinstance(data, kind) or isinstance(data, bool):
        raise _LineError("invalid_json", f"{path}: expected {what}, got {type(data).__name__}")
    return data


def _parse_json(text: str, benchmark: Benchmark) -> list[tuple[str, str, int]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _LineError("invalid_json", f"not valid JSON: {exc}") from None
    turns_data = _json_value(_json_value(data, "$", dict, "an object").get("turns"), "$.turns", list, "a list")
    speakers, labels = _speaker_table(benchmark), _label_table(benchmark)
    turns = []
    for i, turn in enumerate(turns_data):
        path = f"$.turns[{i}]"
        _json_value(turn, path, dict, "an object")
        raw_speaker = _json_value(turn.get("speaker"), f"{path}.speaker", str, "a string")
        utterance = _clean_utterance(_json_value(turn.get("utterance"), f"{path}.utterance", str, "a string"))
        emotion = turn.get("emotion")
        try:
            speaker = _resolve_speaker(raw_speaker.strip(), speakers)
            if isinstance(emotion, int) and not isinstance(emotion, bool):
                emotion = _resolve_label(str(emotion), benchmark, labels)
            elif isinstance(emotion, str):
                emotion = _resolve_label(emotion, benchmark, labels)
            elif emotion is None:
                raise _LineError("missing_label", "no emotion")
            else:
                raise _LineError("unknown_label", f"emotion {emotion!r} is neither a number nor a word")
            if not utterance:
                raise _LineError("empty_utterance", "empty utterance")
        except _LineError as exc:
            exc.detail = f"{path}: {exc.detail}"
            raise
        turns.append((speaker, utterance, emotion))
    return turns


def _normalise(utterance: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", utterance.lower()).split())


def _check_dialogue(turns: list[tuple[str, str, int]], benchmark: Benchmark, min_turns: int, max_turns: int,
                    target_label: int | None) -> Rejection | None:
    if not turns:
        return Rejection("no_lines", "no dialogue line found")
    if len(turns) < min_turns:
        return Rejection("too_few_turns", f"{len(turns)} turns, at least {min_turns} requested")
    if len(turns) > max_turns:
        return Rejection("too_many_turns", f"{len(turns)} turns, at most {max_turns} requested")
    if len({speaker for speaker, _, _ in turns}) < 2:
        return Rejection("one_speaker", f"all {len(turns)} turns by {turns[0][0]!r}")
    seen: dict[str, int] = {}
    for turn, (_, utterance, _) in enumerate(turns):
        key = _normalise(utterance)
        if len(key.split()) >= REPETITION_MIN_WORDS:
            if key in seen:
                return Rejection("repetition", f"turn {turn} repeats turn {seen[key]}: {utterance[:60]!r}")
            seen[key] = turn
    if target_label is not None and target_label not in {emotion for _, _, emotion in turns}:
        return Rejection("target_absent", f"no utterance labelled {target_label} "
                                          f"({benchmark.labels[target_label]})")
    return None


def _strip_fence(text: str) -> str:
    match = _FENCE.match(text)
    return match["body"] if match else text


def parse_dialogue(
    text: str,
    benchmark: Benchmark,
    *,
    min_turns: int,
    max_turns: int,
    target_label: int | None = None,
) -> ParsedDialogue | Rejection:
    """Parse an LLM's output into a dialogue of ``benchmark``, or say precisely why it is rejected."""
    body = _strip_fence(text).strip()
    ignored = 0
    try:
        if body.startswith("{"):
            turns = _parse_json(body, benchmark)
        else:
            turns, ignored = _parse_lines(body, benchmark)
    except _LineError as exc:
        return Rejection(exc.reason, exc.detail, exc.lineno)
    rejection = _check_dialogue(turns, benchmark, min_turns, max_turns, target_label)
    if rejection is not None:
        return rejection
    return ParsedDialogue(
        speakers=tuple(t[0] for t in turns),
        utterances=tuple(t[1] for t in turns),
        emotions=tuple(t[2] for t in turns),
        ignored_lines=ignored,
    )
