"""``build_folder``: RUN_DIR -> a folder laid out like the Hub dataset repo (data, card, plot), ready to push.

The folder is the unit of publishing: ``push_folder`` uploads it in one commit, and ``hf upload`` works on it
unchanged. Rebuilding into the same folder replaces it entirely (a split that disappeared must not linger), and
refuses to touch a folder holding anything a build did not write.

A build is all or nothing: everything is written into a hidden sibling folder (``.NAME.partial-PID-...``) and
swapped into place only once complete (the card validated, the build report written), so a failed, killed or
interrupted build leaves the previous complete folder, or nothing. The build report records the size and
sha256 of every file, so ``push`` can refuse a folder that changed after its build.

One road, two stages: ``prepare_run`` builds a RUN_DIR once (``dataset_scripts.builder.build``), runs the optional
label audit and applies the label policy; ``write_folder`` writes data, plot, card and ``build_report.json``,
each once. ``build_all`` prepares every run first and draws every card's figure from those results, so no run
is built twice. ``build_report.json`` lists the files the build wrote (the push allow-list) and the card's
inputs (a push to a repo id the build did not know re-renders the card from them).
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from erc_synth.dataset_scripts.builder import (
    DEFAULT_RATIOS,
    BuiltDataset,
    RunSnapshot,
    build,
    config_name_of,
    parse_ratios,
    write_hub_folder,
)
from erc_synth.dataset_scripts.core.atomic_io import write_bytes_atomic, write_json_atomic
from erc_synth.dataset_scripts.core.build_defaults import (
    DEFAULT_LABEL_POLICY,
    DEFAULT_SPLIT_SEED,
    check_build_setting,
)
from erc_synth.dataset_scripts.core.dataset_key import DatasetKey
from erc_synth.dataset_scripts.core.errors import ErcSynthError, SettingError
from erc_synth.dataset_scripts.core.registry import get_benchmark
from erc_synth.dataset_scripts.gates import GateOptions
from erc_synth.dataset_scripts.quality_corpus import QUALITY_JSON, Dialogue, from_columns
from erc_synth.dataset_scripts.readers import load_reference
from erc_synth.dataset_scripts.stats import corpus_stats

from .build_hooks import LabelAuditor, QualityReporter
from .card import DEFAULT_LICENSE, LABEL_POLICIES, CardInputs, render_card
from .divergence import counts_vector, js_divergence
from .plots import ordered_series, save_label_distribution_plot

PLOT_FILE = "label_distribution.png"
BUILD_REPORT_FILE = "build_report.json"
AUDIT_DIR = "audit"
#: 2: ``file_digests`` (size and sha256 of every file but the report), no local paths, no creation times.
BUILD_REPORT_VERSION = 2
BUILT_ENTRIES = frozenset({"README.md", "data", PLOT_FILE, BUILD_REPORT_FILE, AUDIT_DIR, QUALITY_JSON})
REAL_SERIES = "real"

Series = dict[str, dict[str, Any]]


@dataclass
class RealComparison:
    """The real benchmark as one build compares with it: its label counts and the text of its test split."""

    description: str
    label_counts: dict[str, int]
    #: ``(name, utterance lists of the test and train splits)`` for decontamination; None without a test split.
    reference: tuple[str, list[list[str]]] | None
    #: The train and test splits as the quality report reads them (None where the variant lacks the split).
    train: list[Dialogue] | None = None
    test: list[Dialogue] | None = None


@dataclass
class PreparedRun:
    """A RUN_DIR built once, with its real-benchmark comparison and label audit: what ``write_folder`` writes."""

    built: BuiltDataset
    real: RealComparison | None = None
    label_policy: str = DEFAULT_LABEL_POLICY
    audit: Any = None  # what the auditor returned, when the build ran an audit
    auditor: LabelAuditor | None = None
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
    label_policy: str = DEFAULT_LABEL_POLICY
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


class BuildWriteError(ErcSynthError):
    """Writing a built folder failed (a full disk, an I/O error); the previous folder, if any, is untouched.

    Exit status 3 for a full disk, like the run store: free space and rerun the same command.
    """


def _check_out_dir(out_dir: Path) -> None:
    """Refuse, before anything is written, an ``out_dir`` that a build must not replace."""
    if out_dir.exists():
        if not out_dir.is_dir():
            raise SettingError("out_dir", f"{out_dir} exists and is not a folder")
        foreign = sorted(p.name for p in out_dir.iterdir() if p.name not in BUILT_ENTRIES)
        if foreign:
            raise SettingError("out_dir", f"{out_dir} holds files a build did not write ({', '.join(foreign[:5])}); "
                                          "choose an empty or previously built folder")


def _stage_prefix(out_dir: Path, kind: str) -> str:
    return f".{out_dir.name}.{kind}-"


def _remove_dead_stages(out_dir: Path) -> None:
    """Delete staging folders left beside ``out_dir`` by builds whose process is gone (killed mid-build)."""
    for kind in ("partial", "old"):
        for stale in out_dir.parent.glob(_stage_prefix(out_dir, kind) + "*"):
            pid = stale.name[len(_stage_prefix(out_dir, kind)):].split("-", 1)[0]
            if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                shutil.rmtree(stale, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _new_stage(out_dir: Path) -> Path:
    """A fresh hidden sibling of ``out_dir`` (same filesystem, so the final rename is atomic)."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _remove_dead_stages(out_dir)
    stage = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f"{_stage_prefix(out_dir, 'partial')}{os.getpid()}-"))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(stage, 0o777 & ~umask)  # mkdtemp's 0700 would make the published folder private to its builder
    return stage


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _swap_into_place(stage: Path, out_dir: Path) -> None:
    """Put the complete ``stage`` at ``out_dir``; the previous folder stays whole until the swap."""
    if not out_dir.exists():
        os.rename(stage, out_dir)
        return
    if _exchange(stage, out_dir):  # stage now holds the previous folder
        shutil.rmtree(stage, ignore_errors=True)
        return
    old = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f"{_stage_prefix(out_dir, 'old')}{os.getpid()}-"))
    os.rmdir(old)
    os.rename(out_dir, old)
    os.rename(stage, out_dir)
    shutil.rmtree(old, ignore_errors=True)


def _write_failed(out_dir: Path, exc: OSError) -> BuildWriteError:
    full = exc.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left on device" in str(exc)
    error = BuildWriteError(f"could not write the build of {out_dir}: {exc.strerror or exc}; nothing was "
                            f"replaced. {'Free disk space' if full else 'Fix the cause'} and rerun the same command")
    error.exit_code = 3 if full else 2
    return error


def file_digest(path: Path) -> dict[str, Any]:
    """``{"size", "sha256"}`` of one file, as the build report records it."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return {"size": path.stat().st_size, "sha256": digest.hexdigest()}


def verify_folder(folder: str | Path) -> None:
    """Refuse a folder whose files differ from its build report (sizes, sha256), naming the first mismatch."""
    folder = Path(folder)
    payload = read_build_report(folder)
    digests = payload.get("file_digests")
    if not isinstance(digests, dict):
        raise ErcSynthError(f"{folder / BUILD_REPORT_FILE}: field 'file_digests' is missing; rebuild the folder "
                            "from its RUN_DIR")
    for name in sorted(digests):
        path = folder / name
        recorded = digests[name]
        if not path.is_file():
            raise ErcSynthError(f"{folder}: {name} is listed in {BUILD_REPORT_FILE} but missing; the folder "
                                "changed after its build: rebuild it from its RUN_DIR")
        if not isinstance(recorded, dict):
            raise ErcSynthError(f"{folder / BUILD_REPORT_FILE}: file_digests entry {name!r} is not an object")
        actual = file_digest(path)
        for key in ("size", "sha256"):
            if actual[key] != recorded.get(key):
                raise ErcSynthError(f"{folder}: {name} does not match {BUILD_REPORT_FILE} ({key} "
                                    f"{actual[key]!r}, the build wrote {recorded.get(key)!r}); the folder changed "
                                    "after its build: rebuild it from its RUN_DIR")


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
        # train too: few-shot prompts show train dialogues, and a line copied from them is real text as well
        with_train = "train" in real
        texts = list(real["test"]["utterances"]) + (list(real["train"]["utterances"]) if with_train else [])
        reference = (f"the {described} test{' and train' if with_train else ''} split{'s' if with_train else ''}",
                     texts)
    # the train split is what natural mode imitates; a variant without one (EmoryNLP original) uses all
    compared = ["train"] if "train" in real else list(real)
    stats = corpus_stats({split: real[split] for split in compared})
    counts = {label: sum(s.label_counts[label] for s in stats) for label in benchmark.labels}
    plural = "s" if len(compared) > 1 else ""
    splits = {split: from_columns(real[split]["utterances"], real[split]["emotions"]) if split in real else None
              for split in ("train", "test")}
    return RealComparison(description=f"the {described} {' + '.join(compared)} split{plural}", label_counts=counts,
                          reference=reference, train=splits["train"], test=splits["test"])


def check_label_policy(label_policy: str, audit: str | None) -> None:
    """A label policy the card knows, and an audit for a policy that takes its labels from one."""
    if label_policy not in LABEL_POLICIES:
        raise SettingError("label_policy", f"must be one of {', '.join(LABEL_POLICIES)}, got {label_policy!r}")
    if label_policy != "llm" and not audit:
        raise SettingError("label_policy", f"{label_policy} takes its labels from an audit: it needs {{audit}} set "
                                           "to a judge", related=("audit",))


def prepare_run(
    run_dir: str | Path,
    *,
    real_data_dir: str | Path | None = None,
    real_variant: str | None = None,
    split_seed: int = DEFAULT_SPLIT_SEED,
    ratios: Sequence[float] | str = DEFAULT_RATIOS,
    gates: GateOptions | None = None,
    decontaminate: bool = True,
    audit: str | None = None,
    label_policy: str = DEFAULT_LABEL_POLICY,
    audit_cache_dir: str | Path | None = None,
    judge_settings: Any = None,
    real_cache: dict[str, RealComparison] | None = None,
    auditor: LabelAuditor | None = None,
    quality_reporter: QualityReporter | None = None,
    quality_c2st: bool = True,
    label_filter: float | None = None,
) -> PreparedRun:
    """Build RUN_DIR once and, with ``audit``, audit its labels and apply ``label_policy``.

    ``auditor`` runs the audit (``erc_synth.label_auditor.ClassifierAuditor`` is the toolkit's); an ``audit``
    without one is refused. ``quality_reporter`` computes the data-quality report
    (``erc_synth.quality_reporter.ClassifierQualityReporter``; the build and run commands always hand one in);
    ``quality_c2st=False`` leaves out its costly part, the two-sample test on MiniLM embeddings.
    ``label_filter`` (a confidence in [0, 1]) drops the dialogues whose labels a judge of half the real train
    split supports less (``classifiers.audit.label_filter``), before the audit, whose judge learns from the other
    half. ``judge_settings`` (``classifiers.audit.JudgeSettings``) resize the ``train`` judge. ``real_cache``
    (benchmark name -> ``RealComparison``) lets a caller building several runs read each real benchmark once.
    """
    check_label_policy(label_policy, audit)
    if audit and auditor is None:
        raise ErcSynthError(f"an audit ({audit}) was asked for, but no auditor was handed to the build")
    run = RunSnapshot.read(run_dir)
    benchmark_name = DatasetKey.parse(run.config_name).benchmark
    real = None
    if real_data_dir is not None:
        key = f"{benchmark_name}/{real_variant}/{decontaminate}"
        cache = real_cache if real_cache is not None else {}
        if key not in cache:
            cache[key] = load_real(benchmark_name, real_data_dir, real_variant, decontaminate)
        real = cache[key]
    built = build(run, split_seed=split_seed, ratios=ratios, gates=gates or GateOptions(),
                  reference=real.reference if real else None)
    if label_filter is not None:
        built, judge_settings = _filtered(built, label_filter, auditor, audit=audit, real_data_dir=real_data_dir,
                                          seed=split_seed, audit_cache_dir=audit_cache_dir,
                                          judge_settings=judge_settings)
    result = None
    if audit and auditor is not None:
        result = auditor.audit(built, audit, real_data=Path(real_data_dir) if real_data_dir is not None else None,
                               seed=split_seed, cache_dir=Path(audit_cache_dir) if audit_cache_dir else None,
                               judge_settings=judge_settings)
        if label_policy != "llm":
            built = built.with_dialogues(auditor.apply_policy(built.dialogues, result, label_policy))
    prepared = PreparedRun(built=built, real=real, label_policy=label_policy, audit=result, auditor=auditor)
    if quality_reporter is not None:
        prepared.quality = quality_reporter.report(
            prepared.built, real=prepared.real, audit=prepared.audit, judge=audit, real_data_dir=real_data_dir,
            seed=split_seed, gates=gates, c2st=quality_c2st, audit_cache_dir=audit_cache_dir,
            judge_settings=judge_settings)
    return prepared


def _filtered(built: BuiltDataset, min_confidence: float, auditor: LabelAuditor | None, *, audit: str | None,
              real_data_dir: str | Path | None, seed: int, audit_cache_dir: str | Path | None,
              judge_settings: Any) -> tuple[BuiltDataset, Any]:
    """The build after the label filter, with the filter's report in its build report, and the audit's settings."""
    from dataclasses import replace

    check_build_setting("label_filter", min_confidence)
    if auditor is None:
        raise ErcSynthError("a label filter was asked for, but no auditor was handed to the build")
    if real_data_dir is None:
        raise SettingError("label_filter", "trains its judge on the real benchmark: it needs {real_data_dir} (or "
                                           "ERC_SYNTH_REAL_DATA)", related=("real_data_dir",))
    dialogues, report, audit_settings = auditor.filter(
        built, min_confidence, audit_judge=audit, real_data=Path(real_data_dir), seed=seed,
        cache_dir=Path(audit_cache_dir) if audit_cache_dir else None, judge_settings=judge_settings)
    if report["kept"] == 0:
        raise ErcSynthError(f"label filter {min_confidence}: no dialogue of {built.config_name} is supported that "
                            f"well (median support {report['support_median']}); lower the confidence")
    filtered = built.with_dialogues(dialogues)
    sizes = {split: len(data) for split, data in dialogues.items()}
    return replace(filtered, report=replace(built.report, label_filter=report, split_sizes=sizes)), audit_settings


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
    _check_out_dir(out_dir)
    try:
        stage = _new_stage(out_dir)
    except OSError as exc:
        raise _write_failed(out_dir, exc) from exc
    try:
        metadata = write_hub_folder(built.dialogues, stage)
        save_label_distribution_plot(series, stage / PLOT_FILE)
        fidelity = confusion = None
        if prepared.audit is not None and prepared.auditor is not None:
            written = prepared.auditor.write(prepared.audit, stage / AUDIT_DIR)
            fidelity = dict(prepared.audit.summary)
            confusion = next((Path(p).relative_to(stage).as_posix() for p in written.values()
                              if str(p).endswith(".png")), None)
        inputs = CardInputs(
            benchmark=benchmark, mode=mode, manifest=built.manifest, report=built.report, metadata=metadata,
            statistics=built.statistics, plot_file=PLOT_FILE,
            plot_series=ordered_series(list(series[benchmark.name])), divergences=divergences,
            real_description=real.description if real else None, repo_id=repo_id, license=license,
            label_policy=prepared.label_policy, label_fidelity=fidelity, confusion_matrix_file=confusion,
            quality=prepared.quality,
            differences=list(differences) or list(built.manifest["settings"].get("differences") or ()),
        )
        card = render_card(inputs)  # validated before the folder can replace the previous one
        (stage / "README.md").write_text(str(card), encoding="utf-8")
        if prepared.quality is not None:
            write_json_atomic(stage / QUALITY_JSON, prepared.quality)
        files = sorted({*_folder_files(stage), BUILD_REPORT_FILE})
        write_build_report(stage, inputs, files)
        _swap_into_place(stage, out_dir)
    except OSError as exc:
        shutil.rmtree(stage, ignore_errors=True)
        raise _write_failed(out_dir, exc) from exc
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    report = built.report
    return FolderReport(
        folder=str(out_dir), config_name=built.config_name, build=json.loads(json.dumps(report.to_dict())),
        statistics={s.split: s.as_dict() for s in built.statistics}, label_counts=built.label_counts,
        real_label_counts=real.label_counts if real else None, divergences=divergences,
        label_policy=prepared.label_policy, label_fidelity=fidelity, files=files, quality=prepared.quality,
    )


def _portable(card: Mapping[str, Any]) -> dict[str, Any]:
    """The card inputs without what would make two identical builds differ: local paths and creation times."""
    card = json.loads(json.dumps(card))
    card["report"]["run_dir"] = None  # a local path: meaningless on the Hub, and it differs between machines
    manifest = card.get("manifest") or {}
    manifest["history"] = [{k: v for k, v in entry.items() if k != "time"}
                           for entry in manifest.get("history") or [] if isinstance(entry, dict)]
    return card


def write_build_report(out_dir: Path, inputs: CardInputs, files: Sequence[str],
                       known: Mapping[str, Any] | None = None) -> Path:
    """``build_report.json``: what the build wrote (with each file's size and sha256) and the card's inputs.

    ``known`` digests are kept as they are (a re-rendered card changes only README.md's): a file changed after
    the build must keep failing the check, not be blessed by the rewrite.
    """
    path = out_dir / BUILD_REPORT_FILE
    known = known or {}
    digests = {name: known[name] if name in known else file_digest(out_dir / name)
               for name in files if name != BUILD_REPORT_FILE}
    payload = {"format_version": BUILD_REPORT_VERSION, "files": list(files), "file_digests": digests,
               "card": _portable(inputs.to_dict())}
    # key order kept (not sorted): the card's YAML follows the order of the metadata it is re-rendered from
    write_bytes_atomic(path, (json.dumps(payload, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
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
    _check_report_fields(path, payload)
    return payload


def _check_report_fields(path: Path, payload: Mapping[str, Any]) -> None:
    """Refuse a hand-edited report: the push allow-list and the digests must be exactly what a build writes.

    Why so strict: ``build_report.json`` cannot list its own digest, so an edit to it passes the folder check; a
    ``files`` list edited to ``[]`` would push nothing without a word, and one edited to name other files would
    push files no build wrote.
    """
    def bad(field: str, expected: str) -> ErcSynthError:
        return ErcSynthError(f"{path}: field {field!r} must be {expected}, got {payload.get(field)!r:.80}; rebuild "
                             "the folder from its RUN_DIR")

    files = payload.get("files")
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files) or "README.md" not in files:
        raise bad("files", "a list of the paths the build wrote, README.md among them")
    digests = payload.get("file_digests")
    if not isinstance(digests, dict) or set(digests) != set(files) - {BUILD_REPORT_FILE}:
        raise bad("file_digests", "an object with one entry per path in 'files' (build_report.json aside)")
    for name, digest in digests.items():
        if not (isinstance(digest, dict) and type(digest.get("size")) is int and isinstance(digest.get("sha256"), str)):
            raise ErcSynthError(f"{path}: file_digests entry {name!r} must be {{\"size\": INT, \"sha256\": STR}}, "
                                f"got {digest!r:.80}; rebuild the folder from its RUN_DIR")
    if not isinstance(payload.get("card"), dict):
        raise bad("card", "an object (the card's inputs)")


def stored_card_inputs(folder: str | Path, payload: Mapping[str, Any]) -> CardInputs:
    """The card inputs a build report stores; a user error naming the report when they were edited into nonsense."""
    try:
        return CardInputs.from_dict(payload["card"])
    except ErcSynthError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ErcSynthError(f"{Path(folder) / BUILD_REPORT_FILE}: field 'card' is not what a build writes "
                            f"({type(exc).__name__}: {exc}); rebuild the folder from its RUN_DIR") from None


def rerender_card(folder: str | Path, repo_id: str) -> bool:
    """Re-render the folder's card for ``repo_id`` from its stored build report; True when the card changed."""
    folder = Path(folder)
    verify_folder(folder)
    payload = read_build_report(folder)
    inputs = stored_card_inputs(folder, payload)
    if inputs.repo_id == repo_id:
        return False
    inputs.repo_id = repo_id
    # README first, then the report with its new digest: a kill between the two leaves a report whose repo id
    # still differs, so the next push renders the card again
    write_bytes_atomic(folder / "README.md", str(render_card(inputs)).encode("utf-8"))
    known = {k: v for k, v in payload["file_digests"].items() if k != "README.md"}
    write_build_report(folder, inputs, payload["files"], known)
    return True


def build_folder(
    run_dir: str | Path,
    out_dir: str | Path,
    *,
    real_data_dir: str | Path | None = None,
    real_variant: str | None = None,
    split_seed: int = DEFAULT_SPLIT_SEED,
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
    label_policy: str = DEFAULT_LABEL_POLICY,
    audit_cache_dir: str | Path | None = None,
    judge_settings: Any = None,
    auditor: LabelAuditor | None = None,
    differences: Sequence[str] = (),
    bad_line_gates: Mapping[str, Any] | None = None,
    quality_reporter: QualityReporter | None = None,
    quality_c2st: bool = True,
    label_filter: float | None = None,
) -> FolderReport:
    """Build RUN_DIR into ``out_dir``: parquet for both configs, README.md card, label distribution PNG.

    ``real_data_dir`` (the folder with ``meld/``, ``emorynlp/``, ``iemocap/``) enables decontamination against
    the real test and train splits (unless ``decontaminate=False``) and the comparison with the real label distribution.
    ``decontam_ngram``/``decontam_threshold`` tune that gate (``gates`` overrides every gate setting).
    ``extra_plot_series`` is ``{benchmark: {series: counts}}`` added to the plot, e.g. the other mode's counts
    or other benchmarks. ``audit`` (a judge: ``train``, ``classifier:PATH``, ``llm``...) adds the label
    fidelity section, run by ``auditor``; ``label_policy`` (``llm``, ``judge``, ``agree``) says which labels the
    set gets. ``bad_line_gates`` sets the bad-line gate (``GateOptions`` keys ``gibberish_threshold``,
    ``gibberish_min_words``, ``bare_label_gate``, ``max_bad_line_share``); ``quality_reporter`` adds the
    data-quality report, and ``quality_c2st=False`` leaves the two-sample test out of it.
    """
    options = _prepare_options(real_data_dir=real_data_dir, real_variant=real_variant, split_seed=split_seed,
                               ratios=ratios, near_dup_threshold=near_dup_threshold, decontaminate=decontaminate,
                               decontam_ngram=decontam_ngram, decontam_threshold=decontam_threshold, gates=gates,
                               audit=audit, label_policy=label_policy, audit_cache_dir=audit_cache_dir,
                               judge_settings=judge_settings, auditor=auditor, bad_line_gates=bad_line_gates,
                               quality_reporter=quality_reporter, quality_c2st=quality_c2st,
                               label_filter=label_filter)
    prepared = prepare_run(run_dir, **options)
    series = _merge(extra_plot_series or {}, own_series(prepared))
    return write_folder(prepared, out_dir, series, repo_id=repo_id, license=license, differences=differences)


def _prepare_options(*, near_dup_threshold: float | None = 0.8, decontam_ngram: int = 8,
                     decontam_threshold: float = 0.0, gates: GateOptions | None = None,
                     bad_line_gates: Mapping[str, Any] | None = None, **options: Any) -> dict[str, Any]:
    """``prepare_run``'s options, every setting checked (one line naming it) before a run is read."""
    check_build_setting("split_seed", options.get("split_seed", DEFAULT_SPLIT_SEED))
    parse_ratios(options.get("ratios", DEFAULT_RATIOS))
    check_label_policy(options.get("label_policy", DEFAULT_LABEL_POLICY), options.get("audit"))
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
    checked = _prepare_options(**options)
    runs = find_run_dirs(runs_root)
    out_root = Path(out_root)
    real_cache: dict[str, RealComparison] = {}
    prepared = {name: prepare_run(run, real_cache=real_cache, **checked) for name, run in runs.items()}
    series = _merge(*(own_series(p) for p in prepared.values()))
    folders = {}
    for name, run in prepared.items():
        target = DatasetKey.parse(name).repo_name
        folders[name] = write_folder(run, out_root / target, series,
                                     repo_id=f"{repo_org}/{target}" if repo_org else None, license=license,
                                     differences=differences)
    return BuildAllReport(folders=folders, series=series)
