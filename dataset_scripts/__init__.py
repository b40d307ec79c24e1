"""The bottom layer of erc-synth: benchmark registry, dialogue schema, readers, run store and builders."""

from .errors import DataFormatError, ErcSynthError, RunDirError, UnknownLabelError
from .registry import BENCHMARKS, MODES, SPLITS, Benchmark, Variant, get_benchmark
from .schema import (
    UNLABELLED,
    dialogue_features,
    dialogues_dataset,
    dialogues_to_utterances,
    utterance_features,
    utterances_to_dialogues,
)

__all__ = [
    "BENCHMARKS",
    "MODES",
    "SPLITS",
    "UNLABELLED",
    "Benchmark",
    "DataFormatError",
    "ErcSynthError",
    "RunDirError",
    "UnknownLabelError",
    "Variant",
    "dialogue_features",
    "dialogues_dataset",
    "dialogues_to_utterances",
    "get_benchmark",
    "utterance_features",
    "utterances_to_dialogues",
]
