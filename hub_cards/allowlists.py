"""Values the Hub accepts in dataset card YAML, vendored so cards are checked locally before any push.

Why vendored: ``DatasetCardData`` does no validation and the Hub's ``/api/validate-yaml`` cannot be reached
offline; a card with an unknown license id or size bucket is rejected by the Hub only at push time. The lists
are the subsets of the Hub's own lists (huggingface.js ``tasks``/``license`` definitions and the dataset card
specification) that a text dataset can use; extend them when the Hub adds values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from erc_synth.dataset_scripts.core.errors import ErcSynthError

SIZE_CATEGORIES: tuple[tuple[str, int], ...] = (
    ("n<1K", 1_000), ("1K<n<10K", 10_000), ("10K<n<100K", 100_000), ("100K<n<1M", 1_000_000),
    ("1M<n<10M", 10_000_000), ("10M<n<100M", 100_000_000), ("100M<n<1B", 1_000_000_000),
    ("1B<n<10B", 10_000_000_000), ("10B<n<100B", 100_000_000_000), ("100B<n<1T", 1_000_000_000_000),
)
SIZE_CATEGORY_NAMES: frozenset[str] = frozenset([name for name, _ in SIZE_CATEGORIES] + ["n>1T"])

TASK_CATEGORIES: frozenset[str] = frozenset({
    "text-classification", "token-classification", "table-question-answering", "question-answering",
    "zero-shot-classification", "translation", "summarization", "feature-extraction", "text-generation",
    "fill-mask", "sentence-similarity", "text-ranking", "text-retrieval", "table-to-text", "multiple-choice",
    "other",
})

TASK_IDS: frozenset[str] = frozenset({
    "multi-class-classification", "multi-label-classification", "sentiment-classification",
    "sentiment-analysis", "sentiment-scoring", "intent-classification", "topic-classification",
    "natural-language-inference", "semantic-similarity-classification", "acceptability-classification",
    "fact-checking", "hate-speech-detection", "dialogue-modeling", "dialogue-generation", "language-modeling",
    "named-entity-recognition", "part-of-speech", "extractive-qa", "open-domain-qa", "closed-domain-qa",
})

LICENSES: frozenset[str] = frozenset({
    "apache-2.0", "mit", "openrail", "bigscience-openrail-m", "creativeml-openrail-m", "bigscience-bloom-rail-1.0",
    "bigcode-openrail-m", "afl-3.0", "artistic-2.0", "bsl-1.0", "bsd", "bsd-2-clause", "bsd-3-clause",
    "bsd-3-clause-clear", "c-uda", "cc", "cc0-1.0", "cc-by-2.0", "cc-by-2.5", "cc-by-3.0", "cc-by-4.0",
    "cc-by-sa-3.0", "cc-by-sa-4.0", "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nd-4.0",
    "cc-by-nc-nd-3.0", "cc-by-nc-nd-4.0", "cc-by-nc-sa-2.0", "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0",
    "cdla-sharing-1.0", "cdla-permissive-1.0", "cdla-permissive-2.0", "wtfpl", "ecl-2.0", "epl-1.0", "epl-2.0",
    "etalab-2.0", "eupl-1.1", "eupl-1.2", "agpl-3.0", "gfdl", "gpl", "gpl-2.0", "gpl-3.0", "lgpl", "lgpl-2.1",
    "lgpl-3.0", "isc", "h-research", "intel-research", "lppl-1.3c", "ms-pl", "apple-ascl", "apple-amlr",
    "mpl-2.0", "odc-by", "odbl", "openrail++", "osl-3.0", "postgresql", "ofl-1.1", "ncsa", "unlicense", "zlib",
    "pddl", "lgpl-lr", "deepfloyd-if-license", "llama2", "llama3", "llama3.1", "llama3.2", "llama3.3", "llama4",
    "gemma", "unknown", "other",
})

SOURCE_DATASET_PREFIXES: tuple[str, ...] = ("original", "extended")
CREATORS: frozenset[str] = frozenset({"crowdsourced", "expert-generated", "found", "machine-generated", "no-annotation",
                                      "other"})
MULTILINGUALITY: frozenset[str] = frozenset({"monolingual", "multilingual", "translation", "other"})


def size_category(num_examples: int) -> str:
    """The Hub's size bucket for a number of examples (e.g. 800 -> ``n<1K``)."""
    for name, upper in SIZE_CATEGORIES:
        if num_examples < upper:
            return name
    return "n>1T"


def _check(field: str, values: Iterable[str], allowed: frozenset[str]) -> list[str]:
    return [f"{field}: {value!r} is not a value the Hub accepts" for value in values if value not in allowed]


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def validate_card_metadata(metadata: Mapping[str, Any]) -> None:
    """Raise ``ErcSynthError`` listing every YAML value outside the Hub's allowed lists."""
    problems = []
    problems += _check("license", _as_list(metadata.get("license")), LICENSES)
    problems += _check("size_categories", _as_list(metadata.get("size_categories")), SIZE_CATEGORY_NAMES)
    problems += _check("task_categories", _as_list(metadata.get("task_categories")), TASK_CATEGORIES)
    problems += _check("task_ids", _as_list(metadata.get("task_ids")), TASK_IDS)
    problems += _check("annotations_creators", _as_list(metadata.get("annotations_creators")), CREATORS)
    problems += _check("language_creators", _as_list(metadata.get("language_creators")), CREATORS)
    problems += _check("multilinguality", _as_list(metadata.get("multilinguality")), MULTILINGUALITY)
    for value in _as_list(metadata.get("source_datasets")):
        if value.split("|")[0] not in SOURCE_DATASET_PREFIXES:
            problems.append(f"source_datasets: {value!r} must be 'original', 'extended' or 'extended|<dataset>'")
    for value in _as_list(metadata.get("language")):
        if not (2 <= len(value) <= 3 and value.isalpha() and value.islower()):
            problems.append(f"language: {value!r} is not an ISO 639-1/639-3 code")
    if problems:
        raise ErcSynthError("dataset card metadata rejected: " + "; ".join(problems))
