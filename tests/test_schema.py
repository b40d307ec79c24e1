"""The dialogue schema: ClassLabel names and order, and the dialogues <-> utterances round trip."""

from __future__ import annotations

import pytest
from datasets import ClassLabel, DatasetDict, Value

from erc_synth.dataset_scripts.core.registry import BENCHMARKS, get_benchmark
from erc_synth.dataset_scripts.schema import (
    UNLABELLED,
    dialogue_features,
    dialogues_dataset,
    dialogues_to_utterances,
    utterance_features,
    utterances_to_dialogues,
)


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_classlabel_names_follow_the_registry_order(name):
    benchmark = get_benchmark(name)
    emotions = dialogue_features(benchmark)["emotions"].feature
    assert isinstance(emotions, ClassLabel)
    assert tuple(emotions.names) == benchmark.labels
    assert utterance_features(benchmark)["emotion"].names == list(benchmark.labels)
    assert utterance_features(benchmark)["turn"] == Value("int32")


def _iemocap_dialogues():
    benchmark = get_benchmark("iemocap")
    rows = [
        {"dialogue_id": "d1", "speakers": ["M", "F", "M"], "utterances": ["a", "b", "c"],
         "emotions": [0, UNLABELLED, 5], "model": "m1", "seed": 7},
        {"dialogue_id": "d0", "speakers": ["F"], "utterances": ["z"], "emotions": [3], "model": "m2", "seed": 8},
    ]
    return dialogues_dataset(benchmark, rows, extra={"model": Value("string"), "seed": Value("int64")})


def test_dialogues_to_utterances_repeats_extra_columns_and_keeps_unlabelled():
    utterances = dialogues_to_utterances(_iemocap_dialogues())
    assert utterances.column_names == ["dialogue_id", "turn", "speaker", "utterance", "emotion", "model", "seed"]
    assert utterances["dialogue_id"][:] == ["d1", "d1", "d1", "d0"]
    assert utterances["turn"][:] == [0, 1, 2, 0]
    assert utterances["emotion"][:] == [0, UNLABELLED, 5, 3]
    assert utterances["model"][:] == ["m1", "m1", "m1", "m2"]
    assert utterances.features["emotion"].names == list(get_benchmark("iemocap").labels)


def test_round_trip_restores_the_dialogues_exactly():
    dialogues = _iemocap_dialogues()
    back = utterances_to_dialogues(dialogues_to_utterances(dialogues))
    assert back.features == dialogues.features
    assert back.to_list() == dialogues.to_list()


def test_round_trip_on_a_datasetdict():
    data = DatasetDict({"train": _iemocap_dialogues(), "test": _iemocap_dialogues().select([1])})
    back = utterances_to_dialogues(dialogues_to_utterances(data))
    assert {split: ds.to_list() for split, ds in back.items()} == {split: ds.to_list() for split, ds in data.items()}
