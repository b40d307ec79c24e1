"""The label distribution of a real benchmark split, computed from its files (never typed in).

The generator's ``natural`` mode and the dataset cards compare synthetic data against these numbers, so they
come from the same readers as ``load_reference``. Unlabelled context utterances (IEMOCAP ``dialogxl``) are not
part of the distribution.
"""

from __future__ import annotations

from pathlib import Path

from .core.errors import ErcSynthError
from .core.registry import Benchmark
from .readers.loader import as_benchmark, read_dialogues
from .schema import UNLABELLED


def reference_label_counts(
    benchmark: str | Benchmark, data_dir: str | Path, variant: str | None = None, split: str = "train"
) -> dict[str, int]:
    """Labelled utterances per label, in the benchmark's canonical label order (zeros included)."""
    bench = as_benchmark(benchmark)
    splits = read_dialogues(bench, data_dir, variant, splits=(split,))
    if split not in splits:  # read_dialogues raises when the variant has none of the requested splits
        raise ErcSynthError(f"{bench.name} variant {variant or bench.default_variant!r} has no {split!r} split")
    counts = dict.fromkeys(bench.labels, 0)
    for dialogue in splits[split]:
        for emotion in dialogue.emotions:
            if emotion != UNLABELLED:
                counts[bench.labels[emotion]] += 1
    return counts


def reference_label_distribution(
    benchmark: str | Benchmark, data_dir: str | Path, variant: str | None = None, split: str = "train"
) -> dict[str, float]:
    """Fraction of labelled utterances per label (sums to 1), in canonical label order."""
    counts = reference_label_counts(benchmark, data_dir, variant, split)
    total = sum(counts.values())
    if total == 0:
        raise ErcSynthError(f"no labelled utterances in the {split!r} split; cannot compute a distribution")
    return {label: count / total for label, count in counts.items()}
