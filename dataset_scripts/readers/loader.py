"""``load_reference``: a benchmark's original files as a ``DatasetDict`` in the project's schema.

The variant (registry ``Benchmark.variants``) names the format and a file per split; its reader parses each
file and this module gives id-less dialogues their ids (``dialogue_ids``) and builds the ClassLabel features.

Sibling files (the other variants' files that sit in the same folder) are read only to recover ids. A broken
sibling must not stop a user from reading the variant they asked for: it is skipped, the splits whose ids it
held fall back to positional ids, and a ``DialogueIdWarning`` names the file and says why.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from ..core.errors import DataFormatError, ErcSynthError
from ..core.registry import SPLITS, Benchmark, Variant, get_benchmark
from ..schema import CONFIGS, dialogues_dataset, dialogues_to_utterances
from . import dialogue_ids
from .base import Dialogue, SplitSource
from .formats import READERS


def as_benchmark(benchmark: str | Benchmark) -> Benchmark:
    return benchmark if isinstance(benchmark, Benchmark) else get_benchmark(benchmark)


def benchmark_dir(benchmark: Benchmark, data_dir: str | Path) -> Path:
    """The benchmark's folder: ``data_dir/<benchmark>`` when it exists, else ``data_dir`` itself."""
    root = Path(data_dir)
    if not root.is_dir():
        raise ErcSynthError(f"data directory not found: {root}")
    nested = root / benchmark.data_subdir
    return nested if nested.is_dir() else root


def _read(benchmark: Benchmark, folder: Path, variant_name: str, variant: Variant, split: str) -> list[Dialogue]:
    if variant.format not in READERS:  # a registry entry naming an unwritten reader is a bug, not user input
        raise KeyError(f"no reader for format {variant.format!r} (variant {benchmark.name}/{variant_name})")
    path = folder / variant.files[split]
    if not path.is_file():
        raise DataFormatError(
            path,
            f"file not found for {benchmark.name} variant {variant_name!r}, split {split!r}; pass the folder"
            f" holding {benchmark.data_subdir}/ or the {benchmark.data_subdir} folder itself",
        )
    return READERS[variant.format](SplitSource(benchmark, split, path))


class DialogueIdWarning(UserWarning):
    """Dialogue ids fell back to positional ones because a sibling file read only for ids could not be read."""


def _sibling_candidates(benchmark: Benchmark, folder: Path,
                        variant_name: str) -> tuple[dict[str, list[str]], list[DataFormatError]]:
    """Texts of every id-carrying dialogue in the other variants' files that are present, all splits pooled,
    and the errors of the sibling files that could not be read (they are skipped)."""
    candidates: dict[str, list[str]] = {}
    broken: list[DataFormatError] = []
    for name, variant in benchmark.variants.items():
        if name == variant_name:
            continue
        for split, file in variant.files.items():
            if (folder / file).is_file():
                try:
                    candidates.update(dialogue_ids.candidate_texts(_read(benchmark, folder, name, variant, split)))
                except DataFormatError as exc:
                    broken.append(exc)
    return candidates, broken


def _warn_positional(path: Path, split: str, broken: list[DataFormatError]) -> None:
    reasons = "; ".join(str(error) for error in broken)
    warnings.warn(
        f"{path}: the {split} split gets positional dialogue ids ({split}_0000, ...) because a file read only to "
        f"recover its ids could not be read ({reasons}); the dialogues themselves are unaffected. Fix or remove "
        "that file to get the original ids.",
        DialogueIdWarning,
        stacklevel=3,
    )


def _check_unique_ids(path: Path, dialogues: list[Dialogue]) -> None:
    """Ids key dialogues downstream (dedup, cards, the utterances config), so a repeated id is a file error."""
    seen: set[str] = set()
    for k, dialogue in enumerate(dialogues):
        if dialogue.dialogue_id in seen:
            raise DataFormatError(path, f"dialogue {k} repeats an earlier dialogue id", value=dialogue.dialogue_id)
        seen.add(dialogue.dialogue_id)


def read_dialogues(
    benchmark: str | Benchmark, data_dir: str | Path, variant: str | None = None, splits: tuple[str, ...] = SPLITS
) -> dict[str, list[Dialogue]]:
    """Parsed dialogues, with ids, of the requested splits that the variant has (it may lack some)."""
    bench = as_benchmark(benchmark)
    variant_name = variant or bench.default_variant
    spec = bench.variant(variant_name)
    folder = benchmark_dir(bench, data_dir)
    result: dict[str, list[Dialogue]] = {}
    candidates: dict[str, list[str]] | None = None
    broken: list[DataFormatError] = []
    for split in splits:
        if split not in SPLITS:
            raise ErcSynthError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}")
        if split not in spec.files:
            continue
        dialogues = _read(bench, folder, variant_name, spec, split)
        if any(d.dialogue_id is None for d in dialogues):
            if candidates is None:
                candidates, broken = _sibling_candidates(bench, folder, variant_name)
            ids = dialogue_ids.match_ids(dialogues, candidates)
            if ids is None:
                if broken:
                    _warn_positional(folder / spec.files[split], split, broken)
                ids = dialogue_ids.positional_ids(split, len(dialogues))
            for dialogue, dialogue_id in zip(dialogues, ids, strict=True):
                dialogue.dialogue_id = dialogue_id
        _check_unique_ids(folder / spec.files[split], dialogues)
        result[split] = dialogues
    if not result:
        raise ErcSynthError(f"{bench.name} variant {variant_name!r} has none of the splits {', '.join(splits)}")
    return result


def load_reference(benchmark: str | Benchmark, data_dir: str | Path, variant: str | None = None,
                   config: str = "dialogues"):
    """Load a benchmark's original files as a ``DatasetDict`` (``train``, ``validation``, ``test``).

    ``data_dir`` is either the folder holding ``meld/``, ``emorynlp/`` and ``iemocap/`` or the benchmark's own
    folder. ``variant`` picks one of ``Benchmark.variants`` (default: the registry's default). A variant that
    lacks a split returns only the splits it has: EmoryNLP ``original`` has no train file, so it returns
    ``validation`` and ``test``. ``config="utterances"`` returns one row per utterance
    (``schema.dialogues_to_utterances``). Unlabelled context utterances (IEMOCAP ``dialogxl``) carry -1.

    Raises ``DataFormatError`` (naming file, line or JSON path, field and value) for any file it cannot read.
    """
    from datasets import DatasetDict

    if config not in CONFIGS:
        raise ErcSynthError(f"unknown config {config!r}; choose one of: {', '.join(CONFIGS)}")
    bench = as_benchmark(benchmark)
    splits = read_dialogues(bench, data_dir, variant)
    data = DatasetDict({
        split: dialogues_dataset(bench, (d.as_row() for d in dialogues)) for split, dialogues in splits.items()
    })
    return dialogues_to_utterances(data) if config == "utterances" else data
