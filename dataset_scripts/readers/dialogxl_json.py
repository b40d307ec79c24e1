"""DialogXL's ``*_data.json`` files (EmoryNLP and IEMOCAP): a list of dialogues, each a list of utterances.

Each utterance is ``{"text", "speaker", "label"}``. Two quirks decide the design:

- IEMOCAP's speaker field is ``<DialogueID>_<M|F>``: when a file's speakers have the form
  ``<prefix>_<registry speaker>``, the prefix is the dialogue id and the suffix the speaker. Otherwise the
  speaker is kept as written (EmoryNLP joins several speakers with spaces) and the file carries no ids.
- IEMOCAP leaves out ``label`` where the gold label lies outside the six classes. Those utterances are kept as
  context with ``UNLABELLED`` (-1), the value losses and metrics ignore. A ``label`` that is present is always
  checked against the registry.
"""

from __future__ import annotations

from typing import Any

from ..core.errors import DataFormatError
from .base import UNLABELLED, Dialogue, SplitSource, check_text, label_index, load_json


def _split_speaker(source: SplitSource, speaker: str) -> tuple[str, str] | None:
    """``("Ses01F_impro01", "F")`` for ``"Ses01F_impro01_F"``, or None when the field is a plain name."""
    prefix, sep, suffix = speaker.rpartition("_")
    if sep and prefix and suffix in source.benchmark.speakers:
        return prefix, suffix
    return None


def _utterance(source: SplitSource, item: Any, json_path: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise DataFormatError(
            source.path, f"expected an utterance object, found {type(item).__name__}", json_path=json_path,
            value=item,
        )
    for key in ("text", "speaker"):
        if key not in item:
            raise DataFormatError(source.path, "missing key", json_path=json_path, field=key)
    return item


def read(source: SplitSource) -> list[Dialogue]:
    """Parse one split file; dialogue ids come from the speaker field when it carries them."""
    path = source.path
    data = load_json(path)
    if not isinstance(data, list):
        raise DataFormatError(path, f"expected a list of dialogues, found {type(data).__name__}", json_path="$")
    if not data:
        raise DataFormatError(path, "no dialogues in file", json_path="$")
    ids_in_speakers: bool | None = None  # decided by the file's first utterance, then enforced
    dialogues = []
    for i, items in enumerate(data):
        if not isinstance(items, list):
            raise DataFormatError(
                path, f"expected a list of utterances, found {type(items).__name__}", json_path=f"$[{i}]"
            )
        if not items:
            raise DataFormatError(path, "empty dialogue", json_path=f"$[{i}]")
        dialogue = Dialogue(None)
        for j, raw in enumerate(items):
            json_path = f"$[{i}][{j}]"
            item = _utterance(source, raw, json_path)
            speaker = check_text(path, item["speaker"], field="speaker", json_path=f"{json_path}.speaker")
            parts = _split_speaker(source, speaker)
            if ids_in_speakers is None:
                ids_in_speakers = parts is not None
            if ids_in_speakers:
                if parts is None or (dialogue.dialogue_id not in (None, parts[0])):
                    expected = dialogue.dialogue_id or "<DialogueID>"
                    raise DataFormatError(
                        path, f"speaker must read {expected}_<{'|'.join(source.benchmark.speakers)}> like the"
                        " rest of this file", json_path=f"{json_path}.speaker", field="speaker", value=speaker,
                    )
                dialogue.dialogue_id, speaker = parts
            dialogue.speakers.append(speaker)
            dialogue.utterances.append(
                check_text(path, item["text"], field="text", json_path=f"{json_path}.text", allow_empty=True)
            )
            if "label" in item:
                dialogue.emotions.append(
                    label_index(source, item["label"], field="label", json_path=f"{json_path}.label")
                )
            else:
                dialogue.emotions.append(UNLABELLED)
        dialogues.append(dialogue)
    return dialogues
