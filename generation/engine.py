"""The run engine: generate N dialogues into a RUN_DIR, concurrently, reproducibly and resumably.

Concurrency, durability, retries and resumption are the request pool's (``request_pool``): this module says
what each index asks (its prompt, grammar and seed ``derive_seed(run seed, index, attempt)``) and how an answer
is judged (the dialogue parser). A balanced run's target for an index is a function of the index (or, with
``steer``, of the index and the dialogues accepted in earlier *waves*, see below), so the text of a request
never depends on timing, and the same seed gives the same records byte for byte.

Steering (``steer=True``, balanced mode): indices are processed in waves of ``steer_wave``; the targets of a
wave are chosen (``seeds.steered_targets``) from the label counts of the dialogues accepted in all earlier
waves, and a wave starts only when the previous one is finished. The choice therefore depends only on stored
results, never on completion order, so steering stays reproducible; what it costs is throughput at each wave
boundary (the server idles while the last requests of a wave finish), and a dialogue can no longer be
regenerated alone without the earlier waves' results.

Growing a run: a larger ``num_dialogues`` on an existing RUN_DIR extends it (the store records the history).
Indices below the old count keep their seeds and targets, so their records are the ones already stored, byte for
byte, and the grown run equals a fresh run of the larger size. Steering keeps this: a wave's targets depend on
earlier waves only, and ``steered_targets`` assigns slot by slot, so a last wave that grows keeps its first
targets (the engine still compares every stored target with the one it computes, and refuses a mismatch).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from erc_synth.dataset_scripts.core.benchmark_statistics import benchmark_statistics
from erc_synth.dataset_scripts.core.errors import ErcSynthError, RunDirError, SettingError
from erc_synth.dataset_scripts.core.registry import MODES, Benchmark, get_benchmark
from erc_synth.dataset_scripts.run_store import RunRecord, RunStore, check_run_dir_target, release_run_dir

from .backends.base import (
    DEFAULT_REQUEST_TIMEOUT,
    Backend,
    BackendError,
    GenerationRequest,
    GenerationResult,
    Grammar,
    ModelInfo,
    SamplingParams,
    applied_record,
)
from .exemplars import ExemplarPool, load_pool
from .grammar import LABEL_FORMATS
from .label_plan import LABEL_PLANS, benchmark_plan_model, draw_plan
from .parsing import Rejection
from .prompts import (
    LABEL_ORDERS,
    PROMPT_VERSION,
    TEMPLATE_VERSIONS,
    build_messages,
    check_version,
    templates_for_run,
)
from .request_pool import RequestPool, RetryPolicy, default_concurrency
from .seeds import cyclic_target, derive_seed, steered_targets
from .tuned_model import tuning_provenance
from .validation import TARGET_POLICIES, judge, make_record

#: Exit status for faults the user can retry (server unreachable or failing, a failed write): rerun to resume.
EXIT_SERVER_FAULT = 3


class ServerUnreachableError(ErcSynthError):
    """The first contact with the backend failed (server down, wrong URL, timeout). Nothing was written to
    RUN_DIR. Exit status 3, like a run stopped on server faults: a fault the user can fix and retry."""

    exit_code = EXIT_SERVER_FAULT


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_in(low: int, high: int, note: str = "") -> tuple[Callable[[Any], bool], str]:
    """An integer rule with a ceiling: a typo such as ``10**30`` is refused before anything is allocated."""
    return (lambda v: _integer(v) and low <= v <= high), f"an integer in [{low}, {high}]{note}"


def _seconds_in(low: float, high: float, above: bool = False) -> tuple[Callable[[Any], bool], str]:
    sign = "(" if above else "["
    return ((lambda v: _number(v) and (v > low if above else v >= low) and v <= high),
            f"a number of seconds in {sign}{low}, {high}]")


#: Ceilings of the counts and sizes a user gives: far above any run the project makes, low enough to fit memory.
MAX_DIALOGUES = 1_000_000
MAX_NEW_TOKENS = 32_768
MAX_TURNS = 1_000
MAX_SEED = 2**32 - 1  # numpy's and torch's seed range
MAX_WORKERS = 4_096

#: One validator per setting: (accepts the value, what a valid value is). Shared by the CLI flags and the
#: preset YAML, because both end in ``GenerationConfig``; NaN and infinity fail every numeric check.
SAMPLING_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    # 0 is refused rather than read as greedy: every attempt of an index would decode the same text, so the
    # retries that repair a rejected dialogue could never succeed.
    "temperature": (lambda v: _number(v) and v > 0, "a finite number > 0"),
    "top_p": (lambda v: _number(v) and 0 < v <= 1, "a number in (0, 1]; 1 turns it off"),
    "top_k": _int_in(0, 1_000_000, "; 0 turns it off"),
    "typical_p": (lambda v: _number(v) and 0 < v <= 1, "a number in (0, 1]; 1 turns it off"),
    "repetition_penalty": (lambda v: _number(v) and v > 0, "a finite number > 0; 1 turns it off"),
    "min_p": (lambda v: _number(v) and 0 <= v < 1, "a number in [0, 1); 0 turns it off"),
    "max_new_tokens": _int_in(1, MAX_NEW_TOKENS),
    "stop": (lambda v: isinstance(v, tuple | list) and all(isinstance(s, str) and s for s in v),
             "a list of non-empty strings"),
}
CONFIG_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "num_dialogues": _int_in(1, MAX_DIALOGUES),
    "seed": _int_in(0, MAX_SEED),
    "mode": (lambda v: v in MODES, f"one of {', '.join(MODES)}"),
    "concurrency": (lambda v: v is None or _int_in(1, MAX_WORKERS)[0](v), f"an integer in [1, {MAX_WORKERS}]"),
    "max_attempts": _int_in(1, 1_000),
    "turns": (lambda v: v is None or (isinstance(v, tuple) and len(v) == 2 and all(_integer(t) for t in v)
                                      and 1 <= v[0] <= v[1] <= MAX_TURNS),
              f"two integers MIN MAX with 1 <= MIN <= MAX <= {MAX_TURNS}"),
    "steer_wave": _int_in(1, MAX_DIALOGUES),
    "max_utterance_chars": _int_in(1, 100_000),
    "max_retries": _int_in(0, 100),
    "retry_base_delay": _seconds_in(0, 3_600),
    "retry_max_delay": _seconds_in(0, 3_600),
    "request_timeout": _seconds_in(0, 86_400, above=True),
    "prompt_version": (lambda v: v in TEMPLATE_VERSIONS, f"one of {', '.join(TEMPLATE_VERSIONS)}"),
    "label_format": (lambda v: v in LABEL_FORMATS, f"one of {', '.join(LABEL_FORMATS)}"),
    "label_order": (lambda v: v in LABEL_ORDERS, f"one of {', '.join(LABEL_ORDERS)}"),
    "target_policy": (lambda v: v in TARGET_POLICIES, f"one of {', '.join(TARGET_POLICIES)}"),
    "few_shot": _int_in(0, 64, "; 0 turns it off"),
    "label_plan": (lambda v: v in LABEL_PLANS, f"one of {', '.join(LABEL_PLANS)}"),
}
#: Backend options that every backend reading them needs in range (the rest are the backend's to check).
BACKEND_OPTION_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "batch_size": _int_in(1, 4_096),
    "num_threads": _int_in(1, 1_024),
}


def sampling_from(value: SamplingParams | Mapping[str, Any]) -> SamplingParams:
    """``SamplingParams`` from itself or a mapping (preset YAML); an unknown key is an error naming it."""
    if isinstance(value, SamplingParams):
        params = value
    elif isinstance(value, Mapping):
        known = {f.name for f in fields(SamplingParams)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise SettingError(f"sampling.{unknown[0]}",
                               f"unknown sampling parameter; known: {', '.join(sorted(known))}")
        data = dict(value)
        if isinstance(data.get("stop"), list):
            data["stop"] = tuple(data["stop"])
        params = SamplingParams(**data)
    else:
        raise SettingError("sampling", f"must be a mapping of sampling parameters, got {value!r}")
    for name, (ok, valid) in SAMPLING_RULES.items():
        if not ok(getattr(params, name)):
            raise SettingError(f"sampling.{name}", f"must be {valid}, got {getattr(params, name)!r}")
    return params


def default_of(name: str) -> Any:
    """The default of a ``GenerationConfig`` field (or ``sampling.<name>``): the one source that the CLI flags
    and the preset loader read, so a default is written once."""
    cls, key = (SamplingParams, name.split(".", 1)[1]) if name.startswith("sampling.") else (GenerationConfig, name)
    for f in fields(cls):
        if f.name == key:
            if f.default is not MISSING:
                return f.default
            if f.default_factory is not MISSING:
                return f.default_factory()
            break
    raise KeyError(name)


@dataclass
class GenerationConfig:
    """Everything a run needs. Fields that change the generated text end up in the manifest's settings."""

    benchmark: str
    mode: str = "natural"
    num_dialogues: int = 100
    seed: int = 13
    out: str | Path = "run"
    backend: str = "transformers"
    #: Server URLs (tgi/openai), taken round-robin; ignored by the in-process backend.
    endpoints: list[str] = field(default_factory=list)
    #: Hub id or local folder (transformers; sent as ``model`` to OpenAI-compatible servers); None = default.
    model: str | None = None
    #: Prompt rendering for backends that need it: "auto", "vicuna", "chatml", "template", "raw".
    chat_format: str = "auto"
    sampling: SamplingParams = field(default_factory=SamplingParams)
    #: Constrained decoding (speakers, turn range, label numbers) where the backend supports it.
    grammar: bool = True
    #: Requests in flight; None = 16 per HTTP endpoint, or four times an in-process backend's batch (handed
    #: over as one call, whose rows take the backend's decode slots in turn).
    concurrency: int | None = None
    max_attempts: int = 5
    #: (min, max) turns; None = the benchmark's default.
    turns: tuple[int, int] | None = None
    steer: bool = False
    steer_wave: int = 64
    #: Longest utterance the grammar allows, in characters.
    max_utterance_chars: int = 200
    #: Consecutive server faults tolerated per request before the run stops (resumable).
    max_retries: int = RetryPolicy.max_retries
    retry_base_delay: float = RetryPolicy.base_delay
    retry_max_delay: float = RetryPolicy.max_delay
    #: Seconds one HTTP request may take.
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    prompt_version: str = PROMPT_VERSION
    #: How a line carries its label: "number" ``(N)`` after the utterance, "word" ``(joy)`` after it, or
    #: "word_first" ``Speaker (joy): utterance`` (grammar, prompt and parser follow it).
    label_format: str = "number"
    #: The order of the prompt's label list: "fixed" (the benchmark's) or "shuffled" (drawn from each
    #: request's seed, so no list position can be copied); recorded in the manifest only when not "fixed".
    label_order: str = "fixed"
    #: Balanced mode: "force" (the grammar requires a target line, the parser checks it), "check" (the parser
    #: rejects a dialogue without it) or "prompt" (the study's: named in the prompt only, kept and counted).
    target_policy: str = "force"
    #: Real train dialogues shown in each prompt as worked examples (``generation.exemplars``); 0 is off.
    few_shot: int = 0
    #: "benchmark": each dialogue's length and labels drawn before generation from the benchmark's train-split
    #: statistics (``generation.label_plan``) and forced by the grammar; "none": the model chooses.
    label_plan: str = "none"
    #: The folder with the real benchmark files (``meld/``...); ``few_shot`` reads its train split. Not a setting:
    #: the manifest records the exemplar pool's sha256 instead.
    real_data: str | Path | None = None
    #: Extra keyword arguments for the backend's constructor (device, dtype, batch size...); not in settings.
    backend_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Validate every setting once, wherever the config comes from (CLI flags, a preset, Python)."""
        self.sampling = sampling_from(self.sampling)
        if isinstance(self.turns, list):
            self.turns = tuple(self.turns)
        for name, (ok, valid) in CONFIG_RULES.items():
            if not ok(getattr(self, name)):
                raise SettingError(name, f"must be {valid}, got {getattr(self, name)!r}")
        for name, (ok, valid) in BACKEND_OPTION_RULES.items():
            if name in self.backend_options and not ok(self.backend_options[name]):
                raise SettingError(f"backend_options.{name}", f"must be {valid}, got {self.backend_options[name]!r}")
        if self.steer and self.mode != "balanced":
            raise SettingError("steer", "only applies to mode balanced")
        check_version(self.prompt_version, self.label_format)
        if self.few_shot and self.real_data is None:
            raise SettingError("few_shot", f"{self.few_shot} needs the real {self.benchmark} train split: set "
                                           "{real_data} to the benchmark folder, or ERC_SYNTH_REAL_DATA",
                               related=("real_data",))
        if self.label_plan != "none" and (self.label_format != "word_first" or not self.grammar):
            raise SettingError("label_plan", f"{self.label_plan} forces each line's label through the grammar in "
                                             "the label-first format: it needs label_format word_first and the "
                                             "grammar on")

    def resolved_turns(self, benchmark: Benchmark) -> tuple[int, int]:
        low, high = self.turns or benchmark.turns
        return int(low), int(high)


@dataclass
class RunReport:
    """What a call of ``generate`` achieved; ``status`` is "complete", "incomplete" or "stopped"."""

    run_dir: Path
    requested: int
    accepted: int
    #: Indices that used up ``max_attempts`` without an accepted dialogue.
    exhausted: list[int]
    #: Rejections in the whole RUN_DIR, by reason.
    rejected_by_reason: dict[str, int]
    #: Requests finished (accepted or rejected) by this call.
    finished_now: int
    #: Server faults retried by this call.
    retried: int
    elapsed_s: float
    status: str
    error: str | None = None

    @property
    def dialogues_per_s(self) -> float:
        return self.finished_now / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def summary(self) -> str:
        rejected = sum(self.rejected_by_reason.values())
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(self.rejected_by_reason.items())) or "none"
        line = (f"{self.run_dir}: {self.accepted}/{self.requested} dialogues accepted, {rejected} rejected "
                f"({reasons}); {self.finished_now} requests in {self.elapsed_s:.1f}s "
                f"({self.dialogues_per_s:.1f}/s), {self.retried} server faults retried")
        if self.exhausted:
            line += f"; {len(self.exhausted)} indices used all attempts (first: {self.exhausted[:5]})"
        if self.error:
            line += f"\nstopped: {self.error}"
        return line


def _erc_synth_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("erc-synth")
    except PackageNotFoundError:
        return None


def run_settings(config: GenerationConfig, benchmark: Benchmark, pool: ExemplarPool | None = None) -> dict[str, Any]:
    """The manifest settings: everything that determines the generated text, and nothing that does not.

    With ``few_shot``, ``pool`` (the run's ``ExemplarPool``) is required: the manifest records its size and
    sha256, never its text (the prompt templates stay the only prompt words stored)."""
    settings: dict[str, Any] = {
        "benchmark": benchmark.name,
        "mode": config.mode,
        "seed": config.seed,
        "num_dialogues": config.num_dialogues,
        "turns": list(config.resolved_turns(benchmark)),
        "max_attempts": config.max_attempts,
        "backend": config.backend,
        "model": config.model,
        "chat_format": config.chat_format,
        "grammar": config.grammar,
        "max_utterance_chars": config.max_utterance_chars,
        "sampling": config.sampling.to_dict(),
        "prompt_version": config.prompt_version,
        "prompt_templates": templates_for_run(benchmark, config.mode, config.prompt_version),
        "steer": config.steer,
    }
    if config.steer:
        settings["steer_wave"] = config.steer_wave
    if config.label_format != "number":
        settings["label_format"] = config.label_format
    if config.label_order != "fixed":
        settings["label_order"] = config.label_order
    if config.mode == "balanced" and config.target_policy != "force":
        settings["target_policy"] = config.target_policy
    if config.few_shot:
        if pool is None:
            raise ValueError("few_shot runs record their exemplar pool; pass pool")
        settings["few_shot"] = pool.settings()
    if config.label_plan != "none":
        settings["label_plan"] = plan_settings(benchmark, config.label_plan)
    return settings


def plan_settings(benchmark: Benchmark, label_plan: str) -> dict[str, Any]:
    """The manifest's ``label_plan`` block: where the statistics come from and their sha256 (counts only)."""
    import hashlib
    import json

    stats = benchmark_statistics(benchmark.name)
    digest = hashlib.sha256(json.dumps(stats, sort_keys=True).encode()).hexdigest()
    return {"source": label_plan, "split": stats["split"], "variant": stats["variant"],
            "dialogues": stats["dialogues"], "statistics_sha256": digest}


def load_exemplar_pool(config: GenerationConfig, benchmark: Benchmark) -> ExemplarPool | None:
    """The run's exemplar pool (the real train split), or None without ``few_shot``."""
    if not config.few_shot:
        return None
    return load_pool(benchmark, config.real_data, config.few_shot, config.resolved_turns(benchmark))


def _validate(config: GenerationConfig, benchmark: Benchmark) -> None:
    """The checks that need the benchmark (the rest ran in ``GenerationConfig.__post_init__``)."""
    low, high = config.resolved_turns(benchmark)
    if not 1 <= low <= high:
        raise SettingError("turns", f"must satisfy 1 <= min <= max, got {low}..{high}")


class _DialogueSource:
    """The generation run's ``RequestSource``: one dialogue per index, judged by the dialogue parser."""

    def __init__(self, config: GenerationConfig, benchmark: Benchmark, backend: Backend, store: RunStore,
                 pool: ExemplarPool | None = None) -> None:
        self.config = config
        self.pool = pool
        self.plan_model = (benchmark_plan_model(benchmark, config.mode, config.resolved_turns(benchmark))
                           if config.label_plan != "none" else None)
        self.benchmark = benchmark
        self.backend = backend
        self.store = store
        self.turns = config.resolved_turns(benchmark)
        self.size = config.num_dialogues
        self.max_attempts = config.max_attempts
        self.targets: dict[int, int | None] = {}
        self._grammars: dict[int | None, Grammar | None] = {}

    def groups(self) -> list[range]:
        n = self.config.num_dialogues
        if not self.config.steer:
            return [range(n)]
        wave = self.config.steer_wave
        return [range(start, min(start + wave, n)) for start in range(0, n, wave)]

    def restore(self, record: RunRecord) -> None:
        self.targets.setdefault(record.index, record.target_emotion)

    def begin_group(self, todo: Sequence[int], group: range, accepted: Mapping[int, Sequence[int]]) -> None:
        for index, target in self._targets_for(todo, group.start, accepted).items():
            if index in self.targets and self.targets[index] != target:
                raise RunDirError(f"{self.store.records_path}: index {index} was generated with target "
                                  f"{self.targets[index]}, this run computes {target}; refusing to mix")
            self.targets[index] = target

    def _targets_for(self, indices: Sequence[int], wave_start: int,
                     accepted: Mapping[int, Sequence[int]]) -> dict[int, int | None]:
        if self.config.mode != "balanced":
            return dict.fromkeys(indices)
        if not self.config.steer:
            return {i: cyclic_target(i, self.benchmark.num_labels) for i in indices}
        counts = [0] * self.benchmark.num_labels
        for index, emotions in accepted.items():
            if index < wave_start:
                for emotion in emotions:
                    counts[emotion] += 1
        wave_size = min(self.config.steer_wave, self.config.num_dialogues - wave_start)
        chosen = steered_targets(wave_start, wave_size, counts)
        return {i: chosen[i - wave_start] for i in indices}

    def _grammar(self, target: int | None) -> Grammar | None:
        if not self.config.grammar or not self.backend.supports_grammar:
            return None
        if self.config.target_policy != "force":
            target = None  # the target is the prompt's (and, with "check", the parser's) business only
        if target not in self._grammars:
            from . import grammar as grammars

            kwargs = {"max_utterance_chars": self.config.max_utterance_chars, "target_label": target,
                      "label_format": self.config.label_format, "label_names": self.benchmark.labels}
            args = (list(self.benchmark.speakers), self.benchmark.num_labels, *self.turns)
            if self.backend.grammar_kind == "json_schema":
                self._grammars[target] = Grammar("json_schema", grammars.dialogue_json_schema(*args, **kwargs))
            else:
                self._grammars[target] = Grammar("regex", grammars.dialogue_regex(*args, **kwargs))
        return self._grammars[target]

    def _plan(self, seed: int, target: int | None) -> list[int] | None:
        """The request's label plan, a function of its seed (and its balanced target) alone."""
        if self.plan_model is None:
            return None
        return draw_plan(self.plan_model, seed, target if self.config.target_policy == "force" else None)

    def _planned_grammar(self, plan: list[int], target: int | None) -> Grammar:
        from . import grammar as grammars

        if not self.backend.supports_grammar or self.backend.grammar_kind != "regex":
            raise SettingError("label_plan", f"{self.config.label_plan} needs a backend that enforces a line regex "
                                             f"(transformers, vllm, tgi); {self.backend.name} does not")
        return Grammar("regex", grammars.dialogue_regex(
            list(self.benchmark.speakers), self.benchmark.num_labels, *self.turns,
            max_utterance_chars=self.config.max_utterance_chars, label_format=self.config.label_format,
            label_names=self.benchmark.labels, planned_labels=plan))

    def request(self, index: int, attempt: int) -> GenerationRequest:
        seed = derive_seed(self.config.seed, index, attempt)
        target = self.targets[index]
        exemplars = self.pool.block(seed, self.config.label_format)[0] if self.pool is not None else None
        messages = build_messages(self.benchmark, self.config.mode, turns=self.turns, target_label=target,
                                  version=self.config.prompt_version, label_format=self.config.label_format,
                                  label_order=self.config.label_order, seed=seed, exemplars=exemplars)
        plan = self._plan(seed, target)
        grammar = self._planned_grammar(plan, target) if plan is not None else self._grammar(target)
        return GenerationRequest(messages=messages, seed=seed, params=self.config.sampling, grammar=grammar)

    def assess(self, index: int, attempt: int, request: GenerationRequest,
               result: GenerationResult) -> dict[str, Any]:
        target = self.targets[index]
        checked = self.config.target_policy != "prompt"  # "prompt" keeps a dialogue without its target
        verdict = judge(result, self.benchmark, turns=self.turns, target_label=target if checked else None)
        plan = self._plan(request.seed, target)
        if plan is not None and not isinstance(verdict, Rejection) and list(verdict.emotions) != plan:
            verdict = Rejection("plan_mismatch", f"labels {list(verdict.emotions)} differ from the plan {plan}")
        record = make_record(index=index, attempt=attempt, seed=request.seed, target_label=target, result=result,
                             verdict=verdict)
        if plan is not None:
            record["label_plan"] = plan
        if self.pool is not None:  # ids and a hash only: the exemplars' text never reaches RUN_DIR
            _, ids, digest = self.pool.block(request.seed, self.config.label_format)
            record["exemplar_ids"] = ids
            record["exemplar_sha256"] = digest
        return record


def _progress_bar(benchmark: Benchmark, total: int, enabled: bool):
    """The run's bar; ``smoothing=0`` makes its rate (and estimate) the mean rate of dialogues finished so
    far: rows of a continuous batch finish in bursts, which an exponential average reads as a stall."""
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="dlg", desc=f"generate {benchmark.name}", disable=not enabled, dynamic_ncols=True,
                smoothing=0)


def _report(pool: RequestPool, config: GenerationConfig, elapsed: float) -> RunReport:
    counts = pool.store.summary()
    done = counts.accepted + len(counts.exhausted) == config.num_dialogues
    status = "stopped" if pool.error or not done else ("complete" if not counts.exhausted else "incomplete")
    return RunReport(run_dir=pool.store.run_dir, requested=config.num_dialogues,
                     accepted=counts.accepted, exhausted=list(counts.exhausted),
                     rejected_by_reason=counts.rejected_by_reason, finished_now=pool.finished_now,
                     retried=pool.retried, elapsed_s=elapsed, status=status, error=pool.error)


async def _first_contact(config: GenerationConfig, backend: Backend) -> ModelInfo:
    """Ask the backend what it serves; a server that does not answer is one line, before RUN_DIR exists."""
    try:
        return await backend.info()
    except BackendError as exc:
        where = ", ".join(config.endpoints) or f"the {config.backend} backend"
        raise ServerUnreachableError(
            f"could not reach {where}: {' '.join(str(exc).split())}. Nothing was written to {config.out}; start "
            "the server or correct the endpoints or model (--endpoint, --model), then rerun the command"
        ) from exc


def _check_and_record_model(store: RunStore, info: ModelInfo) -> None:
    """Record the model's provenance; refuse to resume a RUN_DIR against a different model."""
    known = store.provenance.get("model_id")
    if known is not None and info.model_id is not None and known != info.model_id:
        raise RunDirError(f"{store.run_dir} was generated by model {known!r}, the backend now serves "
                          f"{info.model_id!r}; resume against the same model or use a new out folder")
    known_sha = store.provenance.get("model_sha")
    if known_sha is not None and info.model_sha is not None and known_sha != info.model_sha:
        raise RunDirError(f"{store.run_dir} was generated by {known!r} at sha {known_sha}, the backend now "
                          f"serves sha {info.model_sha}; resume against the same weights or use a new out folder")
    store.update_provenance(model_id=info.model_id, model_sha=info.model_sha,
                            server_version=info.server_version, erc_synth_version=_erc_synth_version())


async def generate_async(config: GenerationConfig, backend: Backend | None = None,
                         progress: bool | Any = True) -> RunReport:
    """``generate`` for callers that already run an event loop.

    ``progress``: True for the run's own tqdm bar, False for none, or a bar-like object (``update``,
    ``set_postfix``, ``close``, ``n``, ``initial``) that several runs share.

    Order matters for the user: the settings and the RUN_DIR target are checked before a model is loaded or a
    server contacted, and RUN_DIR is created (or grown) only once the server has answered.
    """
    benchmark = get_benchmark(config.benchmark)
    _validate(config, benchmark)
    pool = load_exemplar_pool(config, benchmark)
    settings = run_settings(config, benchmark, pool)
    check_run_dir_target(config.out, settings)
    own_backend = backend is None
    if backend is None:
        from .backends.factory import create_backend

        backend = create_backend(config)
    started = time.perf_counter()
    try:
        info = await _first_contact(config, backend)
        store = RunStore.create_or_open(config.out, settings, allow_growth=True)
        _check_and_record_model(store, info)
        if (tuning := tuning_provenance(config.model)) is not None:  # a GEN_DIR from `tune-generator`
            store.update_provenance(generator_tuning=tuning)
        # what reaches the decoder, per parameter, beside what the settings requested
        store.update_provenance(applied=applied_record(backend, config.grammar))
        source = _DialogueSource(config, benchmark, backend, store, pool)
        pool = RequestPool(source, store, backend,
                           concurrency=config.concurrency or default_concurrency(backend, len(config.endpoints)),
                           retry=RetryPolicy(config.max_retries, config.retry_base_delay, config.retry_max_delay),
                           progress_bar=_progress_bar(benchmark, config.num_dialogues, progress)
                           if isinstance(progress, bool) else progress)
        await pool.run()
    finally:
        release_run_dir(config.out)  # the writer lock, taken by the target check, held while this call wrote
        if own_backend:
            await backend.aclose()
    return _report(pool, config, time.perf_counter() - started)


def generate(config: GenerationConfig, backend: Backend | None = None, progress: bool | Any = True) -> RunReport:
    """Generate ``config.num_dialogues`` dialogues into ``config.out`` (resuming it if it exists).

    ``backend`` lets a caller reuse one loaded model for several runs; it is not closed here.
    """
    return asyncio.run(generate_async(config, backend, progress))
