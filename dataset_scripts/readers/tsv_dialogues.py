"""CoMPM's tab-separated dialogue files (``EMORY_*.txt``, ``iemocap_*.txt``).

One utterance per line, ``speaker<TAB>utterance<TAB>label``; a blank line ends a dialogue. The files carry no
dialogue ids, so every dialogue comes back with ``dialogue_id=None`` and the loader recovers the ids (see
``dataset_scripts.readers.dialogue_ids``).
"""

from __future__ import annotations

from ..core.errors import DataFormatError
from .base import Dialogue, SplitSource, check_text, label_index, read_text

FIELDS: tuple[str, ...] = ("speaker", "utterance", "emotion")


def read(source: SplitSource) -> list[Dialogue]:
    """Parse one split file; two blank lines in a row (or a leading blank line) are an empty dialogue."""
    path = source.path
    lines = read_text(path).split("\n")
    dialogues: list[Dialogue] = []
    current = Dialogue(None)
    blank_run_start: int | None = None  # first line of the current run of blank lines
    for number, raw in enumerate(lines, start=1):
        line = raw.removesuffix("\r")
        if not line:
            if current.utterances:
                dialogues.append(current)
                current = Dialogue(None)
            if blank_run_start is None:
                blank_run_start = number
            continue
        if blank_run_start is not None:  # trailing blank lines never reach here, so they are allowed
            if blank_run_start == 1 or number - blank_run_start > 1:
                raise DataFormatError(
                    path, f"empty dialogue: blank lines {blank_run_start}-{number - 1} separate no utterances",
                    line=blank_run_start,
                )
            blank_run_start = None
        if not line.strip():
            raise DataFormatError(path, "line holds only whitespace", line=number, value=line)
        fields = line.split("\t")
        if len(fields) != len(FIELDS):
            raise DataFormatError(
                path, f"expected {len(FIELDS)} tab-separated fields (speaker, utterance, emotion), found {len(fields)}",
                line=number, value=line,
            )
        speaker, text, spelling = fields
        current.speakers.append(check_text(path, speaker, field="speaker", line=number))
        current.utterances.append(check_text(path, text, field="utterance", line=number, allow_empty=True))
        current.emotions.append(label_index(source, spelling, field="emotion", line=number))
    if current.utterances:
        dialogues.append(current)
    if not dialogues:
        raise DataFormatError(path, "no dialogues in file")
    return dialogues
