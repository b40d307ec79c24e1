"""The experiment config's typed schema: every key of an experiment YAML, at every level, with its type and range.

Why pydantic, as for presets (``erc_synth.preset_schema``): a grid config is written by hand, so a misspelt key
(``training: {learnig_rate: 1e-5}``, ``benchmarks: {meld: {limt: ...}}``) must be refused where it is, in one line
naming the file, the key path and the key that was probably meant, before any cell trains. The stage models are
derived from the settings dataclasses (``classifiers.settings``), so a YAML key, an ``erc-synth train`` flag and
the Python API share one default and one range check per setting. To add a config key, add a field to
:class:`ExperimentFile` and read it in ``classifiers.experiment.ExperimentConfig``.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationInfo,
    create_model,
    field_validator,
)

from erc_synth.dataset_scripts.core.settings_schema import validate_settings

from .settings import MAX_DIALOGUES, MAX_SEED, StageSettings, TrainSettings

#: Most seeds in one grid and most dialogues kept per split: far above any study, below what a grid can hold.
MAX_SEEDS = 1_000
#: The most CPUs and GPUs one cell may ask of Ray.
MAX_CPUS = 4_096.0
MAX_GPUS = 64.0

#: Each derived stage model's dataclass fields (their metadata holds the check).
_SPECS: dict[type, dict[str, dataclasses.Field]] = {}
_SCALARS: dict[type, Any] = {int: StrictInt, float: StrictInt | StrictFloat, str: StrictStr, bool: StrictBool}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _StageBase(_Strict):
    """Runs each setting's one check (``classifiers.settings.setting``) on the YAML value."""

    @field_validator("*")
    @classmethod
    def _setting_check(cls, value: Any, info: ValidationInfo) -> Any:
        spec = _SPECS[cls][info.field_name or ""]
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"must be a finite number, got {value!r}")
        check = spec.metadata.get("check")
        problem = check(value) if check is not None and value is not None else None
        if problem:
            raise ValueError(f"{problem}, got {value!r}")
        return value


def stage_model(settings: type[StageSettings]) -> type[BaseModel]:
    """A model with one field per dataclass field: same name, default, type and check; unknown keys refused."""
    hints = typing.get_type_hints(settings)
    defaults = settings()
    fields: dict[str, Any] = {}
    for spec in dataclasses.fields(settings):
        args = [a for a in typing.get_args(hints[spec.name]) if a is not type(None)]
        kind = args[0] if args else hints[spec.name]
        annotation = _SCALARS[kind]
        if type(None) in typing.get_args(hints[spec.name]):
            annotation = annotation | None
        fields[spec.name] = (annotation, getattr(defaults, spec.name))
    model = create_model(f"{settings.__name__}Schema", __base__=_StageBase, **fields)
    _SPECS[model] = {spec.name: spec for spec in dataclasses.fields(settings)}
    model.__doc__ = f"A YAML mapping of ``{settings.__name__}`` keys (each optional: unset keys keep the default)."
    return model


TrainSchema = stage_model(TrainSettings)


def _topic_schema() -> type[BaseModel]:
    from .todkat.settings import TopicTrainingSettings

    return stage_model(TopicTrainingSettings)


TopicSchema = _topic_schema()

Count = Annotated[StrictInt, Field(ge=0, le=MAX_DIALOGUES)]
Seed = Annotated[StrictInt, Field(ge=0, le=MAX_SEED)]
Seeds = Annotated[list[Seed], Field(min_length=1, max_length=MAX_SEEDS)]
#: A share of the real train split's dialogues: above 0, at most all of them.
Fraction = Annotated[StrictInt | StrictFloat, Field(gt=0, le=1)]


class SplitLimit(_Strict):
    """``limit: {train: 200, validation: 50, test: 100}``: the first N dialogues of each split (unset: all)."""

    train: Count | None = None
    validation: Count | None = None
    test: Count | None = None


class BenchmarkEntry(_Strict):
    """``benchmarks.<name>``: where a benchmark's real data and its synthetic sets are."""

    real_data: StrictStr
    variant: StrictStr | None = None
    synthetic: dict[StrictStr, StrictStr] = {}
    limit: SplitLimit | None = None
    synthetic_limit: SplitLimit | None = None


class Resources(_Strict):
    """``resources: {cpu: 8, gpu: 1}``: what one cell asks of Ray."""

    cpu: Annotated[StrictInt | StrictFloat, Field(ge=0, le=MAX_CPUS)] = 1.0
    gpu: Annotated[StrictInt | StrictFloat, Field(ge=0, le=MAX_GPUS)] | None = None


class ExperimentFile(_Strict):
    """A whole experiment config (``classifiers/configs/*.yaml``); the module docstring of ``experiment`` shows one."""

    name: StrictStr | None = None
    encoder: StrictStr
    architectures: Annotated[list[StrictStr], Field(min_length=1)]
    regimes: list[StrictStr] | None = None
    seeds: Seeds
    #: The real-train fractions of the low-resource curve (default: the whole split only).
    real_fractions: Annotated[list[Fraction], Field(min_length=1, max_length=MAX_SEEDS)] | None = None
    #: Seeds for some fractions instead of ``seeds`` (a larger fraction costs more and varies less).
    seeds_by_fraction: dict[Fraction, Seeds] = {}
    #: Fine-tuning overrides for some fractions (a tenth of the data needs more epochs for as many updates).
    fraction_training: dict[Fraction, TrainSchema | None] = {}  # type: ignore[valid-type]
    #: Architecture options; each architecture checks its own (``Architecture.check_options``).
    options: dict[StrictStr, dict[StrictStr, Any] | None] = {}
    training: TrainSchema | None = None  # type: ignore[valid-type]
    pretraining: TrainSchema | None = None  # type: ignore[valid-type]
    architecture_training: dict[StrictStr, TrainSchema | None] = {}  # type: ignore[valid-type]
    topic_pretraining: TopicSchema | None = None  # type: ignore[valid-type]
    friedman_design: StrictStr = "per_benchmark"
    save_models: StrictBool = False
    output_dir: StrictStr | None = None
    resources: Resources | None = None
    benchmarks: dict[StrictStr, BenchmarkEntry | None]


def validate_experiment(data: Any, source: str) -> ExperimentFile:
    """The config mapping as ``ExperimentFile``; the first problem is one ``ErcSynthError`` line naming ``source``."""
    return validate_settings(ExperimentFile, data, source, "experiment config")
