"""``build_folder``: RUN_DIR -> a folder laid out like the Hub dataset repo (data, card, plot), ready to push.

The folder is the unit of publishing: ``push_folder`` uploads it in one commit, and ``hf upload`` works on it
unchanged. Rebuilding into the same folder replaces ``data/`` entirely (a split that disappeared must not
linger), and refuses to touch a folder holding anything a build did not write.

One road, two stages: ``prepare_run`` builds a RUN_DIR once (``dataset_scripts.builder.build``), runs the optional
label audit and applies the label policy; ``write_folder`` writes data, plot, card and ``build_report.json``,
each once. ``build_all`` prepares every run first and draws every card's figure from those results, so no run
is built twice. ``build_report.json`` lists the files the build wrote (the push allow-list) and the card's
inputs (a push to a repo id the build did not know re-renders the card from them).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from erc_synth.classifiers.quality import QUALITY_JSON, Dialogue, QualitySettings, from_columns, quality_report
from erc_synth.dataset_scripts.builder import (
    DEFAULT_RATIOS,
    BuiltDataset,
    RunSnapshot,
    build,
    config_name_of,
    write_hub_folder,
)
from erc_synth.dataset_scripts.core.atomic_io import write_json_atomic
from erc_synth.dataset_scripts.core.errors import ErcSynthError
from erc_synth.dataset_scripts.core.registry import get_benchmark
from erc_synth.dataset_scripts.gates import GateOptions
from erc_synth.dataset_scripts.readers import load_reference
from erc_synth.dataset_scripts.stats import corpus_stats

from .card import DEFAULT_LICENSE, LABEL_POLICIES, CardInputs, render_card
from .divergence import counts_vector, js_divergence
from .naming import repo_name
from .plots import ordered_series, save_label_distribution_plot

PLOT_FILE = "label_distribution.png"
BUILD_REPORT_FILE = "build_report.json"
AUDIT_DIR = "audit"
BUILD_REPORT_VERSION = 1
BUILT_ENTRIES = frozenset({"README.md", "data", PLOT_FILE, BUILD_REPORT_FILE, AUDIT_DIR, QUALITY_JSON})
REAL_SERIES = "real"

Series = dict[str, dict[str, Any]]


@dataclass
class RealComparison:
    """The real benchmark as one build compares with it: its label counts and the text of its test split."""

    description: str
    label_counts: dict[str, int]
    #: ``(name, test-split utterance lists)`` for decontamination; None when there is no test split.
    reference: tuple[str, list[list[str]]] | None
    #: The train and test splits as the quality report reads them (None where the variant lacks the split).
    train: list[Dialogue] | None = None
    test: list[Dialogue] | None = None


@dataclass
class PreparedRun:
    """A RUN_DIR built once, with its real-benchmark comparison and label audit: what ``write_folder`` writes."""

    built: BuiltDataset
    real: RealComparison | None = None
    label_policy: str = "llm"
    audit: Any = None  # erc_synth.classifiers.audit.AuditResult when the build ran an audit
    #: The data-quality report (quality.json) of the built set against the real benchmark.
    quality: dict[str, Any] | None = None


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
    label_policy: str = "llm"
    #: The audit summary (audit.json) when the build ran an audit.
    label_fidelity: dict[str, Any] | None = None
    #: Every file the build wrote, relative to the folder (what ``push`` uploads).
    files: list[str] = field(default_factory=list)
    #: The data-quality report (quality.json).
    quality: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class BuildAllReport:
    """The outcome of ``build_all``: one ``FolderReport`` per config and the series every card's figure shows."""

    folders: dict[str, FolderReport]
    series: Series


def _prepare_out_dir(out_dir: Path) -> None:
    if out_dir.exists():
        if not out_dir.is_dir():
            raise ErcSynthError(f"--out {out_dir} exists and is not a folder")
        foreign = sorted(p.name for p in out_dir.iterdir() if p.name not in BUILT_ENTRIES)
        if foreign:
            raise ErcSynthError(f"--out {out_dir} holds files a build did not write ({', '.join(foreign[:5])}); "
                                "choose an empty or previously built folder")
        for entry in ("data", AUDIT_DIR):
            shutil.rmtree(out_dir / entry, ignore_errors=True)
    out_dir.mkdir(parents=True, exist_ok=True)


def load_real(benchmark_name: str, real_data_dir: str | Path, variant: str | None,
              decontaminate: bool = True) -> RealComparison:
    """Read the real benchmark once: its label counts (train split, or every split a variant has) and test text."""
    real = load_reference(benchmark_name, real_data_dir, variant=variant)
    benchmark = get_benchmark(benchmark_name)
    described = f"{benchmark.display_name} ({variant or benchmark.default_variant} variant)"
    reference = None
    if decontaminate:
        if "test" not in real:
            raise ErcSynthError(f"{described} has no test split to decontaminate against")
        reference = (f"the {described} test split", list(real["test"]["utterances"]))
    # the train split is what natural mode imitates; a variant without one (EmoryNLP original) uses all
    compared = ["train"] if "train" in real else list(real)
    stats = corpus_stats({split: real[split] for split in compared})
    counts = {label: sum(s.label_counts[label] for s in stats) for label in benchmark.labels}
    plural = "s" if len(compared) > 1 else ""
    splits = {split: from_columns(real[split]["utterances"], real[split]["emotions"]) if split in real else None
              for split in ("train", "test")}
    return RealComparison(description=f"the {described} {' + '.join(compared)} split{plural}", label_counts=counts,
                          reference=reference, train=splits["train"], test=splits["test"])


def _run_audit(built: BuiltDataset, judge: str, real_data_dir: str | Path | None, seed: int,
               cache_dir: str | Path | None, judge_settings: Any) -> Any:
    from erc_synth.classifiers.audit import audit_dataset  # lazy: torch and transformers only when auditing

    return audit_dataset(built.dialogues, built.benchmark, judge,
                         real_data=Path(real_data_dir) if real_data_dir is not None else None, seed=seed,
                         cache_dir=Path(cache_dir) if cache_dir is not None else None, judge_settings=judge_settings,
                         source=f"the {built.config_name} build")


def prepare_run(
    run_dir: str | Path,
    *,
    real_data_dir: str | Path | None = None,
    real_variant: str | None = None,
    split_seed: int = 0,
    ratios: Sequence[float] | str = DEFAULT_RATIOS,
    gates: GateOptions | None = None,
    decontaminate: bool = True,
    audit: str | None = None,
    label_policy: str = "llm",
    audit_cache_dir: str | Path | None = None,
    judge_settings: Any = None,
    real_cache: dict[str, RealComparison] | None = None,
    quality_c2st: bool = True,
) -> PreparedRun:
    """Build RUN_DIR once and, with ``audit``, audit its labels and apply ``label_policy``.

    The data-quality report is computed on every build; ``quality_c2st=False`` leaves out its costly part, the
    two-sample test on MiniLM embeddings. ``judge_settings`` (``classifiers.audit.JudgeSettings``) resize the
    ``train`` judge. ``real_cache``
    (benchmark name -> ``RealComparison``) lets a caller building several runs read each real benchmark once.
    """
    if label_policy not in LABEL_POLICIES:
        raise ErcSynthError(f"--label-policy {label_policy!r}: choose one of {', '.join(LABEL_POLICIES)}")
    if label_policy != "llm" and not audit:
        raise ErcSynthError(f"--label-policy {label_policy} takes its labels from an audit: add --audit JUDGE")
    run = RunSnapshot.read(run_dir)
    benchmark_name = run.config_name.split("-")[0]
    real = None
    if real_data_dir is not None:
        key = f"{benchmark_name}/{real_variant}/{decontaminate}"
        cache = real_cache if real_cache is not None else {}
        if key not in cache:
            cache[key] = load_real(benchmark_name, real_data_dir, real_variant, decontaminate)
        real = cache[key]
    built = build(run, split_seed=split_seed, ratios=ratios, gates=gates or GateOptions(),
                  reference=real.reference if real else None)
    result = None
    if audit:
        result = _run_audit(built, audit, real_data_dir, split_seed, audit_cache_dir, judge_settings)
        if label_policy != "llm":
            from erc_synth.classifiers.audit import apply_label_policy

            built = built.with_dialogues(apply_label_policy(built.dialogues, result, label_policy))
    prepared = PreparedRun(built=built, real=real, label_policy=label_policy, audit=result)
    prepared.quality = run_quality(prepared, real_data_dir=real_data_dir, seed=split_seed, gates=gates,
                                   c2st=quality_c2st, audit=audit, audit_cache_dir=audit_cache_dir,
                                   judge_settings=judge_settings)
    return prepared


def run_quality(prepared: PreparedRun, *, real_data_dir: str | Path | None, seed: int, gates: GateOptions | None,
                c2st: bool, audit: str | None, audit_cache_dir: str | Path | None,
                judge_settings: Any) -> dict[str, Any]:
    """The quality report of a prepared run: the audit's kappa beside the judge's kappa on the real test labels."""
    built, real = prepared.built, prepared.real
    kappa, kappa_missing = None, None
    if prepared.audit is not None:
        kappa = {"synthetic": prepared.audit.summary.get("kappa"), "real": None}
        if real_data_dir is not None and real is not None and real.test:
            from erc_synth.classifiers.quality.kappa import judge_real_kappa

            ceiling = judge_real_kappa(audit, built.benchmark, real_data_dir, seed=seed, cache_dir=audit_cache_dir,
                                       judge_settings=judge_settings)
            kappa["real"] = ceiling["kappa"]
        else:
            kappa_missing = "the judge's kappa on the real test labels needs the real data (--real-data DIR)"
    corpus = [d for split in built.dialogues.values() for d in from_columns(split["utterances"], split["emotions"])]
    return quality_report(corpus, built.benchmark, real_train=real.train if real else None,
                          real_test=real.test if real else None, real_description=real.description if real else None,
                          kappa=kappa, kappa_missing=kappa_missing, gates=gates,
                          settings=QualitySettings(seed=seed, c2st=c2st), dataset=built.config_name)


def own_series(prepared: PreparedRun) -> Series:
    """``{benchmark: {mode: counts, "real": counts}}`` of one prepared run."""
    built = prepared.built
    series: Series = {built.benchmark.name: {built.mode: built.label_counts}}
    if prepared.real is not None:
        series[built.benchmark.name][REAL_SERIES] = prepared.real.label_counts
    return series


def _merge(*all_series: Mapping[str, Mapping[str, Any]]) -> Series:
    merged: Series = {}
    for series in all_series:
        for benchmark, entries in series.items():
            merged.setdefault(benchmark, {}).update(entries)
    return merged


def _folder_files(out_dir: Path) -> list[str]:
    return sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if p.is_file())


def write_folder(prepared: PreparedRun, out_dir: str | Path, series: Mapping[str, Mapping[str, Any]], *,
                 repo_id: str | None = None, license: str = DEFAULT_LICENSE,
                 differences: Sequence[str] = ()) -> FolderReport:
    """Write a prepared run into ``out_dir``: parquet for both configs, plot, card and build report, each once."""
    out_dir = Path(out_dir)
    built = prepared.built
    benchmark, mode, labels = built.benchmark, built.mode, list(built.benchmark.labels)
    real = prepared.real
    divergences = {}
    if real is not None:
        for name, values in series[benchmark.name].items():
            if name != REAL_SERIES:
                divergences[name] = round(js_divergence(counts_vector(values, labels),
                                                        counts_vector(real.label_counts, labels)), 6)
    _prepare_out_dir(out_dir)
    metadata = write_hub_folder(built.dialogues, out_dir)
    save_label_distribution_plot(series, out_dir / PLOT_FILE)
    fidelity = confusion = None
    if prepared.audit is not None:
        from erc_synth.classifiers.audit import write_audit

        written = write_audit(prepared.audit, out_dir / AUDIT_DIR)
        fidelity = dict(prepared.audit.summary)
        confusion = next((Path(p).relative_to(out_dir).as_posix() for p in written.values()
                          if str(p).endswith(".png")), None)
    inputs = CardInputs(
        benchmark=benchmark, mode=mode, manifest=built.manifest, report=built.report, metadata=metadata,
        statistics=built.statistics, plot_file=PLOT_FILE, plot_series=ordered_series(list(series[benchmark.name])),
        divergences=divergences, real_description=real.description if real else None, repo_id=repo_id,
        license=license, label_policy=prepared.label_policy, label_fidelity=fidelity,
        confusion_matrix_file=confusion, quality=prepared.quality,
        differences=list(differences) or list(built.manifest["settings"].get("differences") or ()),
    )
    card = render_card(inputs)  # validated before anything else lands in the folder
    (out_dir / "README.md").write_text(str(card), encoding="utf-8")
    if prepared.quality is not None:
        write_json_atomic(out_dir / QUALITY_JSON, prepared.quality)
    files = sorted({*_folder_files(out_dir), BUILD_REPORT_FILE})
    write_build_report(out_dir, inputs, files)
    report = built.report
    return FolderReport(
        folder=str(out_dir), config_name=built.config_name, build=json.loads(json.dumps(report.to_dict())),
        statistics={s.split: s.as_dict() for s in built.statistics}, label_counts=built.label_counts,
        real_label_counts=real.label_counts if real else None, divergences=divergences,
        label_policy=prepared.label_policy, label_fidelity=fidelity, files=files, quality=prepared.quality,
    )


def write_build_report(out_dir: Path, inputs: CardInputs, files: Sequence[str]) -> Path:
    """``build_report.json``: what the build wrote and what the card was rendered from."""
    path = out_dir / BUILD_REPORT_FILE
    payload = {"format_version": BUILD_REPORT_VERSION, "files": list(files), "card": inputs.to_dict()}
    # key order kept (not sorted): the card's YAML follows the order of the metadata it is re-rendered from
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def read_build_report(folder: str | Path) -> dict[str, Any]:
    """The stored build report of a built folder; a folder without one was not built by this version."""
    path = Path(folder) / BUILD_REPORT_FILE
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ErcSynthError(f"{path} is missing: {folder} was not built by `erc-synth build` (or by an older "
                            "version); rebuild it from its RUN_DIR") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ErcSynthError(f"{path}: not valid JSON ({exc}); rebuild the folder from its RUN_DIR") from None
    if not isinstance(payload, dict) or payload.get("format_version") != BUILD_REPORT_VERSION:
        raise ErcSynthError(f"{path}: not a build report of format_version {BUILD_REPORT_VERSION}; rebuild the "
                            "folder from its RUN_DIR")
    return payload


def rerender_card(folder: str | Path, repo_id: str) -> bool:
    """Re-render the folder's card for ``repo_id`` from its stored build report; True when the card changed."""
    folder = Path(folder)
    payload = read_build_report(folder)
    inputs = CardInputs.from_dict(payload["card"])
    if inputs.repo_id == repo_id:
        return False
    inputs.repo_id = repo_id
    (folder / "README.md").write_text(str(render_card(inputs)), encoding="utf-8")
    write_build_report(folder, inputs, payload["files"])
    return True


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
    audit: str | None = None,
    label_policy: str = "llm",
    audit_cache_dir: str | Path | None = None,
    judge_settings: Any = None,
    differences: Sequence[str] = (),
    bad_line_gates: Mapping[str, Any] | None = None,
    quality_c2st: bool = True,
) -> FolderReport:
    """Build RUN_DIR into ``out_dir``: parquet for both configs, README.md card, label distribution PNG.

    ``real_data_dir`` (the folder with ``meld/``, ``emorynlp/``, ``iemocap/``) enables decontamination against
    the real test split (unless ``decontaminate=False``) and the comparison with the real label distribution.
    ``decontam_ngram``/``decontam_threshold`` tune that gate (``gates`` overrides every gate setting).
    ``extra_plot_series`` is ``{benchmark: {series: counts}}`` added to the plot, e.g. the other mode's counts
    or other benchmarks. ``audit`` (a judge: ``train``, ``classifier:PATH``, ``llm``...) adds the label
    fidelity section; ``label_policy`` (``llm``, ``judge``, ``agree``) says which labels the set gets.
    ``bad_line_gates`` sets the bad-line gate (``GateOptions`` keys ``gibberish_threshold``,
    ``gibberish_min_words``, ``bare_label_gate``, ``max_bad_line_share``); ``quality_c2st=False`` leaves the
    two-sample test out of the quality report.
    """
    options = _prepare_options(real_data_dir=real_data_dir, real_variant=real_variant, split_seed=split_seed,
                               ratios=ratios, near_dup_threshold=near_dup_threshold, decontaminate=decontaminate,
                               decontam_ngram=decontam_ngram, decontam_threshold=decontam_threshold, gates=gates,
                               audit=audit, label_policy=label_policy, audit_cache_dir=audit_cache_dir,
                               judge_settings=judge_settings, bad_line_gates=bad_line_gates,
                               quality_c2st=quality_c2st)
    prepared = prepare_run(run_dir, **options)
    series = _merge(extra_plot_series or {}, own_series(prepared))
    return write_folder(prepared, out_dir, series, repo_id=repo_id, license=license, differences=differences)


def _prepare_options(*, near_dup_threshold: float | None = 0.8, decontam_ngram: int = 8,
                     decontam_threshold: float = 0.0, gates: GateOptions | None = None,
                     bad_line_gates: Mapping[str, Any] | None = None, **options: Any) -> dict[str, Any]:
    gate_options = gates or GateOptions(near_dup_threshold=near_dup_threshold, decontam_ngram=decontam_ngram,
                                        decontam_threshold=decontam_threshold, **dict(bad_line_gates or {}))
    return {**options, "gates": gate_options}


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


def build_all(runs_root: str | Path, out_root: str | Path, *, repo_org: str | None = None,
              license: str = DEFAULT_LICENSE, differences: Sequence[str] = (), **options: Any) -> BuildAllReport:
    """Build every RUN_DIR under ``runs_root`` into ``out_root/{benchmark}-synth-{mode}``; the layout push-all reads.

    Every run is built once; the figure's series (all benchmarks, natural / balanced / real) come from those
    results, and then each folder is written once with the full figure. ``repo_org`` puts
    ``ORG/{benchmark}-synth-{mode}`` in each card's load snippet. Other options are ``build_folder``'s.
    """
    runs = find_run_dirs(runs_root)
    out_root = Path(out_root)
    real_cache: dict[str, RealComparison] = {}
    prepared = {name: prepare_run(run, real_cache=real_cache, **_prepare_options(**options))
                for name, run in runs.items()}
    series = _merge(*(own_series(p) for p in prepared.values()))
    folders = {}
    for name, run in prepared.items():
        target = repo_name(*name.split("-"))
        folders[name] = write_folder(run, out_root / target, series,
                                     repo_id=f"{repo_org}/{target}" if repo_org else None, license=license,
                                     differences=differences)
    return BuildAllReport(folders=folders, series=series)
