"""The preset's typed schema: every key of a preset YAML, at every nesting level, with its type and choices.

Why pydantic: a preset is a nested mapping that users write by hand, so a misspelt key must be refused where it
is, not ignored (``build: {split_sed: 3}``) or carried along until a constructor fails with a traceback
(``sampling: {temprature: 0.7}``). Each model forbids unknown keys; ``validate_preset`` turns pydantic's first
error into one line that names the file, the key path and, for a misspelt key, the key that was probably meant.

The sampling model is derived from the engine's ``SamplingParams`` fields, and its ranges are the engine's own
rules (``generation.engine.SAMPLING_RULES``), so a preset, the ``generate`` flags and the Python API accept
exactly the same values.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

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
    model_validator,
)

from erc_synth.dataset_scripts.core import settings_schema
from erc_synth.dataset_scripts.core.build_defaults import (
    BUILD_RULES,
    DEFAULT_LABEL_FILTER,
    DEFAULT_LABEL_POLICY,
    DEFAULT_RATIOS,
    DEFAULT_SPLIT_SEED,
    LABEL_POLICIES,
)
from erc_synth.dataset_scripts.core.errors import ErcSynthError
from erc_synth.dataset_scripts.core.registry import BENCHMARKS, MODES
from erc_synth.dataset_scripts.gates import GateOptions
from erc_synth.generation.backends.base import SamplingParams
from erc_synth.generation.backends.factory import BACKENDS
from erc_synth.generation.chat_format import CHAT_FORMATS
from erc_synth.generation.engine import (
    BACKEND_OPTION_RULES,
    CONFIG_RULES,
    MAX_TURNS,
    SAMPLING_RULES,
    default_of,
)
from erc_synth.generation.grammar import LABEL_FORMATS
from erc_synth.generation.label_plan import LABEL_PLANS
from erc_synth.generation.prompts import LABEL_ORDERS, TEMPLATE_VERSIONS, check_version
from erc_synth.generation.validation import TARGET_POLICIES

#: ``turns: benchmark`` asks each benchmark's typical real dialogue length (``Benchmark.real_lengths``).
TURNS_OF_BENCHMARK = "benchmark"

PositiveInt = Annotated[StrictInt, Field(ge=1)]
#: YAML scalars keep their type: ``"3"`` is not an integer, ``1`` is not a string, ``yes`` is a bool only.
_SCALAR_TYPES: dict[str, Any] = {"float": StrictFloat, "int": StrictInt, "str": StrictStr, "bool": StrictBool}


class _Strict(BaseModel):
    """Unknown keys are errors; scalar fields are strict (lists still read as tuples)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _choice(value: Any, choices: tuple[str, ...]) -> Any:
    if value not in choices:
        raise ValueError(f"has unknown value {value!r}; known: {', '.join(choices)}")
    return value


def _engine_check(name: str, value: Any) -> Any:
    """The engine's own rule for a generation setting (its range, ceiling included), so presets match flags."""
    ok, valid = CONFIG_RULES[name]
    if value is not None and not ok(value):
        raise ValueError(f"must be {valid}, got {value!r}")
    return value


class DatasetEntry(_Strict):
    """One generation run: ``{benchmark: meld, mode: natural, num_dialogues: 16}``."""

    benchmark: StrictStr
    mode: StrictStr
    num_dialogues: PositiveInt

    @field_validator("benchmark")
    @classmethod
    def _benchmark(cls, value: str) -> str:
        return _choice(value, tuple(BENCHMARKS))

    @field_validator("mode")
    @classmethod
    def _mode(cls, value: str) -> str:
        return _choice(value, MODES)

    @field_validator("num_dialogues")
    @classmethod
    def _num_dialogues(cls, value: int) -> int:
        return _engine_check("num_dialogues", value)


class AuditSettings(_Strict):
    """``audit: {judge: train, label_policy: llm}``: audit each built set's labels against a judge."""

    judge: Annotated[StrictStr, Field(min_length=1)]
    label_policy: StrictStr = DEFAULT_LABEL_POLICY

    @field_validator("label_policy")
    @classmethod
    def _policy(cls, value: str) -> str:
        return _choice(value, LABEL_POLICIES)


class RealDataSettings(_Strict):
    """``with_real_data:``: generation settings applied only when real benchmark data is found.

    Why a block of its own: the methods that need real text (exemplars in the prompt) make the best sets, and a
    preset such as the quickstart must still run on a machine without the licensed data; the pipeline applies this
    block when ``--real-data`` (or its default) resolves, and says in one line that it did not otherwise.
    """

    few_shot: StrictInt | None = None

    @field_validator("few_shot")
    @classmethod
    def _few_shot(cls, value: int | None) -> int | None:
        return _checked_few_shot(value)


def _checked_few_shot(value: int | None) -> int | None:
    return _engine_check("few_shot", value)


_GATES = GateOptions()
#: The generation settings a preset may choose by name, with their choices (the engine's own tables).
_GENERATION_CHOICES: dict[str, tuple[str, ...]] = {
    "prompt_version": tuple(TEMPLATE_VERSIONS),
    "label_format": LABEL_FORMATS,
    "label_order": LABEL_ORDERS,
    "target_policy": TARGET_POLICIES,
    "label_plan": LABEL_PLANS,
}


class BuildSettings(_Strict):
    """``build:``: how each run becomes a dataset (``erc-synth build``'s options)."""

    split_seed: StrictInt = DEFAULT_SPLIT_SEED
    ratios: tuple[StrictFloat, StrictFloat, StrictFloat] = DEFAULT_RATIOS
    near_dup_threshold: StrictFloat | None = _GATES.near_dup_threshold
    #: The bad-line gate (``dataset_scripts.gates.GateOptions``); ``null`` turns a share off.
    gibberish_threshold: StrictFloat | None = _GATES.gibberish_threshold
    gibberish_min_words: StrictInt = _GATES.gibberish_min_words
    bare_label_gate: StrictBool = _GATES.bare_label_gate
    max_bad_line_share: StrictFloat | None = _GATES.max_bad_line_share
    #: The quality report's two-sample test (MiniLM embeddings, its costly part).
    c2st: StrictBool = True
    #: The label filter's minimum support in [0, 1] (``hub_cards.folder.prepare_run``); null: no filter.
    label_filter: StrictInt | StrictFloat | None = DEFAULT_LABEL_FILTER

    @field_validator("split_seed", "near_dup_threshold", "gibberish_threshold", "gibberish_min_words",
                     "max_bad_line_share", "label_filter")
    @classmethod
    def _build_rule(cls, value: Any, info: ValidationInfo) -> Any:
        """The build's own range (``build_defaults.BUILD_RULES``), so a preset accepts what the flags accept."""
        ok, valid = BUILD_RULES[info.field_name or ""]
        if not ok(value):
            raise ValueError(f"must be {valid}, got {value!r}")
        return value

    @field_validator("ratios")
    @classmethod
    def _ratios(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(r < 0 for r in value) or abs(sum(value) - 1) > 1e-6 or value[0] <= 0:
            raise ValueError(f"must be three shares train, validation, test that sum to 1, got {list(value)}")
        return value


def _sampling_model() -> type[BaseModel]:
    """A model with one optional field per ``SamplingParams`` field; unset fields keep the engine's default."""
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(SamplingParams):
        kind = str(f.type)
        annotation = list[StrictStr] if kind.startswith("tuple") else _SCALAR_TYPES.get(kind, Any)
        fields[f.name] = (annotation | None, None)
    model = create_model("SamplingSettings", __base__=_SamplingBase, **fields)
    model.__doc__ = "``sampling:``: the decoder's sampling parameters (the engine's ``SamplingParams``)."
    return model


class _SamplingBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*")
    @classmethod
    def _engine_range(cls, value: Any, info: ValidationInfo) -> Any:
        rule = SAMPLING_RULES.get(info.field_name or "")
        checked = tuple(value) if isinstance(value, list) else value
        if value is not None and rule is not None and not rule[0](checked):
            raise ValueError(f"must be {rule[1]}, got {value!r}")
        return value


SamplingSettings = _sampling_model()


class PresetSettings(_Strict):
    """A whole preset file: six generation runs, how they are built, audited and published."""

    name: StrictStr | None = None
    description: StrictStr = ""
    backend: StrictStr
    model: StrictStr
    endpoints: list[StrictStr] = []
    chat_format: StrictStr = "auto"
    grammar: StrictBool = True
    seed: Annotated[StrictInt, Field(ge=0)]
    concurrency: PositiveInt | None = None
    max_attempts: PositiveInt = Field(default_factory=lambda: default_of("max_attempts"))
    steer: StrictBool = False
    turns: tuple[PositiveInt, PositiveInt] | Literal["benchmark"] | None = None
    max_utterance_chars: PositiveInt | None = None
    sampling: SamplingSettings = Field(default_factory=SamplingSettings)  # type: ignore[valid-type]
    datasets: Annotated[list[DatasetEntry], Field(min_length=1)]
    build: BuildSettings = BuildSettings()
    #: Keyword arguments for the backend's constructor; each backend checks its own (engine rules).
    backend_options: dict[str, Any] = {}
    audit: AuditSettings | None = None
    prompt_version: StrictStr | None = None
    label_format: StrictStr | None = None
    label_order: StrictStr | None = None
    target_policy: StrictStr | None = None
    #: Label sequences drawn before generation from the benchmark's statistics (``generation.label_plan``).
    label_plan: StrictStr | None = None
    #: Real train dialogues shown to the model as worked examples (needs the real data).
    few_shot: StrictInt | None = None
    #: Generation settings applied only when real data is found (``RealDataSettings``).
    with_real_data: RealDataSettings | None = None
    #: What still differs from the reference study (the card lists it).
    differences: list[Annotated[StrictStr, Field(min_length=1, pattern=r"\S")]] = []

    @field_validator("backend")
    @classmethod
    def _backend(cls, value: str) -> str:
        return _choice(value, tuple(BACKENDS))

    @field_validator("chat_format")
    @classmethod
    def _chat_format(cls, value: str) -> str:
        return _choice(value, ("auto", *CHAT_FORMATS))

    @field_validator(*_GENERATION_CHOICES)
    @classmethod
    def _generation_choice(cls, value: str | None, info: ValidationInfo) -> str | None:
        return value if value is None else _choice(value, _GENERATION_CHOICES[info.field_name or ""])

    @field_validator("seed", "concurrency", "max_attempts", "max_utterance_chars", "few_shot")
    @classmethod
    def _engine_rule(cls, value: int | None, info: ValidationInfo) -> int | None:
        return _engine_check(info.field_name or "", value)

    @field_validator("backend_options")
    @classmethod
    def _backend_options(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name, (ok, valid) in BACKEND_OPTION_RULES.items():
            if name in value and not ok(value[name]):
                raise ValueError(f"must hold {name} as {valid}, got {value[name]!r}")
        return value

    @field_validator("turns", mode="before")
    @classmethod
    def _turns_shape(cls, value: Any) -> Any:
        if isinstance(value, str) and value != TURNS_OF_BENCHMARK:
            raise ValueError(f"must be [min, max] with 1 <= min <= max, or {TURNS_OF_BENCHMARK!r}, got {value!r}")
        return value

    @field_validator("turns")
    @classmethod
    def _turns(cls, value: Any) -> Any:
        if isinstance(value, tuple) and not CONFIG_RULES["turns"][0](value):
            raise ValueError(f"must be [min, max] with 1 <= min <= max <= {MAX_TURNS}, or {TURNS_OF_BENCHMARK!r}, "
                             f"got {list(value)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> PresetSettings:
        names = [f"{d.benchmark}-{d.mode}" for d in self.datasets]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"datasets lists {', '.join(duplicates)} more than once")
        try:
            check_version(self.prompt_version or default_of("prompt_version"),
                          self.label_format or default_of("label_format"))
        except ErcSynthError as exc:
            raise ValueError(f"fields 'prompt_version' and 'label_format': {exc}") from None
        return self


def validate_preset(data: Any, source: str) -> PresetSettings:
    """The preset mapping as ``PresetSettings``; the first problem is raised as one ``ErcSynthError`` line."""
    if not isinstance(data, dict):
        raise ErcSynthError(f"{source}: a preset must be a YAML mapping, got {type(data).__name__}")
    return settings_schema.validate_settings(PresetSettings, data, source, "preset")
