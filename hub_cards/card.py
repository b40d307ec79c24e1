"""Render the dataset card (README.md) of a built folder with huggingface_hub's ``DatasetCard`` and a template.

Everything in the card comes from the RUN_DIR manifest, the build report and the built data, never typed by
hand, so a card cannot drift from the files it describes. The YAML is checked against the Hub's allowed
values (``hub_cards.allowlists``) before anything is written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData

from erc_synth.dataset_scripts.builder import BuildReport
from erc_synth.dataset_scripts.registry import Benchmark
from erc_synth.dataset_scripts.stats import SplitStats, render_stats

from .allowlists import size_category, validate_card_metadata
from .naming import ORG_PLACEHOLDER, repo_name

DEFAULT_LICENSE = "cc-by-4.0"
TEMPLATE = "dataset_card.md"


@dataclass
class CardInputs:
    """What the card is rendered from."""

    benchmark: Benchmark
    mode: str
    manifest: Mapping[str, Any]
    report: BuildReport
    metadata: Mapping[str, Any]  # configs + dataset_info from ``write_hub_folder``
    statistics: Sequence[SplitStats]  # from dataset_scripts.stats.corpus_stats
    plot_file: str
    plot_series: Sequence[str]
    divergences: Mapping[str, float] = field(default_factory=dict)
    real_description: str | None = None
    repo_id: str | None = None
    license: str = DEFAULT_LICENSE


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text.replace("|", "\\|").replace("\n", "\\n") if text else "(empty)"


def card_data(inputs: CardInputs) -> DatasetCardData:
    """The card's YAML: Hub-validated values, both configs, and dataset_info with the ClassLabel names."""
    dialogues = sum(s.dialogues for s in inputs.statistics)
    benchmark = inputs.benchmark
    data = DatasetCardData(
        license=inputs.license,
        language=["en"],
        task_categories=["text-classification"],
        task_ids=["multi-class-classification"],
        size_categories=[size_category(dialogues)],
        source_datasets=["original"],
        annotations_creators=["machine-generated"],
        language_creators=["machine-generated"],
        multilinguality=["monolingual"],
        pretty_name=f"Synthetic {benchmark.display_name} dialogues ({inputs.mode})",
        tags=["synthetic", "emotion-recognition-in-conversation", "erc", "dialogue", "llm-generated",
              benchmark.name, inputs.mode],
        configs=list(inputs.metadata["configs"]),
        dataset_info=inputs.metadata["dataset_info"],
    )
    validate_card_metadata(data.to_dict())
    return data


def render_card(inputs: CardInputs) -> DatasetCard:
    """Render the full card from the vendored template."""
    settings = inputs.manifest.get("settings", {})
    provenance = inputs.manifest.get("provenance", {})
    benchmark, report = inputs.benchmark, inputs.report
    model_id = provenance.get("model_id") or settings.get("model")
    setup = [
        ("model", model_id), ("model as given", settings.get("model")),
        ("model revision (sha)", provenance.get("model_sha") or "unknown"),
        ("backend", settings.get("backend")), ("server version", provenance.get("server_version") or "unknown"),
        ("chat format", settings.get("chat_format")), ("constrained decoding (grammar)", settings.get("grammar")),
        ("run seed", settings.get("seed")), ("dialogues requested", settings.get("num_dialogues")),
        ("turns per dialogue", settings.get("turns")), ("attempts per dialogue", settings.get("max_attempts")),
        ("erc-synth version", provenance.get("erc_synth_version") or "unknown"),
    ]
    known = {"model", "backend", "chat_format", "grammar", "seed", "num_dialogues", "turns", "max_attempts",
             "sampling", "prompt_templates", "prompt_version", "benchmark", "mode"}
    setup += [(key, settings[key]) for key in sorted(settings) if key not in known]
    templates = settings.get("prompt_templates") or {}
    name = repo_name(benchmark.name, inputs.mode)
    summary = (
        f"Synthetic multi-party dialogues in the style of {benchmark.display_name}, each utterance labelled with "
        f"one of its {benchmark.num_labels} emotions, written by {model_id} in **{inputs.mode}** mode "
        + ("(every dialogue asked to express a target emotion, cycling through the labels)."
           if inputs.mode == "balanced" else "(emotions left to the model).")
        + f" {sum(s.dialogues for s in inputs.statistics)} dialogues and "
        f"{sum(s.utterances for s in inputs.statistics)} utterances, made with "
        "erc-synth for research on emotion recognition in conversation (ERC). It mirrors the real benchmark "
        f"({benchmark.source_dataset}) in labels and schema; its prompts contain none of the benchmark's text."
    )
    context = {
        "pretty_name": f"Synthetic {benchmark.display_name} dialogues ({inputs.mode})",
        "summary": summary,
        "repo_id": inputs.repo_id or f"{ORG_PLACEHOLDER}/{name}",
        "labels": list(benchmark.labels),
        "display_name": benchmark.display_name,
        "setup": [(k, _cell(v)) for k, v in setup],
        "sampling": [(k, _cell(v)) for k, v in sorted((settings.get("sampling") or {}).items())],
        "prompt_version": settings.get("prompt_version"),
        "prompt_templates": [(k, v, _fence(v)) for k, v in sorted(templates.items())],
        "gates": report.gates,
        "requested": report.requested_dialogues,
        "accepted": report.accepted,
        "failed": report.failed_indices,
        "missing": report.missing_indices,
        "max_attempts": settings.get("max_attempts"),
        "rejected_attempts": report.rejected_attempts,
        "rejections": sorted(report.rejections_by_reason.items()),
        "split_seed": report.split_seed,
        "ratios": "/".join(f"{r:g}" for r in report.ratios),
        "mode": inputs.mode,
        "statistics_table": render_stats(inputs.statistics, "markdown").rstrip("\n"),
        "plot_file": inputs.plot_file,
        "plot_series": list(inputs.plot_series),
        "divergences": sorted(inputs.divergences.items()),
        "real_description": inputs.real_description,
        "model_id": model_id,
        "setting": benchmark.setting,
        "license": inputs.license,
        "license_note": benchmark.license_note,
        "citation": benchmark.citation,
        "bibkey": f"erc_synth_{benchmark.name}_{inputs.mode}",
        "run_seed": settings.get("seed"),
    }
    template = (resources.files("erc_synth.hub_cards") / "templates" / TEMPLATE).read_text(encoding="utf-8")
    return DatasetCard.from_template(card_data(inputs), template_str=template, **context)
