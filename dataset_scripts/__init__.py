"""The bottom layer of erc-synth: benchmark registry, dialogue schema, readers, run store and builders.

Exports resolve lazily (module ``__getattr__``): the schema and readers import ``datasets``, which costs about a
second, and the console script imports this package just to parse its arguments.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .core.errors import DataFormatError, ErcSynthError, RunDirError, UnknownLabelError
from .core.registry import BENCHMARKS, MODES, SPLITS, Benchmark, Variant, get_benchmark

_LAZY: dict[str, str] = {
    "UNLABELLED": ".schema",
    "dialogue_features": ".schema",
    "dialogues_dataset": ".schema",
    "dialogues_to_utterances": ".schema",
    "utterance_features": ".schema",
    "utterances_to_dialogues": ".schema",
    "load_reference": ".readers",
    "reference_label_distribution": ".reference",
    "reference_label_counts": ".reference",
    "corpus_stats": ".stats",
    "RunStore": ".run_store",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BENCHMARKS",
    "MODES",
    "SPLITS",
    "Benchmark",
    "DataFormatError",
    "ErcSynthError",
    "RunDirError",
    "UnknownLabelError",
    "Variant",
    "get_benchmark",
    *_LAZY,
]
