"""Turn a generation RUN_DIR into a ``datasets`` dataset and a folder laid out like a Hub dataset repo.

``SyntheticDialogues`` is a ``datasets.GeneratorBasedBuilder`` used as a plain class (loading scripts are gone
in datasets 5): its configs are ``{meld,emorynlp,iemocap}-{natural,balanced}`` and it reads the accepted
records of a RUN_DIR, runs the quality gates (``dataset_scripts.gates``) and splits dialogues into
train/validation/test. Why a builder rather than ``Dataset.from_list``: the builder's ``DatasetInfo`` carries
the features and split sizes that the card's ``dataset_info`` needs, and the same class serves anyone who
wants to rebuild from a RUN_DIR with other split options.

``build(run_dir)`` is the one road from a RUN_DIR to data: it reads the run store once (``RunSnapshot``), feeds
that snapshot to the builder, and returns a ``BuiltDataset`` (the ``DatasetDict``, the build report, the label
counts and the manifest) that every later stage (gates report, card, plot, audit, publishing) takes as it is,
so nothing downstream reopens the RUN_DIR or builds a second time.

Determinism: rows are ordered by generation index, splits depend only on the split seed, the gates keep the
lowest index, and nothing time-dependent is written, so building twice gives byte-identical parquet files.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import datasets
import numpy as np
from datasets import ClassLabel, DatasetDict, Value
from datasets.info import DatasetInfosDict

from .core.build_defaults import DEFAULT_RATIOS, DEFAULT_SPLIT_SEED, check_build_setting
from .core.dataset_key import DatasetKey, all_keys
from .core.errors import DataFormatError, ErcSynthError, RunDirError, SettingError
from .core.registry import SPLITS, Benchmark, get_benchmark
from .gates import GateOptions, GateReport, apply_gates
from .run_store import RunRecord, RunStore, RunSummary
from .schema import dialogue_features, dialogues_to_utterances, utterance_features, utterance_rows
from .stats import SplitStats, corpus_stats

CONFIG_NAMES: tuple[str, ...] = tuple(key.config_name for key in all_keys())
#: Layout of a built folder, the one a Hub dataset repo uses for several configs.
DATA_FILE = "data/{config}/{split}-00000-of-00001.parquet"
HUB_CONFIGS: tuple[str, ...] = ("dialogues", "utterances")


def provenance_features(benchmark: Benchmark) -> dict[str, Any]:
    """Dialogue-level provenance columns: derived seed, generation index, requested emotion (balanced only)."""
    return {
        "seed": Value("int64"),
        "index": Value("int64"),
        "target_emotion": ClassLabel(names=list(benchmark.labels)),
    }


def parse_ratios(ratios: Sequence[float] | str) -> tuple[float, float, float]:
    """Validate train/validation/test ratios (``"0.8,0.1,0.1"`` or a sequence); they must sum to 1."""
    if isinstance(ratios, str):
        try:
            ratios = [float(part) for part in ratios.split(",")]
        except ValueError:
            raise SettingError("ratios", f"expected three numbers like 0.8,0.1,0.1, got {ratios!r}") from None
    values = tuple(float(r) for r in ratios)
    if len(values) != 3 or any(r < 0 for r in values) or not math.isclose(sum(values), 1.0, abs_tol=1e-6):
        raise SettingError("ratios", f"must be three non-negative numbers summing to 1 (train, validation, test), "
                                     f"got {values!r}")
    return values  # type: ignore[return-value]


def assign_splits(
    items: Sequence[tuple[int, int | None]], ratios: Sequence[float], seed: int
) -> dict[str, list[int]]:
    """Assign ``(index, stratum)`` items to splits; returns sorted indices per split.

    Each stratum (the target emotion of a balanced run; one stratum for natural runs) is shuffled with a
    generator seeded by ``seed``, the strata are dealt round-robin into one sequence, and that sequence is cut
    by the ratios. Why: every split then keeps the balanced set's emotion mix, and split sizes follow the
    ratios exactly even when strata are tiny.
    """
    rng = np.random.default_rng(seed)
    strata: dict[int | None, list[int]] = defaultdict(list)
    for index, stratum in items:
        strata[stratum].append(index)
    shuffled = []
    for key in sorted(strata, key=lambda s: -1 if s is None else s):
        members = sorted(strata[key])
        shuffled.append([members[i] for i in rng.permutation(len(members))])
    longest = max((len(g) for g in shuffled), default=0)
    dealt = [group[i] for i in range(longest) for group in shuffled if i < len(group)]
    n = len(dealt)
    n_train = round(n * ratios[0])
    n_val = min(round(n * ratios[1]), n - n_train)
    cuts = {"train": dealt[:n_train], "validation": dealt[n_train:n_train + n_val], "test": dealt[n_train + n_val:]}
    return {split: sorted(cuts[split]) for split in SPLITS}


@dataclass
class BuildReport:
    """What a build did: where rows came from, what the gates dropped, how many rows each split got."""

    config_name: str
    run_dir: str
    requested_dialogues: int | None
    accepted: int
    rejected_attempts: int
    rejections_by_reason: dict[str, int]
    #: Indices whose every attempt was rejected.
    failed_indices: int
    #: Indices with no record at all (an interrupted or still-running generation).
    missing_indices: int
    gates: GateReport
    split_seed: int
    ratios: tuple[float, float, float]
    split_sizes: dict[str, int] = field(default_factory=dict)
    #: Balanced runs only: accepted dialogues, how many contain their target emotion, and the share. The
    #: prompt asks for the target; whether the dialogue expresses it is measured here, not assumed.
    target_realised: dict[str, Any] | None = None
    #: The label filter's report (``classifiers.audit.label_filter``) when the build ran one: what it kept.
    label_filter: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "gates"}
        out["gates"] = self.gates.to_dict()
        out["ratios"] = list(self.ratios)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BuildReport:
        """The inverse of ``to_dict`` (the stored build report a push re-renders the card from)."""
        gates = GateReport(**data["gates"])
        return cls(**{**data, "gates": gates, "ratios": tuple(data["ratios"])})


def _check_record(record: RunRecord, path: Path) -> None:
    """An accepted record must hold a dialogue; the run store checks types and label ranges, this the shape."""
    where = f"record index {record.index} attempt {record.attempt}"
    speakers, utterances, emotions = record.get("speakers"), record.get("utterances"), record.get("emotions")
    for name, value in (("speakers", speakers), ("utterances", utterances), ("emotions", emotions)):
        if not isinstance(value, list) or not value:
            raise DataFormatError(path, "accepted record lacks a non-empty list", json_path=where, field=name,
                                  value=value)
    if not len(speakers) == len(utterances) == len(emotions):
        raise DataFormatError(path, "speakers, utterances and emotions differ in length", json_path=where,
                              field="emotions", value=[len(speakers), len(utterances), len(emotions)])


def target_realised(summary: RunSummary) -> dict[str, Any] | None:
    """Balanced runs: accepted dialogues with a target, how many contain it, and the share (None: natural)."""
    if summary.target_hit_share is None:
        return None
    dialogues = sum(summary.targeted_dialogues.values())
    return {"dialogues": dialogues, "with_target": round(summary.target_hit_share * dialogues),
            "share": round(summary.target_hit_share, 4)}


@dataclass(frozen=True)
class RunSnapshot:
    """A RUN_DIR read once: its store (manifest), every typed record, and the store's summary of them.

    Why a snapshot: the config check, the builder, the report and the card all need the run; reading it once
    means they all see the same records even while a generation is still appending.
    """

    store: RunStore
    records: tuple[RunRecord, ...]
    summary: RunSummary

    @classmethod
    def read(cls, run_dir: str | Path) -> RunSnapshot:
        store = RunStore.open(run_dir)
        records = tuple(store.records())
        return cls(store=store, records=records, summary=store.summary(records))

    @property
    def run_dir(self) -> Path:
        return self.store.run_dir

    @property
    def manifest(self) -> dict[str, Any]:
        return self.store.manifest

    @property
    def settings(self) -> dict[str, Any]:
        return self.store.settings

    @property
    def config_name(self) -> str:
        """The builder config (``{benchmark}-{mode}``) the run was generated for."""
        return store_config_name(self.store)

    def accepted(self) -> list[RunRecord]:
        """The first accepted attempt of each index, sorted by index."""
        chosen: dict[int, RunRecord] = {}
        for record in self.records:
            if record.is_accepted and record.index not in chosen:
                chosen[record.index] = record
        return [chosen[i] for i in sorted(chosen)]

    def fingerprint(self) -> str:
        """SHA-256 of the manifest and records as read: part of the builder's cache key, so a run that gained
        records is never served from a stale cache."""
        digest = hashlib.sha256(json.dumps(self.manifest, sort_keys=True).encode())
        for record in self.records:
            digest.update(json.dumps(record.to_dict(), sort_keys=True, ensure_ascii=False).encode() + b"\n")
        return digest.hexdigest()


@dataclass
class SyntheticConfig(datasets.BuilderConfig):
    """A ``{benchmark}-{mode}`` config; ``run_dir`` and the options below select and shape the data."""

    run_dir: str | None = None
    split_seed: int = DEFAULT_SPLIT_SEED
    ratios: tuple[float, float, float] = DEFAULT_RATIOS
    gates: GateOptions = field(default_factory=GateOptions)
    #: ``"dialogues"`` (one row per dialogue) or ``"utterances"`` (one row per utterance).
    schema: str = "dialogues"
    #: SHA-256 of the RUN_DIR's manifest and records, filled in by the builder: it is part of the cache key,
    #: so a run that gained records is never served from a stale cache.
    run_fingerprint: str | None = None
    #: SHA-256 of the decontamination reference (name and texts), also part of the cache key.
    reference_fingerprint: str | None = None

    @property
    def key(self) -> DatasetKey:
        return DatasetKey.parse(self.name)

    @property
    def benchmark(self) -> Benchmark:
        return get_benchmark(self.key.benchmark)

    @property
    def mode(self) -> str:
        return self.key.mode


class SyntheticDialogues(datasets.GeneratorBasedBuilder):
    """Synthetic ERC dialogues read from a generation RUN_DIR.

    Extra keyword ``reference=(name, dialogues)`` passes the real benchmark's test split (a list of utterance
    lists) for decontamination; ``run=RunSnapshot`` passes a RUN_DIR already read (otherwise ``run_dir`` is read
    here, once). After ``download_and_prepare`` the attribute ``build_report`` holds the ``BuildReport``.
    """

    BUILDER_CONFIG_CLASS = SyntheticConfig
    BUILDER_CONFIGS = [SyntheticConfig(name=name) for name in CONFIG_NAMES]  # noqa: RUF012 (datasets API)

    def __init__(self, *args: Any, reference: tuple[str, Sequence[Sequence[str]]] | None = None,
                 run: RunSnapshot | None = None, **kwargs: Any) -> None:
        self.reference = reference
        #: Set when the builder prepares data; stays None when ``download_and_prepare`` reuses a cache.
        self.build_report: BuildReport | None = None
        if run is None and kwargs.get("run_dir") is not None:
            run = RunSnapshot.read(kwargs["run_dir"])
        self.run = run
        if run is not None:
            kwargs.setdefault("run_dir", str(run.run_dir))
            kwargs["run_fingerprint"] = run.fingerprint()
        if reference is not None:
            digest = hashlib.sha256(reference[0].encode())
            for utterances in reference[1]:
                digest.update(b"\0".join(u.encode() for u in utterances) + b"\1")
            kwargs["reference_fingerprint"] = digest.hexdigest()
        super().__init__(*args, **kwargs)

    def _info(self) -> datasets.DatasetInfo:
        benchmark = self.config.benchmark
        extra = provenance_features(benchmark)
        features = (utterance_features(benchmark, extra) if self.config.schema == "utterances"
                    else dialogue_features(benchmark, extra))
        return datasets.DatasetInfo(
            description=f"Synthetic {benchmark.display_name}-style dialogues ({self.config.mode} mode).",
            features=features,
            citation=benchmark.citation,
        )

    def _split_generators(self, dl_manager: Any) -> list[datasets.SplitGenerator]:
        config, run = self.config, self.run
        if run is None:
            raise ErcSynthError(f"config {config.name}: run_dir is required")
        if config.schema not in HUB_CONFIGS:
            raise ErcSynthError(f"schema {config.schema!r}: choose one of {', '.join(HUB_CONFIGS)}")
        settings = run.settings
        made_as = f"{settings.get('benchmark')}-{settings.get('mode')}"
        if made_as != config.name:
            raise RunDirError(f"{run.run_dir}: RUN_DIR holds a {made_as} run, not {config.name}")
        summary = run.summary
        accepted = run.accepted()
        for record in accepted:
            _check_record(record, run.store.records_path)
        by_index = {r.index: r for r in accepted}
        reference_name, reference_dialogues = self.reference if self.reference else (None, None)
        kept, gate_report = apply_gates(
            [(r.index, r.utterances) for r in accepted], config.gates, reference_dialogues, reference_name
        )
        if not kept:
            reasons = ", ".join(f"{k} {v}" for k, v in summary.rejected_by_reason.items()) or "none"
            raise RunDirError(
                f"{run.store.records_path}: no dialogue to build ({summary.accepted} accepted, "
                f"{gate_report.input_dialogues - gate_report.kept} dropped by the gates, {summary.rejected} "
                f"rejected attempts: {reasons})"
            )
        strata = [(i, by_index[i].target_emotion if config.mode == "balanced" else None) for i in kept]
        splits = assign_splits(strata, config.ratios, config.split_seed)
        requested = summary.requested
        self.build_report = BuildReport(
            config_name=config.name,
            run_dir=str(run.run_dir),
            requested_dialogues=requested,
            accepted=summary.accepted,
            rejected_attempts=summary.rejected,
            rejections_by_reason=dict(summary.rejected_by_reason),
            failed_indices=len(summary.failed),
            missing_indices=max(0, requested - summary.attempted) if requested is not None else 0,
            gates=gate_report,
            split_seed=config.split_seed,
            ratios=tuple(config.ratios),
            split_sizes={split: len(indices) for split, indices in splits.items()},
            target_realised=target_realised(summary) if config.mode == "balanced" else None,
        )
        removed = gate_report.removed_turns()
        return [
            datasets.SplitGenerator(name=split, gen_kwargs={
                "records": [_without_turns(by_index[i], removed.get(i, set())) for i in splits[split]]})
            for split in SPLITS if splits[split]
        ]

    def _generate_examples(self, records: list[RunRecord]) -> Iterator[tuple[str, dict[str, Any]]]:
        prefix = self.config.name
        balanced = self.config.mode == "balanced"
        for record in records:
            index = record.index
            row = {
                "dialogue_id": f"{prefix}-{index:06d}", "speakers": list(record.speakers or ()),
                "utterances": list(record.utterances or ()), "emotions": list(record.emotions or ()),
                "seed": record.seed, "index": index,
                "target_emotion": record.target_emotion if balanced else None,
            }
            if self.config.schema == "utterances":
                for turn, utterance in enumerate(utterance_rows(row, ("seed", "index", "target_emotion"))):
                    yield f"{index}-{turn}", utterance
            else:
                yield str(index), row


def _without_turns(record: RunRecord, turns: set[int]) -> RunRecord:
    """The record with the bad-line gate's removed turns left out of speakers, utterances and emotions."""
    if not turns:
        return record
    def kept(values: Sequence[Any] | None) -> tuple[Any, ...]:
        return tuple(value for turn, value in enumerate(values or ()) if turn not in turns)

    return replace(record, speakers=kept(record.speakers), utterances=kept(record.utterances),
                   emotions=kept(record.emotions))


@dataclass
class BuiltDataset:
    """The result of ``build``: everything later stages need, so none of them reads the RUN_DIR again."""

    config_name: str
    dialogues: DatasetDict
    report: BuildReport
    #: The RUN_DIR's manifest (settings and provenance) as read by the build.
    manifest: dict[str, Any]
    statistics: list[SplitStats]
    #: Utterances per label over all splits, in canonical label order (unlabelled utterances excluded).
    label_counts: dict[str, int]

    @property
    def key(self) -> DatasetKey:
        return DatasetKey.parse(self.config_name)

    @property
    def benchmark(self) -> Benchmark:
        return get_benchmark(self.key.benchmark)

    @property
    def mode(self) -> str:
        return self.key.mode

    def with_dialogues(self, dialogues: DatasetDict) -> BuiltDataset:
        """The same build with other labels (a label policy applied): statistics and counts follow the data."""
        statistics = corpus_stats(dialogues)
        return replace(self, dialogues=dialogues, statistics=statistics,
                       label_counts=total_label_counts(statistics, self.benchmark))


def total_label_counts(statistics: Sequence[SplitStats], benchmark: Benchmark) -> dict[str, int]:
    """Utterances per label summed over splits, in the benchmark's label order."""
    return {label: sum(s.label_counts[label] for s in statistics) for label in benchmark.labels}


def store_config_name(store: RunStore) -> str:
    """The builder config (``{benchmark}-{mode}``) an opened RUN_DIR was generated for, from its manifest."""
    name = f"{store.settings.get('benchmark')}-{store.settings.get('mode')}"
    if name not in CONFIG_NAMES:
        raise RunDirError(f"{store.run_dir / 'manifest.json'}: settings benchmark/mode give unknown config "
                          f"{name!r}; known: {', '.join(CONFIG_NAMES)}")
    return name


def config_name_of(run_dir: str | Path) -> str:
    """The builder config a RUN_DIR was generated for; reads only its manifest."""
    return store_config_name(RunStore.open(run_dir))


def build(
    run_dir: str | Path | RunSnapshot,
    *,
    split_seed: int = DEFAULT_SPLIT_SEED,
    ratios: Sequence[float] | str = DEFAULT_RATIOS,
    gates: GateOptions | None = None,
    reference: tuple[str, Sequence[Sequence[str]]] | None = None,
) -> BuiltDataset:
    """Build a RUN_DIR (read once) into the ``dialogues`` DatasetDict, its report, statistics and label counts.

    The builder prepares into a throw-away cache directory, so a stale cache can never stand in for a
    changed RUN_DIR.
    """
    check_build_setting("split_seed", split_seed)
    run = run_dir if isinstance(run_dir, RunSnapshot) else RunSnapshot.read(run_dir)
    name = run.config_name
    with tempfile.TemporaryDirectory(prefix="erc-synth-build-") as cache_dir:
        builder = SyntheticDialogues(
            cache_dir=cache_dir, config_name=name, run_dir=str(Path(run.run_dir).resolve()), run=run,
            split_seed=split_seed, ratios=parse_ratios(ratios), gates=gates or GateOptions(), reference=reference,
        )
        builder.download_and_prepare(download_mode="force_redownload")
        prepared = builder.as_dataset(in_memory=True)
    assert builder.build_report is not None  # set by _split_generators
    dialogues = DatasetDict({split: prepared[split] for split in SPLITS if split in prepared})
    statistics = corpus_stats(dialogues)
    counts = total_label_counts(statistics, get_benchmark(DatasetKey.parse(name).benchmark))
    return BuiltDataset(config_name=name, dialogues=dialogues, report=builder.build_report, manifest=run.manifest,
                        statistics=statistics, label_counts=counts)


def build_dataset_dict(
    run_dir: str | Path,
    *,
    split_seed: int = DEFAULT_SPLIT_SEED,
    ratios: Sequence[float] | str = DEFAULT_RATIOS,
    gates: GateOptions | None = None,
    reference: tuple[str, Sequence[Sequence[str]]] | None = None,
) -> tuple[DatasetDict, BuildReport]:
    """``build`` reduced to the ``dialogues`` DatasetDict and the build report."""
    built = build(run_dir, split_seed=split_seed, ratios=ratios, gates=gates, reference=reference)
    return built.dialogues, built.report


def _split_infos(data: DatasetDict, sizes: Mapping[str, int]) -> datasets.SplitDict:
    splits = datasets.SplitDict()
    for split, ds in data.items():
        splits.add(datasets.SplitInfo(name=split, num_bytes=sizes[split], num_examples=len(ds)))
    return splits


def write_hub_folder(dialogues: DatasetDict, out_dir: str | Path) -> dict[str, Any]:
    """Write both configs as parquet under ``data/<config>/`` and return the card metadata they need.

    Returns ``{"configs": [...], "dataset_info": [...]}`` ready for ``DatasetCardData``: the ``dialogues``
    config is the default, and ``dataset_info`` carries the ClassLabel names so they survive any reader.
    Writes no README.md: the card is written once, by whoever renders it (``hub_cards`` writes the full card;
    ``write_minimal_card`` is enough for ``load_dataset`` to see both configs).
    """
    from huggingface_hub import DatasetCardData

    out_dir = Path(out_dir)
    tables = {"dialogues": dialogues, "utterances": dialogues_to_utterances(dialogues)}
    configs: list[dict[str, Any]] = []
    infos = DatasetInfosDict()
    for config_name, data in tables.items():
        sizes: dict[str, int] = {}
        data_files = []
        download_size = 0
        for split, ds in data.items():
            relative = DATA_FILE.format(config=config_name, split=split)
            target = out_dir / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            ds.to_parquet(str(target))
            sizes[split] = int(ds.data.nbytes)
            download_size += target.stat().st_size
            data_files.append({"split": split, "path": relative})
        entry: dict[str, Any] = {"config_name": config_name, "data_files": data_files}
        if config_name == "dialogues":
            entry["default"] = True
        configs.append(entry)
        first = next(iter(data.values()))
        infos[config_name] = datasets.DatasetInfo(
            features=first.features, splits=_split_infos(data, sizes), download_size=download_size,
            dataset_size=sum(sizes.values()),
        )
    card_data = DatasetCardData(configs=configs)
    infos.to_dataset_card_data(card_data)
    return {"configs": card_data.configs, "dataset_info": card_data.dataset_info}


def write_minimal_card(out_dir: str | Path, metadata: Mapping[str, Any]) -> Path:
    """A README.md holding only the YAML of ``write_hub_folder``'s metadata: the configs and features."""
    from huggingface_hub import DatasetCardData

    readme = Path(out_dir) / "README.md"
    readme.write_text(f"---\n{DatasetCardData(**metadata).to_yaml()}\n---\n", encoding="utf-8")
    return readme
