"""``build_folder``: RUN_DIR -> a folder laid out like the Hub dataset repo (data, card, plot), ready to push.

The folder is the unit of publishing: ``push_folder`` uploads it in one commit, and ``hf upload`` works on it
unchanged. Rebuilding into the same folder replaces ``data/`` entirely (a split that disappeared must not
linger), and refuses to touch a folder holding anything a build did not write.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from erc_synth.dataset_scripts.builder import DEFAULT_RATIOS, build_dataset_dict, config_name_of, write_hub_folder
from erc_synth.dataset_scripts.errors import ErcSynthError
from erc_synth.dataset_scripts.gates import GateOptions
from erc_synth.dataset_scripts.readers import load_reference
from erc_synth.dataset_scripts.registry import get_benchmark
from erc_synth.dataset_scripts.run_store import RunStore
from erc_synth.dataset_scripts.stats import corpus_stats

from .card import DEFAULT_LICENSE, CardInputs, render_card
from .divergence import counts_vector, js_divergence
from .naming import repo_name
from .plots import save_label_distribution_plot

PLOT_FILE = "label_distribution.png"
BUILT_ENTRIES = frozenset({"README.md", "data", PLOT_FILE})
REAL_SERIES = "real"


@dataclass
class FolderReport:
    """The outcome of ``build_folder``: the build report plus what the card shows."""

    folder: str
    config_name: str
    build: dict[str, Any]
    statistics: dict[str, dict[str, Any]]  # split -> dataset_scripts.stats.SplitStats as a dict
    label_counts: dict[str, int]
    real_label_counts: dict[str, int] | None = None
    divergences: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _prepare_out_dir(out_dir: Path) -> None:
    if out_dir.exists():
        if not out_dir.is_dir():
            raise ErcSynthError(f"--out {out_dir} exists and is not a folder")
        foreign = sorted(p.name for p in out_dir.iterdir() if p.name not in BUILT_ENTRIES)
        if foreign:
            raise ErcSynthError(f"--out {out_dir} holds files a build did not write ({', '.join(foreign[:5])}); "
                                "choose an empty or previously built folder")
        shutil.rmtree(out_dir / "data", ignore_errors=True)
    out_dir.mkdir(parents=True, exist_ok=True)


def _load_real(benchmark_name: str, real_data_dir: str | Path, variant: str | None) -> tuple[Any, str]:
    real = load_reference(benchmark_name, real_data_dir, variant=variant)
    benchmark = get_benchmark(benchmark_name)
    return real, f"{benchmark.display_name} ({variant or benchmark.default_variant} variant)"


def build_folder(
    run_dir: str | Path,
    out_dir: str | Path,
    *,
    real_data_dir: str | Path | None = None,
    real_variant: str | None = None,
    split_seed: int = 0,
    ratios: Sequence[float] | str = DEFAULT_RATIOS,
    near_dup_threshold: float | None = 0.8,
    decontaminate: bool = True,
    decontam_ngram: int = 8,
    decontam_threshold: float = 0.0,
    extra_plot_series: Mapping[str, Mapping[str, Any]] | None = None,
    repo_id: str | None = None,
    license: str = DEFAULT_LICENSE,
    gates: GateOptions | None = None,
) -> FolderReport:
    """Build RUN_DIR into ``out_dir``: parquet for both configs, README.md card, label distribution PNG.

    ``real_data_dir`` (the folder with ``meld/``, ``emorynlp/``, ``iemocap/``) enables decontamination against
    the real test split (unless ``decontaminate=False``) and the comparison with the real label distribution.
    ``decontam_ngram``/``decontam_threshold`` tune that gate (``gates`` overrides every gate setting).
    ``extra_plot_series`` is ``{benchmark: {series: counts}}`` added to the plot, e.g. the other mode's counts
    or other benchmarks, so a caller holding all six runs gets the full figure in every card.
    """
    out_dir = Path(out_dir)
    config_name = config_name_of(run_dir)
    benchmark_name, mode = config_name.split("-")
    benchmark = get_benchmark(benchmark_name)
    labels = list(benchmark.labels)
    gate_options = gates or GateOptions(near_dup_threshold=near_dup_threshold, decontam_ngram=decontam_ngram,
                                        decontam_threshold=decontam_threshold)

    real = real_description = None
    reference = None
    if real_data_dir is not None:
        real, real_description = _load_real(benchmark_name, real_data_dir, real_variant)
        if decontaminate:
            if "test" not in real:
                raise ErcSynthError(f"{real_description} has no test split to decontaminate against")
            reference = (f"the {real_description} test split", list(real["test"]["utterances"]))

    dialogues, report = build_dataset_dict(run_dir, split_seed=split_seed, ratios=ratios, gates=gate_options,
                                           reference=reference)
    _prepare_out_dir(out_dir)
    metadata = write_hub_folder(dialogues, out_dir)

    stats = corpus_stats(dialogues)
    counts = {label: sum(s.label_counts[label] for s in stats) for label in labels}
    series: dict[str, dict[str, Any]] = {name: dict(s) for name, s in (extra_plot_series or {}).items()}
    series.setdefault(benchmark_name, {})[mode] = counts
    real_counts = None
    if real is not None:
        # the train split is what natural mode imitates; a variant without one (EmoryNLP original) uses all
        compared = ["train"] if "train" in real else list(real)
        real_stats = corpus_stats({split: real[split] for split in compared})
        real_counts = {label: sum(s.label_counts[label] for s in real_stats) for label in labels}
        real_description = f"the {real_description} {' + '.join(compared)} split{'s' if len(compared) > 1 else ''}"
        series[benchmark_name][REAL_SERIES] = real_counts
    divergences = {}
    if real_counts is not None:
        for name, values in series[benchmark_name].items():
            if name != REAL_SERIES:
                divergences[name] = round(js_divergence(counts_vector(values, labels),
                                                        counts_vector(real_counts, labels)), 6)
    save_label_distribution_plot(series, out_dir / PLOT_FILE)

    manifest = RunStore.open(run_dir).manifest
    card = render_card(CardInputs(
        benchmark=benchmark, mode=mode, manifest=manifest, report=report, metadata=metadata, statistics=stats,
        plot_file=PLOT_FILE, plot_series=list(series[benchmark_name]), divergences=divergences,
        real_description=real_description, repo_id=repo_id, license=license,
    ))
    (out_dir / "README.md").write_text(str(card), encoding="utf-8")
    return FolderReport(
        folder=str(out_dir), config_name=config_name, build=json.loads(json.dumps(report.to_dict())),
        statistics={s.split: s.as_dict() for s in stats}, label_counts=counts, real_label_counts=real_counts,
        divergences=divergences,
    )


def find_run_dirs(runs_root: str | Path) -> dict[str, Path]:
    """``{config name: RUN_DIR}`` for every RUN_DIR directly under ``runs_root`` (one per config)."""
    found: dict[str, Path] = {}
    root = Path(runs_root)
    if not root.is_dir():
        raise ErcSynthError(f"{root} is not a folder of generation runs")
    for candidate in sorted(p for p in root.iterdir() if (p / "manifest.json").is_file()):
        name = config_name_of(candidate)
        if name in found:
            raise ErcSynthError(f"{found[name]} and {candidate} are both {name} runs; keep one per config")
        found[name] = candidate
    if not found:
        raise ErcSynthError(f"{root} holds no RUN_DIR (folders with manifest.json)")
    return found


def build_all(runs_root: str | Path, out_root: str | Path, **options: Any) -> dict[str, FolderReport]:
    """Build every RUN_DIR under ``runs_root`` into ``out_root/{benchmark}-synth-{mode}``; the layout push-all reads.

    Two passes: the first builds each folder and collects its label counts (and the real ones), the second
    rebuilds with every other run's counts as extra plot series, so every card shows the full figure (all
    benchmarks, natural / balanced / real). Builds are deterministic, so the second pass only adds series.
    """
    runs = find_run_dirs(runs_root)
    out_root = Path(out_root)
    targets = {name: out_root / repo_name(*name.split("-")) for name in runs}
    reports = {name: build_folder(run, targets[name], **options) for name, run in runs.items()}
    series: dict[str, dict[str, Any]] = {}
    for name, report in reports.items():
        benchmark_name, mode = name.split("-")
        series.setdefault(benchmark_name, {})[mode] = report.label_counts
        if report.real_label_counts is not None:
            series[benchmark_name][REAL_SERIES] = report.real_label_counts
    return {name: build_folder(run, targets[name], extra_plot_series=series, **options) for name, run in runs.items()}
