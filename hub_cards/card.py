"""Render the dataset card (README.md) of a built folder with huggingface_hub's ``DatasetCard`` and a template.

Everything in the card comes from the RUN_DIR manifest, the build report and the built data, never typed by
hand, so a card cannot drift from the files it describes. The YAML is checked against the Hub's allowed
values (``hub_cards.allowlists``) before anything is written.

``CardInputs`` round-trips through JSON (``to_dict``/``from_dict``): the build stores it beside the card, and a
push to a repo id the build did not know re-renders the card from it instead of editing the rendered text.
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
from erc_synth.dataset_scripts.core.reference_study import BIBTEX as STUDY_BIBTEX
from erc_synth.dataset_scripts.core.reference_study import CITATION as STUDY_CITATION
from erc_synth.dataset_scripts.core.registry import Benchmark, get_benchmark
from erc_synth.dataset_scripts.quality_corpus import MEASURES, figure, measure_rows
from erc_synth.dataset_scripts.stats import SplitStats, render_stats

from .allowlists import size_category, validate_card_metadata
from .naming import ORG_PLACEHOLDER, repo_name
from .review_section import people_checked, render_section

DEFAULT_LICENSE = "cc-by-4.0"
TEMPLATE = "dataset_card.md"
LABEL_POLICIES: dict[str, str] = {
    "llm": "the generating LLM's own labels (the reference study's method)",
    "judge": "the audit judge's labels, replacing the LLM's",
    "agree": "the LLM's label where the audit judge agrees, unlabelled (-1, kept as context) where it does not",
}
#: ``audit.json`` keys copied into the card's YAML ``label_fidelity`` block (other tools read them there).
FIDELITY_KEYS: tuple[str, ...] = (
    "num_utterances", "agreement", "kappa", "chance_agreement", "position_label_spearman",
    "position_label_spearman_real", "monotonic_share", "monotonic_share_real",
)


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
    #: Which labels the set carries (``LABEL_POLICIES``); anything but ``llm`` needs an audit.
    label_policy: str = "llm"
    #: ``AuditResult.summary`` (the audit.json dict) when the build ran an audit.
    label_fidelity: Mapping[str, Any] | None = None
    #: Path of the confusion-matrix PNG inside the folder, when an audit wrote one.
    confusion_matrix_file: str | None = None
    #: How the generation differs from the reference study's, as the preset lists it.
    differences: Sequence[str] = ()
    #: The data-quality report (quality.json) of the build.
    quality: Mapping[str, Any] | None = None
    #: ``review.json`` of ``erc-synth review import`` (its ``ceiling`` holds the real split's), when people reviewed.
    human_review: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the stored build report keeps it so a push can re-render the card)."""
        out = {k: v for k, v in self.__dict__.items() if k not in ("benchmark", "report", "statistics")}
        out["benchmark"] = self.benchmark.name
        out["report"] = self.report.to_dict()
        out["statistics"] = [s.as_dict() for s in self.statistics]
        return json.loads(json.dumps(out))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CardInputs:
        return cls(**{**data, "benchmark": get_benchmark(data["benchmark"]),
                      "report": BuildReport.from_dict(data["report"]),
                      "statistics": [SplitStats(**s) for s in data["statistics"]]})


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text.replace("|", "\\|").replace("\n", "\\n") if text else "(empty)"


def _applied_cell(provenance: Mapping[str, Any], parameter: str) -> str:
    """Whether the backend applied ``parameter``, as the run's manifest recorded it from the backend itself.

    Why a column of its own: a requested value is not an applied one (vLLM has no typical_p); a card that
    listed only the request would claim a decoding the data never had.
    """
    applied = (provenance.get("applied") or {}).get("sampling") or {}
    if parameter not in applied:
        return "not recorded"
    return "yes" if applied[parameter] else "**no** (the backend does not support it; not in effect)"


def _constraint_cell(settings: Mapping[str, Any], provenance: Mapping[str, Any]) -> str:
    """How the grammar reached the decoder: the backend's own declaration, or why there was none."""
    if not settings.get("grammar"):
        return "none requested"
    applied = provenance.get("applied")
    if not applied:
        return "not recorded"
    return applied.get("constraint") or "**not applied** (the backend enforces no grammar)"


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
        **({"label_fidelity": fidelity_block(inputs)} if inputs.label_fidelity else {}),
        **({"data_quality": quality_block(inputs.quality)} if inputs.quality else {}),
    )
    validate_card_metadata(data.to_dict())
    return data


def quality_block(quality: Mapping[str, Any]) -> dict[str, Any]:
    """The YAML ``data_quality`` block: each measure's synthetic and real figure, and why any is missing."""
    block: dict[str, Any] = {name: {"synthetic": (quality.get(name) or {}).get("synthetic"),
                                    "real": (quality.get(name) or {}).get("real")} for name in MEASURES}
    c2st = quality.get("c2st_auc") or {}
    if c2st.get("synthetic_ci"):
        block["c2st_auc"]["synthetic_ci"] = list(c2st["synthetic_ci"])
        block["c2st_auc"]["real_ci"] = list(c2st["real_ci"]) if c2st.get("real_ci") else None
    drops = quality.get("gate_drop_shares") or {}
    block["bad_line_gate_drops_real"] = (drops.get("real") or {}).get("total")
    block["missing"] = dict(quality.get("missing") or {})
    return block


def _quality_context(inputs: CardInputs) -> dict[str, Any]:
    if not inputs.quality:
        return {"quality": None}
    quality = inputs.quality
    drops = quality.get("gate_drop_shares") or {}
    real_drops = drops.get("real") or {}
    return {"quality": {
        "rows": measure_rows(quality), "real": quality.get("real"),
        "missing": sorted((quality.get("missing") or {}).items()),
        "drops": [(gate, figure((drops.get("synthetic") or {}).get(gate)), figure(real_drops.get(gate)))
                  for gate in ("gibberish_utterance", "bare_label_utterance", "bad_line_dialogue", "total")],
        "gates": (quality.get("settings") or {}).get("gates"),
    }}


#: How the card names each kind of audit judge where the judge's labels replace the LLM's.
_JUDGE_KINDS = {"llm": "an LLM asked for each utterance's label in its dialogue"}


def _judge(summary: Mapping[str, Any]) -> tuple[str, float | None]:
    """The judge's id and its weighted F1 on the real test split, from ``audit.json``'s ``judge`` block."""
    judge = summary.get("judge") or {}
    return str(judge.get("id")), judge.get("weighted_f1")


def fidelity_block(inputs: CardInputs) -> dict[str, Any]:
    """The YAML ``label_fidelity`` block: the audit's headline numbers, the judge and the label policy."""
    summary = inputs.label_fidelity or {}
    judge, judge_f1 = _judge(summary)
    block: dict[str, Any] = {"label_policy": inputs.label_policy, "judge": judge, "judge_weighted_f1": judge_f1}
    block.update({key: summary.get(key) for key in FIDELITY_KEYS})
    block["suspect_utterances"] = (summary.get("suspect_utterances") or {}).get("count")
    return block


def _rounded(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _fidelity_context(inputs: CardInputs) -> dict[str, Any]:
    summary = inputs.label_fidelity
    context: dict[str, Any] = {"label_policy": inputs.label_policy,
                               "label_policy_text": LABEL_POLICIES[inputs.label_policy], "fidelity": None}
    if summary:
        judge, judge_f1 = _judge(summary)
        block = fidelity_block(inputs)
        context["fidelity"] = {
            "judge": judge, "judge_f1": _rounded(judge_f1), "num_utterances": summary.get("num_utterances"),
            "kappa": _rounded(block["kappa"]), "agreement": _rounded(block["agreement"]),
            "chance": _rounded(block["chance_agreement"]),
            "spearman": _rounded(block["position_label_spearman"]),
            "spearman_real": _rounded(block["position_label_spearman_real"]),
            "monotonic": _rounded(block["monotonic_share"]), "monotonic_real": _rounded(block["monotonic_share_real"]),
            "suspects": block["suspect_utterances"], "image": inputs.confusion_matrix_file,
            "judge_kind": _JUDGE_KINDS.get((summary.get("judge") or {}).get("kind"), "a classifier"),
        }
    return context


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
    tuning = provenance.get("generator_tuning")
    if tuning:
        setup.append(("generator tuned on", f"{tuning.get('benchmark')} {tuning.get('train_split', 'train')} split "
                                            f"({tuning.get('method')}; tune manifest sha256 "
                                            f"{tuning.get('tune_manifest_sha256')})"))
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
        f"({benchmark.source_dataset}) in labels and schema; "
        + (f"each prompt showed {settings['few_shot']['k']} real dialogues of the benchmark's train split as "
           "examples (named here by the pool's sha256 only: no benchmark text is in this set, and dialogues "
           "sharing a word n-gram with the real train or test split were dropped)."
           if settings.get("few_shot") else "its prompts contain none of the benchmark's text.")
        + (" Each dialogue's length and labels were drawn before generation from the benchmark's train-split "
           "label statistics (start, transitions, lengths) and forced by the grammar."
           if settings.get("label_plan") else "")
        + (f" The generator was fine-tuned on the {tuning.get('benchmark')} {tuning.get('train_split', 'train')} "
           f"split before writing this set (derived data). {tuning.get('licence') or ''}" if tuning else "")
    )
    context = {
        "pretty_name": f"Synthetic {benchmark.display_name} dialogues ({inputs.mode})",
        "summary": summary,
        "repo_id": inputs.repo_id or f"{ORG_PLACEHOLDER}/{name}",
        "labels": list(benchmark.labels),
        "display_name": benchmark.display_name,
        "setup": [(k, _cell(v)) for k, v in setup],
        "sampling": [(k, _cell(v), _applied_cell(provenance, k))
                     for k, v in sorted((settings.get("sampling") or {}).items())],
        "constraint_applied": _constraint_cell(settings, provenance),
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
        "target_realised": report.target_realised,
        "label_filter": report.label_filter,
        "differences": list(inputs.differences),
        "study_citation": STUDY_CITATION,
        "study_bibtex": STUDY_BIBTEX,
        **_fidelity_context(inputs),
        **_quality_context(inputs),
        "human_review": (render_section(inputs.human_review, inputs.human_review.get("ceiling"))
                         if inputs.human_review else None),
        "people_checked": people_checked(inputs.human_review),
    }
    template = (resources.files("erc_synth.hub_cards") / "templates" / TEMPLATE).read_text(encoding="utf-8")
    return DatasetCard.from_template(card_data(inputs), template_str=template, **context)
