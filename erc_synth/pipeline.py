"""The main job: a preset's six generation runs, then build, gates, statistics, cards, plot, publish.

Layout of the output folder (``--out DIR``)::

    DIR/runs/{benchmark}-synth-{mode}/       generation RUN_DIRs (resumable)
    DIR/datasets/{benchmark}-synth-{mode}/   Hub-ready folders (parquet, README.md card, plot)
    DIR/label_distributions.png              all benchmarks, natural / balanced / real side by side
    DIR/summary.md, DIR/summary.json         the end-of-run summary table

Why generation first for all six, then building: every card's plot shows both modes of its benchmark beside
the real distribution, so the build needs the label counts of the sibling run. ``hub_cards.build_all`` builds
each run once and returns the figure's series with the folders; the combined plot is drawn from those series.
Rerunning the same command resumes: finished generation indices are skipped, and builds are deterministic, so
they are simply redone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from erc_synth.dataset_scripts.core.build_defaults import DEFAULT_LABEL_POLICY, DEFAULT_SPLIT_SEED
from erc_synth.dataset_scripts.core.dataset_key import DatasetKey
from erc_synth.dataset_scripts.core.errors import ErcSynthError, SettingError
from erc_synth.dataset_scripts.core.registry import get_benchmark
from erc_synth.dataset_scripts.real_data import resolve_real_data

from .generation_workers import applied_workers, check_workers
from .label_auditor import ClassifierAuditor
from .preset import DatasetSpec, Preset
from .quality_reporter import ClassifierQualityReporter

#: Where the licensed benchmark copies usually sit beside a checkout (used for JS divergence and decontamination).
DEFAULT_REAL_DATA_CANDIDATES: tuple[str, ...] = ("../shared/data",)
SUMMARY_MD = "summary.md"
SUMMARY_JSON = "summary.json"
COMBINED_PLOT = "label_distributions.png"
#: The build gates' drop counts shown in the summary.
GATE_COUNTS: tuple[str, ...] = ("gibberish_utterances", "bare_label_utterances", "bad_line_dialogues",
                                "exact_duplicates", "near_duplicates", "contaminated")
#: The quality report's measures the summary shows, each with the real figure beside it.
SUMMARY_QUALITY: tuple[tuple[str, str], ...] = (("gibberish_share", "gibberish"), ("c2st_auc", "C2ST AUC"),
                                                ("label_js", "label JS"), ("kappa", "kappa"))
#: Build settings a preset's ``build:`` mapping may give for the bad-line gate.
BAD_LINE_SETTINGS: tuple[str, ...] = ("gibberish_threshold", "gibberish_min_words", "bare_label_gate",
                                      "max_bad_line_share")


@dataclass
class DatasetOutcome:
    """What happened to one dataset of the preset."""

    name: str
    benchmark: str
    mode: str
    run_dir: str
    folder: str | None = None
    requested: int = 0
    accepted: int = 0
    generated_now: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    status: str = "pending"
    label_counts: dict[str, int] = field(default_factory=dict)
    js_divergence: float | None = None
    gate_counts: dict[str, Any] = field(default_factory=dict)
    pushed: str | None = None
    label_policy: str = DEFAULT_LABEL_POLICY
    #: Cohen's kappa of the LLM's labels against the audit judge, when the preset ran an audit.
    kappa: float | None = None
    #: Mean Spearman's rho of label id vs turn index, and the same on the real test split (audit only).
    position_label_spearman: float | None = None
    position_label_spearman_real: float | None = None
    #: The quality report's ``{"synthetic": x, "real": y}`` per measure of ``SUMMARY_QUALITY``.
    quality: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class PipelineReport:
    """The outcome of ``run_preset``; ``summary_markdown`` is what the command prints at the end."""

    out_dir: str
    preset: str
    real_data_dir: str | None
    datasets: list[DatasetOutcome]
    combined_plot: str | None = None
    #: Worker processes the generation ran in (1: one run after another in this process).
    generation_workers: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": self.out_dir, "preset": self.preset, "real_data_dir": self.real_data_dir,
            "combined_plot": self.combined_plot, "generation_workers": self.generation_workers,
            "datasets": [d.__dict__ for d in self.datasets],
        }

    def summary_markdown(self) -> str:
        audited = any(d.kappa is not None for d in self.datasets)
        fidelity_headers = " kappa (LLM vs judge) | position/label Spearman (real) |" if audited else ""
        lines = [
            f"# erc-synth run: preset {self.preset}",
            "",
            "| dataset | accepted / requested | requests now | rejected by reason | gates dropped | "
            f"label distribution | JS divergence from real |{fidelity_headers} pushed |",
            "|---|---|---|---|---|---|---|" + ("---|---|" if audited else "") + "---|",
        ]
        lines[2] = lines[2].replace(" pushed |", "".join(f" {title} (real) |" for _, title in SUMMARY_QUALITY)
                                    + " pushed |")
        lines[3] = lines[3][:-4] + "---:|" * len(SUMMARY_QUALITY) + "---|"
        for d in self.datasets:
            reasons = ", ".join(f"{k} {v}" for k, v in sorted(d.rejected_by_reason.items())) or "none"
            total = sum(d.label_counts.values()) or 1
            dist = ", ".join(f"{k} {v / total:.0%}" for k, v in d.label_counts.items() if v) or "-"
            gates = ", ".join(f"{k} {v}" for k, v in d.gate_counts.items() if v) or "none"
            jsd = f"{d.js_divergence:.3f}" if d.js_divergence is not None else "n/a (no real data)"
            fidelity = (f" {_number(d.kappa)} | {_number(d.position_label_spearman)} "
                        f"({_number(d.position_label_spearman_real)}) |" if audited else "")
            quality = "".join(f" {_pair(d.quality.get(name))} |" for name, _ in SUMMARY_QUALITY)
            lines.append(f"| {d.name} | {d.accepted} / {d.requested} | {d.generated_now} | {reasons} | {gates} | "
                         f"{dist} | {jsd} |{fidelity}{quality} {d.pushed or '-'} |")
        lines.append("")
        if self.combined_plot:
            lines.append(f"Label distributions: {self.combined_plot}")
        lines.append(f"Hub-ready folders: {Path(self.out_dir) / 'datasets'}")
        return "\n".join(lines) + "\n"


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _pair(figures: dict[str, Any] | None) -> str:
    """``synthetic (real)`` of one quality measure."""
    figures = figures or {}
    return f"{_number(figures.get('synthetic'))} ({_number(figures.get('real'))})"


def resolve_real_data_dir(explicit: str | Path | None, benchmarks: Sequence[str] = ()) -> Path | None:
    """``--real-data`` when given, else ``$ERC_SYNTH_REAL_DATA``, else ``../shared/data`` if present.

    The flag and the variable are checked alike before anything is generated: a folder with every file of
    each of the preset's benchmarks, or one line naming the flag or the variable.
    """
    return resolve_real_data(explicit, benchmarks, defaults=DEFAULT_REAL_DATA_CANDIDATES)


def _require_token_for_push(org: str | None) -> str | None:
    if org is None:
        return None
    from huggingface_hub import get_token

    token = get_token()
    if not token:
        raise ErcSynthError(f"--org {org} asks to push, but no Hub token was found: set HF_TOKEN or run `hf auth "
                            "login` (nothing was generated yet)")
    return token


def generation_config(preset: Preset, spec: DatasetSpec, run_dir: Path, real_data_dir: Path | None = None) -> Any:
    """The ``GenerationConfig`` of one dataset of a preset; ``real_data_dir`` feeds ``few_shot``."""
    from erc_synth.generation.backends.base import SamplingParams
    from erc_synth.generation.engine import GenerationConfig

    optional = {"max_utterance_chars": preset.max_utterance_chars} if preset.max_utterance_chars else {}
    return GenerationConfig(
        benchmark=spec.benchmark,
        mode=spec.mode,
        num_dialogues=spec.num_dialogues,
        seed=preset.seed,
        out=run_dir,
        backend=preset.backend,
        endpoints=list(preset.endpoints),
        model=preset.model,
        chat_format=preset.chat_format,
        sampling=SamplingParams(**{**preset.sampling, "stop": tuple(preset.sampling.get("stop", ()))}),
        grammar=preset.grammar,
        concurrency=preset.concurrency,
        max_attempts=preset.max_attempts,
        turns=preset.turns_for(spec.benchmark),
        steer=preset.steer,
        backend_options=dict(preset.backend_options),
        real_data=real_data_dir,
        **preset.generation,
        **optional,
    )


def _with_overrides(preset: Preset, num_dialogues: int | None, model: str | None,
                    endpoints: Sequence[str] | None) -> Preset:
    if num_dialogues is not None:
        from erc_synth.generation.engine import CONFIG_RULES

        ok, valid = CONFIG_RULES["num_dialogues"]  # the engine's rule, ceiling included
        if not ok(num_dialogues):
            raise SettingError("num_dialogues", f"must be {valid}, got {num_dialogues}")
        preset = replace(preset, datasets=tuple(replace(s, num_dialogues=num_dialogues) for s in preset.datasets))
    if model is not None:
        preset = replace(preset, model=model)
    if endpoints:
        preset = replace(preset, endpoints=tuple(endpoints))
    return preset


def _record_run(outcome: DatasetOutcome, report: Any) -> None:
    """Copy one generation run's result into its dataset's outcome; a stopped or empty run ends the job."""
    outcome.requested = report.requested
    outcome.accepted = report.accepted
    outcome.generated_now = report.finished_now
    outcome.rejected_by_reason = dict(sorted(report.rejected_by_reason.items()))
    outcome.status = report.status
    if report.status == "stopped":
        raise ErcSynthError(f"generation of {outcome.name} stopped: {report.error}. Everything generated so far "
                            f"is kept in {outcome.run_dir}; rerun the same command to resume.")
    if report.accepted == 0:
        raise ErcSynthError(f"{outcome.name}: no dialogue was accepted ({outcome.rejected_by_reason}); "
                            f"see `erc-synth inspect {outcome.run_dir}`")


def _generate_all(preset: Preset, outcomes: list[DatasetOutcome], progress: bool,
                  log: Callable[[str], None], workers: int, real_data_dir: Path | None = None) -> None:
    """Generate every dataset's run: one after another in this process, or side by side in ``workers``
    processes (``generation_workers``); the records are the same bytes either way. ``real_data_dir`` feeds
    ``few_shot``."""
    configs = [generation_config(preset, spec, Path(outcome.run_dir), real_data_dir)  # all checked before any work
               for spec, outcome in zip(preset.datasets, outcomes, strict=True)]
    if workers > 1:
        _generate_side_by_side(preset, outcomes, configs, progress, log, workers)
        return
    from erc_synth.generation.backends.factory import create_backend
    from erc_synth.generation.engine import generate

    backend = None
    try:
        for config, outcome in zip(configs, outcomes, strict=True):
            if backend is None:  # one backend (one loaded model) serves all runs
                log(f"loading backend {preset.backend} ({preset.model}) ...")
                backend = create_backend(config)
            log(f"generating {outcome.name}: {config.num_dialogues} dialogues")
            report = generate(config, backend=backend, progress=progress)
            log(report.summary())
            _record_run(outcome, report)
    finally:
        if backend is not None:
            import asyncio

            asyncio.run(backend.aclose())


def _generate_side_by_side(preset: Preset, outcomes: list[DatasetOutcome], configs: list[Any], progress: bool,
                           log: Callable[[str], None], workers: int) -> None:
    from erc_synth.generation.backends.embedded import dequantised_model_folder, is_embedded

    from .generation_workers import generate_side_by_side

    if preset.backend == "transformers" and (preset.model is None or is_embedded(preset.model)):
        dequantised_model_folder()  # converted once here, not by every worker at the same time
    threads = int(preset.backend_options.get("num_threads") or 1)
    log(f"generating {len(configs)} datasets in {workers} worker processes ({threads} torch thread each), "
        f"backend {preset.backend} ({preset.model})")
    results = generate_side_by_side([(o.name, c) for o, c in zip(outcomes, configs, strict=True)], workers,
                                    threads, progress, log)
    for outcome in outcomes:  # the preset's order: the first failure in it is the one reported
        result = results.get(outcome.name)
        if result is None:
            raise ErcSynthError(f"generation of {outcome.name} was not started because another dataset failed; "
                                "rerun the same command to resume")
        if isinstance(result, BaseException):
            raise result
        _record_run(outcome, result)


def _build_all(preset: Preset, out: Path, outcomes: list[DatasetOutcome], real_data_dir: Path | None,
               org: str | None, log: Callable[[str], None]) -> str:
    """Build every run once (``hub_cards.build_all``), then draw the combined plot from the series it returns."""
    from erc_synth.hub_cards import save_label_distribution_plot
    from erc_synth.hub_cards.folder import build_all

    options: dict[str, Any] = {
        "split_seed": int(preset.build.get("split_seed", DEFAULT_SPLIT_SEED)),
        "ratios": tuple(preset.build.get("ratios", (0.8, 0.1, 0.1))),
        "real_data_dir": real_data_dir,
        "repo_org": org,
        "differences": preset.differences,
    }
    if "near_dup_threshold" in preset.build:
        options["near_dup_threshold"] = preset.build["near_dup_threshold"]
    bad_lines = {key: preset.build[key] for key in BAD_LINE_SETTINGS if key in preset.build}
    if bad_lines:
        options["bad_line_gates"] = bad_lines
    if "c2st" in preset.build:
        options["quality_c2st"] = bool(preset.build["c2st"])
    if preset.build.get("label_filter") is not None:
        options["label_filter"] = float(preset.build["label_filter"])
        options.setdefault("auditor", ClassifierAuditor())
    if preset.audit:
        options["audit"] = preset.audit["judge"]
        options["label_policy"] = preset.audit["label_policy"]
        options["auditor"] = ClassifierAuditor()
    options["quality_reporter"] = ClassifierQualityReporter()
    result = build_all(out / "runs", out / "datasets", **options)
    for outcome in outcomes:
        report = result.folders[DatasetKey(outcome.benchmark, outcome.mode).config_name]
        outcome.label_counts = report.label_counts
        outcome.js_divergence = report.divergences.get(outcome.mode)
        gates = report.build.get("gates", {})
        outcome.gate_counts = {k: gates.get(k, 0) for k in GATE_COUNTS}
        outcome.label_policy = report.label_policy
        quality = report.quality or {}
        outcome.quality = {name: {side: (quality.get(name) or {}).get(side) for side in ("synthetic", "real")}
                           for name, _ in SUMMARY_QUALITY}
        if report.label_fidelity:
            outcome.kappa = report.label_fidelity.get("kappa")
            outcome.position_label_spearman = report.label_fidelity.get("position_label_spearman")
            outcome.position_label_spearman_real = report.label_fidelity.get("position_label_spearman_real")
    log(f"built {len(result.folders)} folders under {out / 'datasets'}")
    panels = {o.benchmark: result.series[o.benchmark] for o in outcomes}  # the preset's order, left to right
    return str(save_label_distribution_plot(panels, out / COMBINED_PLOT))


def run_preset(preset: Preset, out_dir: str | Path, *, org: str | None = None, private: bool = False,
               real_data_dir: str | Path | None = None, num_dialogues: int | None = None, model: str | None = None,
               endpoints: Sequence[str] | None = None, progress: bool = True,
               log: Callable[[str], None] = print, workers: int | None = None) -> PipelineReport:
    """Run a preset end to end into ``out_dir``; resumable by calling it again with the same arguments.

    ``workers``: generation processes for an in-process backend (default: one per core, at most one per
    dataset); the number applied is in the report.
    """
    check_workers(workers)
    if org is not None:  # a name the Hub refuses is found now, not after hours of generation
        from erc_synth.hub_cards.publish import check_org

        check_org(org)
    preset = _with_overrides(preset, num_dialogues, model, endpoints)
    token = _require_token_for_push(org)
    out = Path(out_dir)
    for spec in preset.datasets:
        get_benchmark(spec.benchmark)
    real = resolve_real_data_dir(real_data_dir, [spec.benchmark for spec in preset.datasets])
    outcomes = [
        DatasetOutcome(name=s.name, benchmark=s.benchmark, mode=s.mode, run_dir=str(out / "runs" / s.name),
                       folder=str(out / "datasets" / s.name), requested=s.num_dialogues)
        for s in preset.datasets
    ]
    log(f"real benchmark data: {real}" if real else
        "real benchmark data: none found (give --real-data DIR for JS divergence and decontamination)")
    if preset.with_real_data:
        methods = ", ".join(f"{k} {v}" for k, v in sorted(preset.with_real_data.items()))
        log(f"with real data: {methods} applied" if real else
            f"without real data: {methods} not applied; the preset's data-free settings are used "
            "(give --real-data DIR for the better sets)")
    preset = preset.for_real_data(real is not None)
    if preset.build.get("label_filter") is not None and real is None:  # refused before hours of generation
        raise ErcSynthError(f"preset {preset.name}: build.label_filter trains its judge on the real benchmark; "
                            "give --real-data DIR (or ERC_SYNTH_REAL_DATA), or remove the key")
    applied = applied_workers(workers, preset.backend, len(preset.datasets))
    _generate_all(preset, outcomes, progress, log, applied, real)
    combined = _build_all(preset, out, outcomes, real, org, log)
    if org:
        from erc_synth.hub_cards import push_folder

        for outcome in outcomes:
            result = push_folder(outcome.folder, f"{org}/{outcome.name}", private=private, token=token)
            outcome.pushed = result.url if result.committed else f"{result.url} (unchanged)"
    report = PipelineReport(out_dir=str(out), preset=preset.name, real_data_dir=str(real) if real else None,
                            datasets=outcomes, combined_plot=combined, generation_workers=applied)
    (out / SUMMARY_MD).write_text(report.summary_markdown(), encoding="utf-8")
    (out / SUMMARY_JSON).write_text(json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return report
