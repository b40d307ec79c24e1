"""Decoding constraints for the dialogue output structure, as a regex and as a JSON schema.

Why two shapes: TGI and xgrammar take a regex, which keeps the human-readable ``Speaker: utterance (N)``
lines the prompt asks for; OpenAI-compatible servers (vLLM, llama.cpp, SGLang) only take a JSON schema
through ``response_format``. The parser accepts both shapes.

Why a small regex dialect: the same string is compiled by xgrammar (in-process) and by outlines in TGI
(``{"type": "regex"}``). Both understand literals, ``|``, plain groups, character classes, ``{m,n}`` and
backslash escapes of metacharacters; neither needs lookaheads, anchors or backreferences, so none are used.
Spaces are never escaped (xgrammar warns on ``\\ ``).

Why the grammar and the parser agree on what a line and an utterance are: lines end at ``\\n`` only (the parser
splits on ``\\n``, not ``str.splitlines()``, so a ``\\r`` or ``\\u2028`` the grammar lets through stays inside its
utterance), and an utterance starts and ends with a character the parser keeps (not whitespace, ``*`` or ``_``,
and no opening quote), so every grammar-valid output reads back with exactly the utterances that were generated.
Characters beyond Latin-1 are written literally in classes: interegular (outlines) reads no ``\\u`` escapes.

Label formats (``LABEL_FORMATS``): ``number`` is ``Speaker: utterance (N)``, the study's; ``word`` is
``Speaker: utterance (joy)``; ``word_first`` is ``Speaker (joy): utterance``, where the emotion is decided before
the words that must express it. The parser reads all three.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: Characters with a meaning in regex syntax; everything else in a speaker name is matched literally.
_METACHARACTERS = frozenset("\\.^$*+?()[]{}|")
#: Inside an utterance: any character except a newline (ends the line) and parentheses (the label's).
_UTTERANCE_CHARS = r"[^\n\(\)]"
#: Characters ``str.strip()`` removes, in the portable dialect: ``\\x`` escapes below 256, literal above.
_WHITESPACE = "".join(
    (" " if char == " " else f"\\x{ord(char):02x}") if ord(char) < 0x100 else char
    for char in map(chr, range(0x110000)) if char.isspace()
)
#: An utterance's last character: one the parser's clean-up (``parsing._clean_utterance``) does not strip.
_UTTERANCE_LAST = f"[^\\(\\)*_{_WHITESPACE}]"
#: Its first character: also no opening quote (the parser strips a quote pair around a whole utterance).
_UTTERANCE_FIRST = f"[^\\(\\)*_{_WHITESPACE}\"'“”‘’«»]"
#: How a line carries its label; see the module docstring.
LABEL_FORMATS: tuple[str, ...] = ("number", "word", "word_first")


def escape_literal(text: str) -> str:
    """Escape ``text`` for the portable regex subset (a backslash before each metacharacter only)."""
    return "".join("\\" + char if char in _METACHARACTERS else char for char in text)


def _label_tokens(num_labels: int, label_format: str, label_names: Sequence[str] | None) -> list[str]:
    """What may stand inside a label's parentheses, by label index: its number, or its name."""
    if num_labels < 1:
        raise ValueError(f"num_labels must be at least 1, got {num_labels}")
    if label_format not in LABEL_FORMATS:
        raise ValueError(f"label_format {label_format!r} is not one of {', '.join(LABEL_FORMATS)}")
    if label_format == "number":
        return [str(i) for i in range(num_labels)]
    if label_names is None or len(label_names) != num_labels:
        raise ValueError(f"label_format {label_format!r} needs label_names, one per label ({num_labels})")
    for name in label_names:
        if not name or any(char in name for char in "\n():") or escape_literal(name) != name:
            raise ValueError(f"label name {name!r} is empty or contains a newline, parenthesis, colon or metacharacter")
    return list(label_names)


def _label_pattern(tokens: Sequence[str]) -> str:
    if all(token.isdigit() for token in tokens) and len(tokens) <= 10:
        return f"[0-{len(tokens) - 1}]"
    return "(" + "|".join(tokens) + ")"


def _utterance_pattern(max_utterance_chars: int) -> str:
    if max_utterance_chars == 1:
        return _UTTERANCE_FIRST
    return f"{_UTTERANCE_FIRST}({_UTTERANCE_CHARS}{{0,{max_utterance_chars - 2}}}{_UTTERANCE_LAST})?"


def _check_turns(min_turns: int, max_turns: int) -> None:
    if not 1 <= min_turns <= max_turns:
        raise ValueError(f"need 1 <= min_turns <= max_turns, got min_turns={min_turns}, max_turns={max_turns}")


def _check_speakers(speakers: Sequence[str]) -> None:
    if not speakers:
        raise ValueError("at least one speaker is needed")
    for speaker in speakers:
        if not speaker or any(char in speaker for char in "\n():"):
            raise ValueError(f"speaker name {speaker!r} is empty or contains a newline, parenthesis or colon")


def _check_limits(speakers: Sequence[str], min_turns: int, max_turns: int, max_utterance_chars: int) -> None:
    """The argument checks both dialogue shapes share, so the regex and the JSON schema refuse the same input."""
    _check_speakers(speakers)
    _check_turns(min_turns, max_turns)
    if max_utterance_chars < 1:
        raise ValueError(f"max_utterance_chars must be positive, got {max_utterance_chars}")


def _check_target(target_label: int, num_labels: int) -> None:
    if not 0 <= target_label < num_labels:
        raise ValueError(f"target_label {target_label} is outside 0..{num_labels - 1}")


def _line(speakers_alt: str, utterance: str, label: str, label_format: str) -> str:
    if label_format == "word_first":
        return f"({speakers_alt}) \\({label}\\): {utterance}"
    return f"({speakers_alt}): {utterance} \\({label}\\)"


def _repeat(pattern: str, low: int, high: int) -> str:
    if high == 0:
        return ""
    if low == high:
        return f"({pattern}){{{low}}}"
    return f"({pattern}){{{low},{high}}}"


def dialogue_regex(
    speakers: Sequence[str],
    num_labels: int,
    min_turns: int,
    max_turns: int,
    *,
    max_utterance_chars: int = 300,
    target_label: int | None = None,
    label_format: str = "number",
    label_names: Sequence[str] | None = None,
    planned_labels: Sequence[int] | None = None,
) -> str:
    """A regex matching a whole dialogue: ``min_turns..max_turns`` lines ``Speaker: utterance (N)``.

    Speakers come from ``speakers``; ``N`` is in ``0..num_labels-1`` (or, for the word formats, one of
    ``label_names``); an utterance has 1 to ``max_utterance_chars`` characters without newline or parentheses,
    and starts and ends with a character the parser keeps. Lines are joined by one newline, with no trailing
    newline, so the model can only stop (EOS) after a complete line. With ``target_label``, at least one line
    must carry that label: the dialogue is the alternation, over the position ``i`` of the first such line, of
    ``i`` lines, the target line and enough further lines to stay within the turn range.

    With ``planned_labels`` (a label plan, ``generation.label_plan``), the dialogue has exactly one line per
    planned label, the ``k``-th carrying the ``k``-th label; the plan's length must lie in the turn range, and a
    ``target_label`` must be one of the planned labels (the plan already holds it).
    """
    _check_limits(speakers, min_turns, max_turns, max_utterance_chars)
    tokens = _label_tokens(num_labels, label_format, label_names)
    speakers_alt = "|".join(escape_literal(speaker) for speaker in dict.fromkeys(speakers))
    utterance = _utterance_pattern(max_utterance_chars)
    if planned_labels is not None:
        if not min_turns <= len(planned_labels) <= max_turns:
            raise ValueError(f"a plan of {len(planned_labels)} labels is outside {min_turns}..{max_turns} turns")
        for label in planned_labels:
            _check_target(label, num_labels)
        if target_label is not None and target_label not in planned_labels:
            raise ValueError(f"target_label {target_label} is not in the plan {list(planned_labels)}")
        return "\\n".join(_line(speakers_alt, utterance, tokens[label], label_format) for label in planned_labels)
    any_line = _line(speakers_alt, utterance, _label_pattern(tokens), label_format)
    if target_label is None:
        return any_line + _repeat("\\n" + any_line, min_turns - 1, max_turns - 1)
    _check_target(target_label, num_labels)
    target_line = _line(speakers_alt, utterance, tokens[target_label], label_format)
    alternatives = []
    for before in range(max_turns):
        after_low, after_high = max(0, min_turns - 1 - before), max_turns - 1 - before
        alternatives.append(
            _repeat(any_line + "\\n", before, before) + target_line + _repeat("\\n" + any_line, after_low, after_high)
        )
    return "(" + "|".join(alternatives) + ")"


def dialogue_json_schema(
    speakers: Sequence[str],
    num_labels: int,
    min_turns: int,
    max_turns: int,
    *,
    max_utterance_chars: int = 300,
    target_label: int | None = None,
    label_format: str = "number",
    label_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """A JSON schema for ``{"turns": [{"speaker", "utterance", "emotion"}, ...]}`` with the same limits.

    ``target_label`` adds a ``contains`` clause (standard JSON Schema); xgrammar and outlines do not enforce
    ``contains``, so the parser still checks the target emotion and rejects dialogues without it. The word
    formats make ``emotion`` one of ``label_names`` (a JSON object has no order, so ``word_first`` is ``word``).
    """
    _check_limits(speakers, min_turns, max_turns, max_utterance_chars)
    tokens = _label_tokens(num_labels, label_format, label_names)
    emotion: dict[str, Any] = {"type": "integer", "minimum": 0, "maximum": num_labels - 1}
    if label_format != "number":
        emotion = {"type": "string", "enum": tokens}
    turn = {
        "type": "object",
        "properties": {
            "speaker": {"type": "string", "enum": list(dict.fromkeys(speakers))},
            "utterance": {"type": "string", "minLength": 1, "maxLength": max_utterance_chars},
            "emotion": emotion,
        },
        "required": ["speaker", "utterance", "emotion"],
        "additionalProperties": False,
    }
    turns: dict[str, Any] = {"type": "array", "items": turn, "minItems": min_turns, "maxItems": max_turns}
    if target_label is not None:
        _check_target(target_label, num_labels)
        target = target_label if label_format == "number" else tokens[target_label]
        turns["contains"] = {"type": "object", "properties": {"emotion": {"const": target}}}
    return {
        "type": "object",
        "properties": {"turns": turns},
        "required": ["turns"],
        "additionalProperties": False,
    }
