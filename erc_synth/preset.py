"""Presets: YAML files that describe a whole erc-synth job (six generation runs, build, publish).

Why files and not code: a user copies ``quickstart.yaml`` or ``paper.yaml``, edits counts, model or endpoint,
and runs ``erc-synth run --preset ./mine.yaml``; the file is the record of what was run.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from erc_synth.dataset_scripts.core.dataset_key import DatasetKey
from erc_synth.dataset_scripts.core.errors import ErcSynthError
from erc_synth.dataset_scripts.core.registry import get_benchmark
from erc_synth.dataset_scripts.core.yaml_io import read_yaml_without_aliases

from .preset_schema import TURNS_OF_BENCHMARK, validate_preset

#: The generation settings a preset passes to ``GenerationConfig`` as they are, where it sets them.
GENERATION_KEYS: tuple[str, ...] = ("prompt_version", "label_format", "label_order", "target_policy", "label_plan",
                                     "few_shot")

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
        return DatasetKey(self.benchmark, self.mode).repo_name


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
    #: Generation settings applied on top of ``generation`` only when real benchmark data is found.
    with_real_data: dict[str, Any] = field(default_factory=dict)

    def for_real_data(self, found: bool) -> Preset:
        """The preset as it runs: ``with_real_data`` merged into ``generation`` when real data was found."""
        if not found or not self.with_real_data:
            return self
        return replace(self, generation={**self.generation, **self.with_real_data}, with_real_data={})

    def turns_for(self, benchmark: str) -> tuple[int, int] | None:
        """The turn range a run of ``benchmark`` asks for (None: the engine's default)."""
        if self.turns == TURNS_OF_BENCHMARK:
            lengths = get_benchmark(benchmark).real_lengths
            return lengths.typical_range if lengths is not None else None
        return self.turns  # type: ignore[return-value]


def parse_preset(data: Any, source: str) -> Preset:
    """Validate a preset mapping (``preset_schema.PresetSettings``); every error names the file and the key."""
    settings = validate_preset(data, source)
    given = settings.model_dump(exclude_unset=True)
    turns = settings.turns
    return Preset(
        name=settings.name or Path(source).stem,
        description=settings.description,
        source=source,
        backend=settings.backend,
        model=settings.model,
        endpoints=tuple(settings.endpoints),
        chat_format=settings.chat_format,
        grammar=settings.grammar,
        seed=settings.seed,
        concurrency=settings.concurrency,
        max_attempts=settings.max_attempts,
        steer=settings.steer,
        turns=tuple(turns) if isinstance(turns, tuple) else turns,
        max_utterance_chars=settings.max_utterance_chars,
        sampling=settings.sampling.model_dump(exclude_unset=True),
        datasets=tuple(DatasetSpec(d.benchmark, d.mode, d.num_dialogues) for d in settings.datasets),
        build=settings.build.model_dump(exclude_unset=True),
        backend_options=dict(settings.backend_options),
        audit=settings.audit.model_dump() if settings.audit is not None else None,
        generation={key: given[key] for key in GENERATION_KEYS if given.get(key) is not None},
        differences=tuple(settings.differences),
        with_real_data=(settings.with_real_data.model_dump(exclude_none=True)
                        if settings.with_real_data is not None else {}),
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
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ErcSynthError(f"{source}: not UTF-8 text (byte {exc.start}); save the preset as UTF-8") from None
    return parse_preset(read_yaml_without_aliases(text, source), source)
