"""Dialogue ids for files that carry none (CoMPM's tab-separated files, DialogXL's EmoryNLP json).

Ids are recovered by content from sibling files of the same benchmark whose format records ids: IEMOCAP's
DialogXL json (``<DialogueID>_<M|F>`` speakers) and EmoryNLP's original json (scene ids). A dialogue gets an id
when its utterance texts, whitespace collapsed, appear in that order in a candidate dialogue not yet taken (the
DialogXL IEMOCAP files add unlabelled context utterances, so a match is a subsequence, not equality); where
several match (EmoryNLP dev has two identical scenes) the first in file order wins.

Why content and not position: the data README says CoMPM's IEMOCAP dialogue k is the k-th id of its split in
sorted order, but the 12 validation ids of that split exist in no file; matching by content needs no typed-in
list and checks itself. When any dialogue of a split fails to match (EmoryNLP train has no sibling with ids),
the whole split falls back to positional ids ``<split>_<k:04d>`` so that ids never mix two schemes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from .base import Dialogue


def normalise(text: str) -> str:
    """Collapse whitespace runs: DialogXL collapsed them, CoMPM kept the original double spaces."""
    return " ".join(text.split())


def positional_ids(split: str, count: int) -> list[str]:
    """Ids that only say where a dialogue sits in its file: ``train_0000``, ``train_0001``..."""
    return [f"{split}_{k:04d}" for k in range(count)]


def candidate_texts(dialogues: Iterable[Dialogue]) -> dict[str, list[str]]:
    """Map dialogue id -> normalised texts for the dialogues that carry an id."""
    return {d.dialogue_id: [normalise(t) for t in d.utterances] for d in dialogues if d.dialogue_id is not None}


def _is_subsequence(needle: Sequence[str], haystack: Sequence[str]) -> bool:
    remaining = iter(haystack)
    return all(any(item == other for other in remaining) for item in needle)


def match_ids(dialogues: Sequence[Dialogue], candidates: Mapping[str, Sequence[str]]) -> list[str] | None:
    """The id of each dialogue by content, or None unless every dialogue matches a distinct candidate.

    Candidates are tried in their files' order, so dialogues with identical content get ids in file order.
    """
    if not candidates:
        return None
    order = {dialogue_id: k for k, dialogue_id in enumerate(candidates)}
    by_text: dict[str, set[str]] = {}
    for dialogue_id, texts in candidates.items():
        for text in texts:
            by_text.setdefault(text, set()).add(dialogue_id)
    ids: list[str] = []
    for dialogue in dialogues:
        texts = [normalise(t) for t in dialogue.utterances]
        pool = set.intersection(*(by_text.get(text, set()) for text in set(texts)))
        found = sorted((c for c in pool if c not in ids and _is_subsequence(texts, candidates[c])), key=order.get)
        if not found:
            return None
        ids.append(found[0])  # identical scenes (EmoryNLP dev s04_e01_c13/c14) are taken in file order
    return ids
