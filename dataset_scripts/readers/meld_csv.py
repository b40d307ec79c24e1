"""MELD's ``*_sent_emo.csv`` files: one row per utterance, dialogues keyed by ``Dialogue_ID``.

Why sort by ``Utterance_ID`` instead of trusting row order: the id has gaps (72 train dialogues) but is the
official order; dialogue ids keep MELD's own numbering (``train_dia0``), which restarts in every split, so the
split name is part of the id.
"""

from __future__ import annotations

import csv
import io

from ..core.errors import DataFormatError
from .base import Dialogue, SplitSource, check_text, label_index, read_text

REQUIRED_COLUMNS: tuple[str, ...] = ("Utterance", "Speaker", "Emotion", "Dialogue_ID", "Utterance_ID")


def _int_field(source: SplitSource, row: dict[str, str], name: str, line: int) -> int:
    value = row[name]
    try:
        return int(value)
    except ValueError:
        raise DataFormatError(source.path, "expected an integer", line=line, field=name, value=value) from None


def read(source: SplitSource) -> list[Dialogue]:
    """Parse one MELD csv split into dialogues ordered by Dialogue_ID, utterances by Utterance_ID."""
    path = source.path
    reader = csv.reader(io.StringIO(read_text(path), newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise DataFormatError(path, "empty file: expected a header row", line=1) from None
    except csv.Error as exc:
        raise DataFormatError(path, f"unreadable csv header: {exc}", line=1) from None
    for column in REQUIRED_COLUMNS:
        if column not in header:
            raise DataFormatError(
                path, f"missing column; the header has: {', '.join(header)}", line=1, field=column
            )

    turns: dict[int, dict[int, tuple[str, str, int]]] = {}
    line = reader.line_num + 1  # first physical line of the next record (quoted fields may span lines)
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise DataFormatError(path, f"malformed csv record: {exc}", line=line) from None
        if not fields:  # a blank line, e.g. at the end of the file
            line = reader.line_num + 1
            continue
        if len(fields) != len(header):
            raise DataFormatError(
                path, f"truncated or malformed row: {len(fields)} fields, the header has {len(header)}",
                line=line, value=",".join(fields),
            )
        row = dict(zip(header, fields, strict=True))
        dialogue = _int_field(source, row, "Dialogue_ID", line)
        turn = _int_field(source, row, "Utterance_ID", line)
        if turn in turns.setdefault(dialogue, {}):
            raise DataFormatError(
                path, f"duplicate (Dialogue_ID, Utterance_ID) = ({dialogue}, {turn})", line=line,
                field="Utterance_ID", value=row["Utterance_ID"],
            )
        turns[dialogue][turn] = (
            check_text(path, row["Speaker"], field="Speaker", line=line),
            check_text(path, row["Utterance"], field="Utterance", line=line, allow_empty=True),
            label_index(source, row["Emotion"], field="Emotion", line=line),
        )
        line = reader.line_num + 1

    if not turns:
        raise DataFormatError(path, "no utterance rows after the header")
    dialogues = []
    for dialogue_id in sorted(turns):
        record = Dialogue(f"{source.split}_dia{dialogue_id}")
        for turn in sorted(turns[dialogue_id]):
            speaker, text, emotion = turns[dialogue_id][turn]
            record.speakers.append(speaker)
            record.utterances.append(text)
            record.emotions.append(emotion)
        dialogues.append(record)
    return dialogues
