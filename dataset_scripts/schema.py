"""The dialogue schema shared by real and synthetic data.

Two configs: ``dialogues`` (one row per dialogue) and ``utterances`` (one row per utterance). Both carry the
emotion as a ``ClassLabel`` whose names come from the benchmark registry, in its order.

Unlabelled utterances (IEMOCAP's DialogXL files keep context utterances whose gold label lies outside the six
classes) carry ``UNLABELLED`` (-1), the value ``datasets`` itself uses for a missing ClassLabel. Collators map
it to -100 for the loss, and the ``erc_metrics`` metric drops it when called with ``ignore_index=-1``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from datasets import ClassLabel, Dataset, DatasetDict, Features, List, Value

from .core.registry import UNLABELLED as UNLABELLED  # re-exported: the schema's documented missing-label value
from .core.registry import Benchmark

DIALOGUE_COLUMNS: tuple[str, ...] = ("dialogue_id", "speakers", "utterances", "emotions")
UTTERANCE_COLUMNS: tuple[str, ...] = ("dialogue_id", "turn", "speaker", "utterance", "emotion")
CONFIGS: tuple[str, ...] = ("dialogues", "utterances")


def emotion_label(benchmark: Benchmark) -> ClassLabel:
    """The ClassLabel of a benchmark's emotions, in canonical order."""
    return ClassLabel(names=list(benchmark.labels))


def dialogue_features(benchmark: Benchmark, extra: Mapping[str, Any] | None = None) -> Features:
    """Features of the ``dialogues`` config; ``extra`` adds dialogue-level provenance columns."""
    features = {
        "dialogue_id": Value("string"),
        "speakers": List(Value("string")),
        "utterances": List(Value("string")),
        "emotions": List(emotion_label(benchmark)),
    }
    features.update(extra or {})
    return Features(features)


def utterance_features(benchmark: Benchmark, extra: Mapping[str, Any] | None = None) -> Features:
    """Features of the ``utterances`` config; ``extra`` columns repeat the dialogue's values on each row."""
    features = {
        "dialogue_id": Value("string"),
        "turn": Value("int32"),
        "speaker": Value("string"),
        "utterance": Value("string"),
        "emotion": emotion_label(benchmark),
    }
    features.update(extra or {})
    return Features(features)


def extra_columns(features: Features) -> dict[str, Any]:
    """Dialogue-level columns beyond the schema's four (provenance of synthetic rows)."""
    return {name: feature for name, feature in features.items() if name not in DIALOGUE_COLUMNS}


def utterance_rows(dialogue: Mapping[str, Any], extras: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
    """The ``utterances`` rows of one ``dialogues`` row, with the ``extras`` columns repeated on each.

    The one place utterance rows are made: the builder's ``utterances`` schema and ``dialogues_to_utterances``
    both call it, so the two can never disagree on columns or order.
    """
    rows = zip(dialogue["speakers"], dialogue["utterances"], dialogue["emotions"], strict=True)
    for turn, (speaker, text, emotion) in enumerate(rows):
        yield {"dialogue_id": dialogue["dialogue_id"], "turn": turn, "speaker": speaker, "utterance": text,
               "emotion": emotion, **{name: dialogue[name] for name in extras}}


def _utterance_batch(batch: dict[str, list], extras: Sequence[str]) -> dict[str, list]:
    out: dict[str, list] = {name: [] for name in (*UTTERANCE_COLUMNS, *extras)}
    for i in range(len(batch["dialogue_id"])):
        for row in utterance_rows({name: column[i] for name, column in batch.items()}, extras):
            for name, value in row.items():
                out[name].append(value)
    return out


def dialogues_to_utterances(data: Dataset | DatasetDict) -> Dataset | DatasetDict:
    """Convert the ``dialogues`` config into the ``utterances`` config (one row per utterance).

    Extra dialogue-level columns are repeated on every utterance row, so provenance survives the conversion.
    """
    if isinstance(data, DatasetDict):
        return DatasetDict({split: dialogues_to_utterances(ds) for split, ds in data.items()})
    label = data.features["emotions"].feature
    extras = extra_columns(data.features)
    features = Features({
        "dialogue_id": Value("string"),
        "turn": Value("int32"),
        "speaker": Value("string"),
        "utterance": Value("string"),
        "emotion": label,
        **extras,
    })
    return data.map(
        _utterance_batch,
        batched=True,
        remove_columns=data.column_names,
        features=features,
        fn_kwargs={"extras": tuple(extras)},
        load_from_cache_file=False,
    )


def utterances_to_dialogues(data: Dataset | DatasetDict) -> Dataset | DatasetDict:
    """Group the ``utterances`` config back into dialogues, ordered by first appearance and turn."""
    if isinstance(data, DatasetDict):
        return DatasetDict({split: utterances_to_dialogues(ds) for split, ds in data.items()})
    label = data.features["emotion"]
    extras = {n: f for n, f in data.features.items() if n not in UTTERANCE_COLUMNS}
    grouped: dict[str, dict[str, Any]] = {}
    for row in data:
        entry = grouped.setdefault(
            row["dialogue_id"],
            {"turns": [], **{name: row[name] for name in extras}},
        )
        entry["turns"].append((row["turn"], row["speaker"], row["utterance"], row["emotion"]))
    rows = []
    for dialogue_id, entry in grouped.items():
        turns = sorted(entry.pop("turns"))
        rows.append({
            "dialogue_id": dialogue_id,
            "speakers": [t[1] for t in turns],
            "utterances": [t[2] for t in turns],
            "emotions": [t[3] for t in turns],
            **entry,
        })
    features = Features({
        "dialogue_id": Value("string"),
        "speakers": List(Value("string")),
        "utterances": List(Value("string")),
        "emotions": List(label),
        **extras,
    })
    return Dataset.from_list(rows, features=features)


def dialogues_dataset(
    benchmark: Benchmark, rows: Iterable[Mapping[str, Any]], extra: Mapping[str, Any] | None = None
) -> Dataset:
    """Build a ``dialogues`` Dataset from plain rows whose emotions are label indices (or -1)."""
    return Dataset.from_list(list(rows), features=dialogue_features(benchmark, extra))
