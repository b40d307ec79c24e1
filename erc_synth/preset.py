"""Presets: YAML files that describe a whole erc-synth job (six generation runs, build, publish).

Why files and not code: a user copies ``quickstart.yaml`` or ``paper.yaml``, edits counts, model or endpoint,
and runs ``erc-synth run --preset ./mine.yaml``; the file is the record of what was run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from erc_synth.dataset_scripts.core.errors import ErcSynthError
from erc_synth.dataset_scripts.core.registry import BENCHMARKS, MODES, get_benchmark
from erc_synth.generation.backends.factory import BACKENDS
from erc_synth.generation.engine import CONFIG_RULES, default_of
from erc_synth.generation.grammar import LABEL_FORMATS
from erc_synth.generation.label_plan import LABEL_PLANS
from erc_synth.generation.prompts import LABEL_ORDERS, TEMPLATE_VERSIONS, check_version
from erc_synth.generation.validation import TARGET_POLICIES

#: ``turns: benchmark`` asks each benchmark's typical real dialogue length (``Benchmark.real_lengths``).
TURNS_OF_BENCHMARK = "benchmark"
#: Generation settings a preset may set, with their choices; passed to ``GenerationConfig`` as they are.
_GENERATION_CHOICES: dict[str, tuple[str, ...]] = {
    "prompt_version": tuple(TEMPLATE_VERSIONS),
    "label_format": LABEL_FORMATS,
    "label_order": LABEL_ORDERS,
    "target_policy": TARGET_POLICIES,
    "label_plan": LABEL_PLANS,
}
#: Numeric generation settings a preset may set, checked by the engine's own rule (``CONFIG_RULES``).
_GENERATION_NUMBERS: tuple[str, ...] = ("few_shot",)

BUILTIN_PRESETS: tuple[str, ...] = ("quickstart", "paper", "cpu-study")


@dataclass(frozen=True)
class DatasetSpec:
    """One generation run of a preset: a benchmark, a mode and how many dialogues to generate."""

    benchmark: str
    mode: str
    num_dialogues: int

    @property
    def name(self) -> str:
        """The dataset's name, also its Hub repo name: ``{benchmark}-synth-{mode}``."""
        return f"{self.benchmark}-synth-{self.mode}"


@dataclass(frozen=True)
class Preset:
    """A validated preset."""

    name: str
    description: str
    source: str
    backend: str
    model: str
    endpoints: tuple[str, ...]
    chat_format: str
    grammar: bool
    seed: int
    concurrency: int | None
    max_attempts: int
    steer: bool
    #: [min, max] for every benchmark, ``"benchmark"`` for each one's typical real length, or None (the default).
    turns: tuple[int, int] | str | None
    max_utterance_chars: int | None
    sampling: dict[str, Any]
    datasets: tuple[DatasetSpec, ...]
    build: dict[str, Any] = field(default_factory=dict)
    #: Keyword arguments for the backend's constructor (e.g. ``num_threads``, ``batch_size``, ``device``).
    backend_options: dict[str, Any] = field(default_factory=dict)
    #: ``{"judge": JUDGE, "label_policy": "llm" | "judge" | "agree"}``: audit each built set's labels against a judge
    #: (as ``erc-synth build --audit JUDGE --label-policy POLICY``); None builds without an audit.
    audit: dict[str, Any] | None = None
    #: ``prompt_version``, ``label_format``, ``label_order``, ``target_policy``, ``label_plan`` and ``few_shot``
    #: where the preset sets them.
    generation: dict[str, Any] = field(default_factory=dict)
    #: What still differs from the reference study (the card lists it under "Differences from the reference study").
    differences: tuple[str, ...] = ()

    def turns_for(self, benchmark: str) -> tuple[int, int] | None:
        """The turn range a run of ``benchmark`` asks for (None: the engine's default)."""
        if self.turns == TURNS_OF_BENCHMARK:
            lengths = get_benchmark(benchmark).real_lengths
            return lengths.typical_range if lengths is not None else None
        return self.turns  # type: ignore[return-value]


def _require(data: dict[str, Any], key: str, kind: type | tuple[type, ...], source: str) -> Any:
    if key not in data:
        raise ErcSynthError(f"{source}: preset lacks the field {key!r}")
    value = data[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ErcSynthError(f"{source}: field {key!r} has value {value!r}, expected {getattr(kind, '__name__', kind)}")
    return value


def _optional_positive_int(data: dict[str, Any], key: str, source: str) -> int | None:
    value = data.get(key)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ErcSynthError(f"{source}: field {key!r} must be a positive integer, got {value!r}")
    return value


def _dataset_spec(entry: Any, position: int, source: str) -> DatasetSpec:
    where = f"{source}: datasets[{position}]"
    if not isinstance(entry, dict):
        raise ErcSynthError(f"{where} must be a mapping with benchmark, mode, num_dialogues; got {entry!r}")
    benchmark = entry.get("benchmark")
    if benchmark not in BENCHMARKS:
        known = ", ".join(BENCHMARKS)
        raise ErcSynthError(f"{where}: field 'benchmark' has unknown value {benchmark!r}; known: {known}")
    mode = entry.get("mode")
    if mode not in MODES:
        raise ErcSynthError(f"{where}: field 'mode' has unknown value {mode!r}; known: {', '.join(MODES)}")
    count = entry.get("num_dialogues")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ErcSynthError(f"{where}: field 'num_dialogues' must be a positive integer, got {count!r}")
    return DatasetSpec(benchmark=benchmark, mode=mode, num_dialogues=count)


def _audit(data: dict[str, Any], source: str) -> dict[str, Any] | None:
    """The optional ``audit:`` mapping; the judge spec itself is checked when the build resolves it."""
    audit = data.get("audit")
    if audit is None:
        return None
    if not isinstance(audit, dict) or not isinstance(audit.get("judge"), str) or not audit["judge"]:
        raise ErcSynthError(f"{source}: field 'audit' must be a mapping with a 'judge' (e.g. train), got {audit!r}")
    unknown = sorted(set(audit) - {"judge", "label_policy"})
    if unknown:
        raise ErcSynthError(f"{source}: field 'audit' has unknown key(s) {', '.join(unknown)}; known: judge, "
                            "label_policy")
    policy = audit.get("label_policy", "llm")
    if policy not in ("llm", "judge", "agree"):
        raise ErcSynthError(f"{source}: field 'audit.label_policy' has unknown value {policy!r}; known: llm, judge, "
                            "agree")
    return {"judge": audit["judge"], "label_policy": policy}


def _generation(data: dict[str, Any], source: str) -> dict[str, Any]:
    """``prompt_version``, ``label_format``, ``label_order``, ``target_policy`` and ``label_plan``, each checked
    against its choices, and ``few_shot``, checked by the rule the ``generate`` flag shares."""
    chosen: dict[str, Any] = {}
    for key in _GENERATION_NUMBERS:
        if key in data:
            ok, valid = CONFIG_RULES[key]
            if not ok(data[key]):
                raise ErcSynthError(f"{source}: field {key!r} must be {valid}, got {data[key]!r}")
            chosen[key] = data[key]
    for key, choices in _GENERATION_CHOICES.items():
        if key in data:
            if data[key] not in choices:
                raise ErcSynthError(f"{source}: field {key!r} has unknown value {data[key]!r}; known: "
                                    f"{', '.join(choices)}")
            chosen[key] = data[key]
    try:
        check_version(chosen.get("prompt_version", default_of("prompt_version")),
                      chosen.get("label_format", default_of("label_format")))
    except ErcSynthError as exc:
        raise ErcSynthError(f"{source}: fields 'prompt_version' and 'label_format': {exc}") from None
    return chosen


def parse_preset(data: Any, source: str) -> Preset:
    """Validate a preset mapping; every error names the file and the field."""
    if not isinstance(data, dict):
        raise ErcSynthError(f"{source}: a preset must be a YAML mapping, got {type(data).__name__}")
    backend = _require(data, "backend", str, source)
    if backend not in BACKENDS:
        raise ErcSynthError(f"{source}: field 'backend' has unknown value {backend!r}; known: {', '.join(BACKENDS)}")
    entries = _require(data, "datasets", list, source)
    if not entries:
        raise ErcSynthError(f"{source}: field 'datasets' is empty")
    specs = tuple(_dataset_spec(entry, i, source) for i, entry in enumerate(entries))
    names = [spec.name for spec in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ErcSynthError(f"{source}: field 'datasets' lists {', '.join(duplicates)} more than once")
    turns = data.get("turns")
    if turns is not None and turns != TURNS_OF_BENCHMARK:
        if (not isinstance(turns, list) or len(turns) != 2 or not all(isinstance(t, int) for t in turns)
                or not 1 <= turns[0] <= turns[1]):
            raise ErcSynthError(f"{source}: field 'turns' must be [min, max] with 1 <= min <= max, or "
                                f"{TURNS_OF_BENCHMARK!r}, got {turns!r}")
        turns = (turns[0], turns[1])
    sampling = data.get("sampling") or {}
    if not isinstance(sampling, dict):
        raise ErcSynthError(f"{source}: field 'sampling' must be a mapping, got {sampling!r}")
    concurrency = _optional_positive_int(data, "concurrency", source)
    build = data.get("build") or {}
    if not isinstance(build, dict):
        raise ErcSynthError(f"{source}: field 'build' must be a mapping, got {build!r}")
    backend_options = data.get("backend_options") or {}
    if not isinstance(backend_options, dict):
        raise ErcSynthError(f"{source}: field 'backend_options' must be a mapping, got {backend_options!r}")
    generation = _generation(data, source)
    differences = data.get("differences") or []
    if not isinstance(differences, list) or not all(isinstance(d, str) and d.strip() for d in differences):
        raise ErcSynthError(f"{source}: field 'differences' must be a list of sentences, got {differences!r}")
    return Preset(
        name=str(data.get("name") or Path(source).stem),
        description=str(data.get("description") or ""),
        source=source,
        backend=backend,
        model=str(_require(data, "model", str, source)),
        endpoints=tuple(str(e) for e in data.get("endpoints") or ()),
        chat_format=str(data.get("chat_format") or "auto"),
        grammar=bool(data.get("grammar", True)),
        seed=int(_require(data, "seed", int, source)),
        concurrency=concurrency,
        max_attempts=int(data.get("max_attempts", default_of("max_attempts"))),
        steer=bool(data.get("steer", False)),
        turns=turns,
        max_utterance_chars=_optional_positive_int(data, "max_utterance_chars", source),
        sampling=dict(sampling),
        datasets=specs,
        build=dict(build),
        backend_options=dict(backend_options),
        audit=_audit(data, source),
        generation=generation,
        differences=tuple(differences),
    )


def load_preset(name_or_path: str) -> Preset:
    """Load a built-in preset by name (``quickstart``, ``paper``) or a preset file by path."""
    if name_or_path in BUILTIN_PRESETS:
        text = resources.files("erc_synth.presets").joinpath(f"{name_or_path}.yaml").read_text(encoding="utf-8")
        source = f"preset {name_or_path!r}"
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise ErcSynthError(
                f"no preset named {name_or_path!r}: built-in presets are {', '.join(BUILTIN_PRESETS)}, "
                "or give the path of a YAML file"
            )
        text = path.read_text(encoding="utf-8")
        source = str(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ErcSynthError(f"{source}: not valid YAML ({exc})") from exc
    return parse_preset(data, source)
