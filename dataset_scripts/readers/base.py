"""What every reader shares: the parsed-dialogue record, strict UTF-8 decoding and checked labels.

Why a plain record instead of building ``datasets`` rows directly: readers only parse; the loader then gives
dialogues without an id in their file one (recovered from a sibling file or positional) and builds the
ClassLabel features in one place, so every format ends in the same schema.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import DataFormatError, UnknownLabelError
from ..core.registry import Benchmark
from ..schema import UNLABELLED

#: C1 control characters never occur in real text; they are cp1252 punctuation decoded as latin-1 (the
#: pre-2020 MELD csv files store U+0092 for an apostrophe, for instance).
_C1_CONTROLS = re.compile("[\u0080-\u009f]")


@dataclass(frozen=True)
class SplitSource:
    """One split file to read, with the benchmark that gives its labels and speakers."""

    benchmark: Benchmark
    split: str
    path: Path


@dataclass
class Dialogue:
    """A parsed dialogue. ``dialogue_id`` is None when the file carries no id (the loader assigns one)."""

    dialogue_id: str | None
    speakers: list[str] = field(default_factory=list)
    utterances: list[str] = field(default_factory=list)
    #: Label indices in ``benchmark.labels`` order, or ``UNLABELLED`` for context utterances.
    emotions: list[int] = field(default_factory=list)

    def as_row(self) -> dict[str, Any]:
        return {
            "dialogue_id": self.dialogue_id,
            "speakers": self.speakers,
            "utterances": self.utterances,
            "emotions": self.emotions,
        }


#: A reader turns one split file into dialogues, raising ``DataFormatError`` on anything it cannot read.
Reader = Callable[[SplitSource], list[Dialogue]]


def read_text(path: Path) -> str:
    """The file's text, decoded as strict UTF-8; a missing file or foreign encoding names the spot."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataFormatError(path, "file not found") from None
    except IsADirectoryError:
        raise DataFormatError(path, "expected a file, found a directory") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DataFormatError(
            path,
            f"not valid UTF-8 at column {column} (byte offset {exc.start}); the file looks like cp1252/latin-1:"
            " re-encode it as UTF-8",
            line=line,
            value=data[max(0, exc.start - 12) : exc.end + 12],
        ) from None


def load_json(path: Path) -> Any:
    """Parse a JSON file; a truncated or malformed file reports its line and column."""
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataFormatError(
            path, f"invalid JSON at column {exc.colno}: {exc.msg} (truncated file?)", line=exc.lineno
        ) from None


def check_text(
    path: Path, value: object, *, field: str, line: int | None = None, json_path: str | None = None,
    allow_empty: bool = False,
) -> str:
    """A string free of cp1252-as-latin-1 control characters, or a ``DataFormatError``.

    ``allow_empty`` is for utterance texts only: IEMOCAP's DialogXL test file has one empty, unlabelled
    context utterance, and dropping it would change the file's counts. Speakers and ids must never be empty.
    """
    if not isinstance(value, str):
        raise DataFormatError(
            path, f"expected a string, found {type(value).__name__}", line=line, json_path=json_path,
            field=field, value=value,
        )
    if not allow_empty and not value.strip():
        raise DataFormatError(path, "empty value", line=line, json_path=json_path, field=field, value=value)
    bad = _C1_CONTROLS.search(value)
    if bad:
        raise DataFormatError(
            path,
            f"control character U+{ord(bad.group()):04X}: cp1252 punctuation stored as latin-1 (wrong encoding;"
            " for MELD use the UTF-8-corrected csv files)",
            line=line, json_path=json_path, field=field, value=value,
        )
    return value


def label_index(
    source: SplitSource, spelling: object, *, field: str, line: int | None = None, json_path: str | None = None
) -> int:
    """The label index of a spelling found in a file; unknown spellings are errors, never guesses."""
    if not isinstance(spelling, str):
        raise DataFormatError(
            source.path, "label must be a string", line=line, json_path=json_path, field=field, value=spelling
        )
    try:
        return source.benchmark.label_index(spelling)
    except UnknownLabelError as exc:
        known = ", ".join(sorted(source.benchmark.spellings))
        raise DataFormatError(
            source.path, f"unknown {source.benchmark.name} label (known: {known})",
            line=line, json_path=json_path, field=field, value=spelling,
        ) from exc


__all__ = ["UNLABELLED", "Dialogue", "Reader", "SplitSource", "check_text", "label_index", "load_json", "read_text"]
