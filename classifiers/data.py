"""Loading the dialogues a classifier trains and is tested on: real benchmark copies and synthetic sets.

Why one loader for several sources: a regime mixes real data (the benchmark's original files, read by
``dataset_scripts.readers``) and synthetic data (a built folder, or a Hub id) and the experiment must not care
which is which. Everything comes back as a ``DatasetDict`` in the ``dialogues`` schema with the benchmark's
ClassLabel, checked here so that a set built for another benchmark fails before any training starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from erc_synth.dataset_scripts.built_files import load_built_config
from erc_synth.dataset_scripts.core.errors import ErcSynthError
from erc_synth.dataset_scripts.core.registry import BENCHMARKS, Benchmark
from erc_synth.dataset_scripts.schema import DIALOGUE_COLUMNS


def check_dialogues(data, benchmark: Benchmark, source: str):
    """Raise a user error naming ``source`` unless ``data`` is a DatasetDict of ``benchmark`` dialogues."""
    for split, dataset in data.items():
        missing = [c for c in DIALOGUE_COLUMNS if c not in dataset.column_names]
        if missing:
            raise ErcSynthError(f"{source} split {split!r}: missing column(s) {', '.join(missing)} of the "
                                f"dialogues schema (columns: {', '.join(dataset.column_names)})")
        feature = getattr(dataset.features["emotions"], "feature", None)
        names = tuple(getattr(feature, "names", ()) or ())
        if names != benchmark.labels:
            raise ErcSynthError(f"{source} split {split!r}: field 'emotions' has labels {list(names)}, expected "
                                f"the {benchmark.name} labels {list(benchmark.labels)}")
    return data


def load_real(benchmark: Benchmark, location: str | Path, variant: str | None = None):
    """The real benchmark: its original files under ``location`` (``meld/``...) or a built dataset folder."""
    path = Path(location)
    if not path.is_dir():
        raise ErcSynthError(f"real data folder {location} not found (expected the folder holding "
                            f"{benchmark.data_subdir}/, or a built dataset folder)")
    other = other_benchmark_folder(path, benchmark)
    if other is not None:
        raise ErcSynthError(f"real data folder {location} holds {other.name} files, not {benchmark.name}'s; pass the "
                            f"folder holding {benchmark.data_subdir}/ (or train on {other.name})")
    if (path / benchmark.data_subdir).is_dir() or any(
        (path / name).is_file() for name in benchmark.variant(variant).files.values()
    ):
        from erc_synth.dataset_scripts.readers import load_reference

        data = load_reference(benchmark, path, variant=variant)
    else:
        data = load_dialogues(str(location))
    return check_dialogues(data, benchmark, f"real data {location}")


def other_benchmark_folder(path: Path, benchmark: Benchmark) -> Benchmark | None:
    """The other benchmark whose original files ``path`` holds (and not ``benchmark``'s), if any.

    Why: a folder of EmoryNLP files given for MELD would otherwise be read as a built dataset and fail deep in
    ``datasets`` with a message that names neither benchmark.
    """
    if (path / benchmark.data_subdir).is_dir() or any(
        (path / name).is_file() for v in benchmark.variants.values() for name in v.files.values()
    ):
        return None
    for other in BENCHMARKS.values():
        if other.name == benchmark.name:
            continue
        own_files = any((path / name).is_file() for v in other.variants.values() for name in v.files.values())
        if own_files or (path / other.data_subdir).is_dir():
            return other
    return None


def load_dialogues(spec: str):
    """A dataset in the dialogues schema from a built folder (``data/dialogues/*.parquet``) or a Hub id."""
    from datasets import load_dataset
    from datasets.exceptions import DatasetGenerationError

    path = Path(spec)
    if (path / "data" / "dialogues").is_dir():
        return load_built_config(path, "dialogues")
    if path.exists() and not path.is_dir():
        raise ErcSynthError(f"{spec}: expected a dataset folder or a Hub id, got a file")
    if spec.startswith(("/", "./", "../", "~")) and not path.exists():
        raise ErcSynthError(f"dataset folder {spec} not found")
    try:
        try:
            return load_dataset(spec, "dialogues")
        except ValueError:  # no config named "dialogues": a plain dataset in the dialogues schema
            return load_dataset(spec)
    except (OSError, ValueError, DatasetGenerationError) as exc:  # not found, unreachable Hub, bad files
        raise ErcSynthError(f"cannot load dataset {spec!r}: {exc}") from None


def load_synthetic(benchmark: Benchmark, spec: str):
    """A synthetic set (built folder or Hub id) checked against ``benchmark``; provenance columns are kept."""
    return check_dialogues(load_dialogues(spec), benchmark, f"synthetic set {spec}")


def limit_dialogues(data, limits: Mapping[str, int | None] | None):
    """The first ``limits[split]`` dialogues of each split (deterministic: no shuffling), for small runs."""
    from datasets import DatasetDict

    if not limits:
        return data
    out = {}
    for split, dataset in data.items():
        limit = limits.get(split)
        out[split] = dataset.select(range(min(int(limit), len(dataset)))) if limit else dataset
    return DatasetDict(out)


def require_splits(data, splits, source: str) -> None:
    """Raise a user error naming ``source`` when a split the regime needs is absent."""
    missing = [s for s in splits if s not in data]
    if missing:
        raise ErcSynthError(f"{source}: missing split(s) {', '.join(missing)} (has {', '.join(data)})")


def subsample_train(data, fraction: float, seed: int):
    """``data`` with its train split cut to a seeded ``fraction`` of its dialogues; other splits untouched.

    Why dialogue-level: an ERC model reads each utterance in its dialogue, so a subsample of utterances would
    break the contexts it learns from. Why a seeded permutation's first dialogues: every regime at one fraction and
    seed fine-tunes on the same dialogues (so their difference is the pre-training alone), and a smaller
    fraction's dialogues are a subset of a larger one's (the curve's points differ in amount, not in which
    conversations were drawn). The dialogues keep their order in the split.
    """
    import numpy as np
    from datasets import DatasetDict

    if fraction >= 1.0:
        return data
    train = data["train"]
    keep = max(1, round(fraction * len(train)))
    chosen = np.random.default_rng(seed).permutation(len(train))[:keep]
    return DatasetDict({**data, "train": train.select(sorted(int(i) for i in chosen))})


#: The two disjoint halves of a real train split that two judges can learn from independently.
TRAIN_HALVES = ("a", "b")


def train_half(data, half: str | None, seed: int):
    """``data`` with its train split cut to one of two disjoint, seeded, dialogue-level halves (None: all of it).

    Why halves: a label filter and the label audit each need a classifier of the real data, and the audit's
    agreement would rise because of the filter itself if both had learnt from the same dialogues. Half ``a`` is
    the first ceil(n/2) dialogues of a seeded permutation and ``b`` the rest, so they never share a dialogue.
    """
    import numpy as np
    from datasets import DatasetDict

    if half is None:
        return data
    if half not in TRAIN_HALVES:
        raise ErcSynthError(f"train half {half!r}: choose one of {', '.join(TRAIN_HALVES)}")
    train = data["train"]
    order = np.random.default_rng(seed).permutation(len(train))
    cut = (len(train) + 1) // 2
    chosen = order[:cut] if half == "a" else order[cut:]
    return DatasetDict({**data, "train": train.select(sorted(int(i) for i in chosen))})
