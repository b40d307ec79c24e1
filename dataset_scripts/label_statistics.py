"""A benchmark's label-sequence statistics, counted from its real train split: what a label plan is drawn from.

Why counts and not probabilities: counts are exact integers a test can recompute from the files and compare
for equality, and they keep the information a planner needs to smooth or reweight (a probability of 0 from 3
dialogues and one from 3000 are not the same evidence). Only numbers are kept, never text, so the shipped
file (``core/benchmark_statistics.json``, written by ``scripts/make_benchmark_statistics.py``) carries nothing
of the licensed transcripts.

Unlabelled context utterances (IEMOCAP ``dialogxl``) are skipped: a sequence is the labelled utterances in
order, and a dialogue's length is its number of labelled utterances.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from .core.registry import Benchmark
from .readers.loader import as_benchmark, read_dialogues
from .schema import UNLABELLED


def label_sequence_counts(sequences: list[list[int]], num_labels: int) -> dict[str, Any]:
    """Start counts, first-order transition counts and length counts of label sequences (empty ones skipped)."""
    start = [0] * num_labels
    transitions = [[0] * num_labels for _ in range(num_labels)]
    lengths: dict[int, int] = {}
    for sequence in sequences:
        if not sequence:
            continue
        start[sequence[0]] += 1
        for before, after in itertools.pairwise(sequence):
            transitions[before][after] += 1
        lengths[len(sequence)] = lengths.get(len(sequence), 0) + 1
    return {"dialogues": sum(lengths.values()), "start": start, "transitions": transitions,
            "lengths": {str(k): lengths[k] for k in sorted(lengths)}}


def compute_label_statistics(benchmark: str | Benchmark, data_dir: str | Path,
                             variant: str | None = None) -> dict[str, Any]:
    """The statistics of one benchmark's real train split (default variant unless ``variant``)."""
    bench = as_benchmark(benchmark)
    variant_name = variant or bench.default_variant
    dialogues = read_dialogues(bench, data_dir, variant_name, splits=("train",))["train"]
    sequences = [[e for e in d.emotions if e != UNLABELLED] for d in dialogues]
    return {"variant": variant_name, "split": "train", "labels": list(bench.labels),
            **label_sequence_counts(sequences, bench.num_labels)}
