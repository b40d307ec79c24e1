"""EmoryNLP's original release format, ``emotion-detection-{trn,dev,tst}.json``.

``{"episodes": [{"episode_id", "scenes": [{"scene_id", "utterances": [{"utterance_id", "speakers": [...],
"transcript", "emotion"}]}]}]}``: a dialogue is a scene, keyed by its ``scene_id`` (``s01_e15_c01``).

Several speakers on one utterance (5 dev, 10 test) become one string joined by ``MULTI_SPEAKER_SEPARATOR``
(``"Chandler Bing & Joey Tribbiani"``). Why not DialogXL's plain space or CoMPM's first speaker: a space makes
"Chandler Bing Joey Tribbiani" look like one person, and keeping only the first speaker loses information;
``" & "`` never occurs in a name, so the list can be recovered with ``str.split(" & ")``.
"""

from __future__ import annotations

from typing import Any

from ..core.errors import DataFormatError
from .base import Dialogue, SplitSource, check_text, label_index, load_json

MULTI_SPEAKER_SEPARATOR = " & "


def _field(source: SplitSource, obj: Any, key: str, kind: type, json_path: str) -> Any:
    if not isinstance(obj, dict):
        raise DataFormatError(source.path, f"expected an object, found {type(obj).__name__}", json_path=json_path)
    if key not in obj:
        raise DataFormatError(source.path, "missing key", json_path=json_path, field=key)
    value = obj[key]
    if not isinstance(value, kind):
        raise DataFormatError(
            source.path, f"expected {kind.__name__}, found {type(value).__name__}",
            json_path=f"{json_path}.{key}", field=key, value=value,
        )
    return value


def read(source: SplitSource) -> list[Dialogue]:
    """Parse one split file into scenes, in file order (utterance ids inside a scene have gaps)."""
    path = source.path
    data = load_json(path)
    dialogues = []
    for e, episode in enumerate(_field(source, data, "episodes", list, "$")):
        for s, scene in enumerate(_field(source, episode, "scenes", list, f"$.episodes[{e}]")):
            scene_path = f"$.episodes[{e}].scenes[{s}]"
            scene_id = check_text(
                path, _field(source, scene, "scene_id", str, scene_path), field="scene_id",
                json_path=f"{scene_path}.scene_id",
            )
            utterances = _field(source, scene, "utterances", list, scene_path)
            if not utterances:
                raise DataFormatError(
                    path, "empty dialogue (scene without utterances)", json_path=f"{scene_path}.utterances",
                    field="scene_id", value=scene_id,
                )
            dialogue = Dialogue(scene_id)
            for u, utterance in enumerate(utterances):
                json_path = f"{scene_path}.utterances[{u}]"
                speakers = _field(source, utterance, "speakers", list, json_path)
                if not speakers:
                    raise DataFormatError(path, "empty speaker list", json_path=f"{json_path}.speakers")
                names = [
                    check_text(path, name, field="speakers", json_path=f"{json_path}.speakers[{k}]")
                    for k, name in enumerate(speakers)
                ]
                dialogue.speakers.append(MULTI_SPEAKER_SEPARATOR.join(names))
                dialogue.utterances.append(
                    check_text(path, _field(source, utterance, "transcript", str, json_path), field="transcript",
                               json_path=f"{json_path}.transcript", allow_empty=True)
                )
                dialogue.emotions.append(
                    label_index(source, _field(source, utterance, "emotion", object, json_path), field="emotion",
                                json_path=f"{json_path}.emotion")
                )
            dialogues.append(dialogue)
    if not dialogues:
        raise DataFormatError(path, "no scenes in file", json_path="$.episodes")
    return dialogues
