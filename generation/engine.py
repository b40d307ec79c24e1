"""The run engine: generate N dialogues into a RUN_DIR, concurrently, reproducibly and resumably.

How a run stays reproducible under concurrency and interruption:

* every request's seed is ``derive_seed(run seed, index, attempt)`` and its balanced target is a function of
  the index (or, with ``steer``, of the index and the dialogues accepted in earlier *waves*, see below), so the
  text of a request never depends on timing;
* a result counts as done only once its record is fsynced in ``records.jsonl`` (writes are group-committed:
  one fsync for every record that finished meanwhile); on resume, an index with an accepted record, or with
  ``max_attempts`` rejected ones, is skipped, and any other index continues at its next attempt;
* a rejected output is stored with its raw text and reason, then the index is retried with the next
  attempt's seed, up to ``max_attempts``.

Server faults (connection refused or reset, timeouts, 5xx, 429) are retried with exponential backoff and full
jitter; after ``max_retries`` consecutive faults of one request the run stops taking work, lets the requests in
flight finish and be stored, and reports how to resume.

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
import contextlib
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from erc_synth.dataset_scripts.errors import ErcSynthError, RunDirError
from erc_synth.dataset_scripts.registry import MODES, Benchmark, get_benchmark
from erc_synth.dataset_scripts.run_store import RunStore, check_run_dir_target

from .backends.base import (
    Backend,
    BackendError,
    GenerationRequest,
    Grammar,
    ModelInfo,
    SamplingParams,
    applied_record,
)
from .grammar import LABEL_FORMATS
from .parsing import Rejection
from .prompts import (
    LABEL_ORDERS,
    PROMPT_VERSION,
    TEMPLATE_VERSIONS,
    build_messages,
    check_version,
    templates_for_run,
)
from .seeds import cyclic_target, derive_seed, steered_targets
from .validation import TARGET_POLICIES, judge, make_record

#: Exit status for faults the user can retry (server unreachable or failing, a failed write): rerun to resume.
EXIT_SERVER_FAULT = 3

#: Requests kept in flight per HTTP endpoint: enough to keep a continuous-batching server's batch full.
HTTP_CONCURRENCY_PER_ENDPOINT = 16
#: An in-process backend's default requests in flight, in multiples of its batch: the rows beyond the batch wait
#: in the backend for a slot, so a finished row's slot is refilled at once instead of the batch shrinking.
IN_PROCESS_QUEUE_FACTOR = 4


class SettingError(ErcSynthError):
    """A generation setting outside its valid range. ``setting`` is its name (``"sampling.top_p"``,
    ``"max_attempts"``), so the CLI can name its flag and a preset loader its YAML key."""

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        self.problem = problem
        super().__init__(f"{setting}: {problem}")


class ServerUnreachableError(ErcSynthError):
    """The first contact with the backend failed (server down, wrong URL, timeout). Nothing was written to
    RUN_DIR. Exit status 3, like a run stopped on server faults: a fault the user can fix and retry."""

    exit_code = EXIT_SERVER_FAULT


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


#: One validator per setting: (accepts the value, what a valid value is). Shared by the CLI flags and the
#: preset YAML, because both end in ``GenerationConfig``; NaN and infinity fail every numeric check.
SAMPLING_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    # 0 is refused rather than read as greedy: every attempt of an index would decode the same text, so the
    # retries that repair a rejected dialogue could never succeed.
    "temperature": (lambda v: _number(v) and v > 0, "a finite number > 0"),
    "top_p": (lambda v: _number(v) and 0 < v <= 1, "a number in (0, 1]; 1 turns it off"),
    "top_k": (lambda v: _integer(v) and v >= 0, "an integer >= 0; 0 turns it off"),
    "typical_p": (lambda v: _number(v) and 0 < v <= 1, "a number in (0, 1]; 1 turns it off"),
    "repetition_penalty": (lambda v: _number(v) and v > 0, "a finite number > 0; 1 turns it off"),
    "max_new_tokens": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "stop": (lambda v: isinstance(v, tuple | list) and all(isinstance(s, str) and s for s in v),
             "a list of non-empty strings"),
}
CONFIG_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "num_dialogues": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "seed": (lambda v: _integer(v) and v >= 0, "an integer >= 0"),
    "mode": (lambda v: v in MODES, f"one of {', '.join(MODES)}"),
    "concurrency": (lambda v: v is None or (_integer(v) and v >= 1), "an integer >= 1"),
    "max_attempts": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "turns": (lambda v: v is None or (isinstance(v, tuple) and len(v) == 2 and all(_integer(t) for t in v)
                                      and 1 <= v[0] <= v[1]),
              "two integers MIN MAX with 1 <= MIN <= MAX"),
    "steer_wave": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "max_utterance_chars": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "max_retries": (lambda v: _integer(v) and v >= 0, "an integer >= 0"),
    "retry_base_delay": (lambda v: _number(v) and v >= 0, "a finite number >= 0"),
    "retry_max_delay": (lambda v: _number(v) and v >= 0, "a finite number >= 0"),
    "request_timeout": (lambda v: _number(v) and v > 0, "a finite number of seconds > 0"),
    "prompt_version": (lambda v: v in TEMPLATE_VERSIONS, f"one of {', '.join(TEMPLATE_VERSIONS)}"),
    "label_format": (lambda v: v in LABEL_FORMATS, f"one of {', '.join(LABEL_FORMATS)}"),
    "label_order": (lambda v: v in LABEL_ORDERS, f"one of {', '.join(LABEL_ORDERS)}"),
    "target_policy": (lambda v: v in TARGET_POLICIES, f"one of {', '.join(TARGET_POLICIES)}"),
}
#: Backend options that every backend reading them needs in range (the rest are the backend's to check).
BACKEND_OPTION_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "batch_size": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "num_threads": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
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
    max_retries: int = 6
    retry_base_delay: float = 0.5
    retry_max_delay: float = 30.0
    #: Seconds one HTTP request may take.
    request_timeout: float = 600.0
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


def run_settings(config: GenerationConfig, benchmark: Benchmark) -> dict[str, Any]:
    """The manifest settings: everything that determines the generated text, and nothing that does not."""
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
    return settings


def _validate(config: GenerationConfig, benchmark: Benchmark) -> None:
    """The checks that need the benchmark (the rest ran in ``GenerationConfig.__post_init__``)."""
    low, high = config.resolved_turns(benchmark)
    if not 1 <= low <= high:
        raise SettingError("turns", f"must satisfy 1 <= min <= max, got {low}..{high}")


class _StopRun(Exception):
    """Raised inside a worker to stop the run cleanly (faults exhausted, or a non-retryable backend error)."""


@dataclass(order=True)
class _Item:
    index: int
    attempt: int
    target: int | None = field(compare=False, default=None)


class _GroupCommit:
    """Appends records with one fsync for everything that finished while the previous fsync ran."""

    def __init__(self, store: RunStore) -> None:
        self._store = store
        self._pending: list[tuple[list[dict[str, Any]], asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def write(self, records: list[dict[str, Any]]) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((records, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await asyncio.to_thread(self._store.append, [r for records, _ in batch for r in records])
            except BaseException as exc:  # the caller of write() sees the failure; nothing counts as done
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for _, future in batch:
                if not future.done():
                    future.set_result(None)


class _Run:
    """One call of ``generate``: the state shared by the coordinator and the workers."""

    def __init__(self, config: GenerationConfig, benchmark: Benchmark, store: RunStore, backend: Backend,
                 progress: bool) -> None:
        self.config = config
        self.benchmark = benchmark
        self.store = store
        self.backend = backend
        self.turns = config.resolved_turns(benchmark)
        self.queue: asyncio.PriorityQueue[_Item] = asyncio.PriorityQueue()
        self.writer = _GroupCommit(store)
        self.stop = asyncio.Event()
        self.error: str | None = None
        self.accepted: dict[int, list[int]] = {}  # index -> emotions
        self.exhausted: set[int] = set()
        self.next_attempt: dict[int, int] = {}
        self.targets: dict[int, int | None] = {}
        self.outstanding = 0
        self.group_done = asyncio.Event()
        self.finished_now = 0
        self.retried = 0
        self.rejected_now = 0
        self._busy: set[asyncio.Task[Any] | None] = set()
        self._grammars: dict[int | None, Grammar | None] = {}
        self._bar = self._progress_bar(progress)
        batch = max(1, int(backend.preferred_batch_size))
        endpoints = max(1, len(config.endpoints))
        default = batch * IN_PROCESS_QUEUE_FACTOR if batch > 1 else HTTP_CONCURRENCY_PER_ENDPOINT * endpoints
        self.concurrency = config.concurrency or default
        # An in-process backend gets everything in flight as one call from one worker. Which rows share a forward
        # pass is then a function of the run alone, never of timing: CPU and GPU float kernels make a row's logits
        # depend on its batch-mates in the last bits, which can flip a sampled token, and the same seed must give
        # the same records byte for byte. A server batches requests from everywhere anyway, so it gets one each.
        self.batch_size = self.concurrency if batch > 1 else 1
        self._load_existing()

    # -- state from the store ----------------------------------------------------------------------------
    def _load_existing(self) -> None:
        records = self.store.records()
        for record in records:
            index = record.index
            if index >= self.config.num_dialogues:
                raise RunDirError(f"{self.store.records_path}: record for index {index} beyond num_dialogues")
            self.next_attempt[index] = max(self.next_attempt.get(index, 0), record.attempt + 1)
            self.targets.setdefault(index, record.target_emotion)
            if record.is_accepted and index not in self.accepted:
                self.accepted[index] = list(record.emotions or ())
        self.exhausted.update(self.store.summary(records).exhausted)

    def _finished(self, index: int) -> bool:
        return index in self.accepted or index in self.exhausted

    def _progress_bar(self, enabled: bool):
        from tqdm.auto import tqdm

        return tqdm(total=self.config.num_dialogues, unit="dlg", desc=f"generate {self.benchmark.name}",
                    disable=not enabled, dynamic_ncols=True, smoothing=0.1)

    # -- targets and requests ----------------------------------------------------------------------------
    def _targets_for(self, indices: Sequence[int], wave_start: int) -> dict[int, int | None]:
        if self.config.mode != "balanced":
            return dict.fromkeys(indices)
        if not self.config.steer:
            return {i: cyclic_target(i, self.benchmark.num_labels) for i in indices}
        counts = [0] * self.benchmark.num_labels
        for index, emotions in self.accepted.items():
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

    def _seed(self, item: _Item) -> int:
        return derive_seed(self.config.seed, item.index, item.attempt)

    def _request(self, item: _Item) -> GenerationRequest:
        messages = build_messages(self.benchmark, self.config.mode, turns=self.turns, target_label=item.target,
                                  version=self.config.prompt_version, label_format=self.config.label_format,
                                  label_order=self.config.label_order, seed=self._seed(item))
        return GenerationRequest(messages=messages, seed=self._seed(item),
                                 params=self.config.sampling, grammar=self._grammar(item.target))

    # -- coordinator -------------------------------------------------------------------------------------
    def _groups(self) -> list[range]:
        n = self.config.num_dialogues
        if not self.config.steer:
            return [range(n)]
        wave = self.config.steer_wave
        return [range(start, min(start + wave, n)) for start in range(0, n, wave)]

    async def run(self) -> None:
        self._bar.update(len(self.accepted) + len(self.exhausted))
        self._refresh_postfix()
        workers = [asyncio.create_task(self._worker()) for _ in range(-(-self.concurrency // self.batch_size))]
        clean = False
        try:
            for group in self._groups():
                todo = [i for i in group if not self._finished(i)]
                if not todo:
                    continue
                for index, target in self._targets_for(todo, group.start).items():
                    if index in self.targets and self.targets[index] != target:
                        raise RunDirError(f"{self.store.records_path}: index {index} was generated with target "
                                          f"{self.targets[index]}, this run computes {target}; refusing to mix")
                    self.targets[index] = target
                self.group_done.clear()
                self.outstanding = len(todo)
                for index in todo:
                    self.queue.put_nowait(_Item(index, self.next_attempt.get(index, 0), self.targets[index]))
                waiters = {asyncio.create_task(self.stop.wait()), asyncio.create_task(self.group_done.wait())}
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                for waiter in waiters:
                    waiter.cancel()
                if self.stop.is_set():
                    break
            clean = True
        finally:
            self.stop.set()
            for worker in workers:
                if not clean or worker not in self._busy:  # let requests in flight finish and be stored
                    worker.cancel()
            results = await asyncio.gather(*workers, return_exceptions=True)
            self._bar.close()
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result

    # -- workers -----------------------------------------------------------------------------------------
    async def _take_batch(self) -> list[_Item]:
        items = [await self.queue.get()]
        while len(items) < self.batch_size and not self.queue.empty():
            items.append(self.queue.get_nowait())
        return items

    async def _worker(self) -> None:
        me = asyncio.current_task()
        while not self.stop.is_set():
            items = await self._take_batch()
            if self.stop.is_set():
                return
            self._busy.add(me)
            try:
                await self._process(items)
            except _StopRun as exc:
                self.error = self.error or str(exc)
                self.stop.set()
                return
            except BaseException:
                self.stop.set()  # a bug or a failed write: stop everything, the coordinator re-raises
                raise
            finally:
                self._busy.discard(me)

    async def _process(self, items: list[_Item]) -> None:
        results = await self._generate_with_retries([self._request(item) for item in items])
        checked = self.config.target_policy != "prompt"  # "prompt" keeps a dialogue without its target
        verdicts = [judge(result, self.benchmark, turns=self.turns, target_label=item.target if checked else None)
                    for item, result in zip(items, results, strict=True)]
        records = [make_record(index=item.index, attempt=item.attempt, seed=self._seed(item),
                               target_label=item.target, result=result, verdict=verdict)
                   for item, result, verdict in zip(items, results, verdicts, strict=True)]
        await self.writer.write(records)
        for item, verdict in zip(items, verdicts, strict=True):
            self._settle(item, verdict)

    def _settle(self, item: _Item, verdict: Any) -> None:
        """Account for one durable record: finish the index, or queue its next attempt."""
        self.finished_now += 1
        self.next_attempt[item.index] = item.attempt + 1
        if isinstance(verdict, Rejection):
            self.rejected_now += 1
            if item.attempt + 1 < self.config.max_attempts:
                self.queue.put_nowait(_Item(item.index, item.attempt + 1, item.target))
                self._refresh_postfix()
                return
            self.exhausted.add(item.index)
        else:
            self.accepted[item.index] = list(verdict.emotions)
        self._bar.update(1)
        self._refresh_postfix()
        self.outstanding -= 1
        if self.outstanding == 0:
            self.group_done.set()

    def _refresh_postfix(self) -> None:
        self._bar.set_postfix(accepted=len(self.accepted), rejected=self.rejected_now, retried=self.retried,
                              refresh=False)

    async def _generate_with_retries(self, requests: list[GenerationRequest]):
        for failures in range(self.config.max_retries + 1):
            try:
                return await self.backend.generate_batch(requests)
            except BackendError as exc:
                if not exc.retryable:
                    raise _StopRun(f"backend error that retrying cannot fix: {exc}") from exc
                if failures == self.config.max_retries or self.stop.is_set():
                    raise _StopRun(f"gave up after {failures + 1} consecutive server faults; last: {exc}") from exc
                self.retried += 1
                self._refresh_postfix()
                ceiling = min(self.config.retry_max_delay, self.config.retry_base_delay * 2**failures)
                delay = random.uniform(0, ceiling)  # full jitter: affects timing only, never the text
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), timeout=delay)
        raise AssertionError("unreachable")

    # -- report ------------------------------------------------------------------------------------------
    def report(self, elapsed: float) -> RunReport:
        counts = self.store.summary()
        done = counts.accepted + len(counts.exhausted) == self.config.num_dialogues
        status = "stopped" if self.error or not done else ("complete" if not counts.exhausted else "incomplete")
        return RunReport(run_dir=self.store.run_dir, requested=self.config.num_dialogues,
                         accepted=counts.accepted, exhausted=list(counts.exhausted),
                         rejected_by_reason=counts.rejected_by_reason, finished_now=self.finished_now,
                         retried=self.retried, elapsed_s=elapsed, status=status, error=self.error)


async def _first_contact(config: GenerationConfig, backend: Backend) -> ModelInfo:
    """Ask the backend what it serves; a server that does not answer is one line, before RUN_DIR exists."""
    try:
        return await backend.info()
    except BackendError as exc:
        where = ", ".join(config.endpoints) or f"the {config.backend} backend"
        raise ServerUnreachableError(
            f"could not reach {where}: {' '.join(str(exc).split())}. Nothing was written to {config.out}; start "
            "the server or correct --endpoint/--model, then rerun the command"
        ) from exc


def _check_and_record_model(store: RunStore, info: ModelInfo) -> None:
    """Record the model's provenance; refuse to resume a RUN_DIR against a different model."""
    known = store.provenance.get("model_id")
    if known is not None and info.model_id is not None and known != info.model_id:
        raise RunDirError(f"{store.run_dir} was generated by model {known!r}, the backend now serves "
                          f"{info.model_id!r}; resume against the same model or use a new --out")
    known_sha = store.provenance.get("model_sha")
    if known_sha is not None and info.model_sha is not None and known_sha != info.model_sha:
        raise RunDirError(f"{store.run_dir} was generated by {known!r} at sha {known_sha}, the backend now "
                          f"serves sha {info.model_sha}; resume against the same weights or use a new --out")
    store.update_provenance(model_id=info.model_id, model_sha=info.model_sha,
                            server_version=info.server_version, erc_synth_version=_erc_synth_version())


async def generate_async(config: GenerationConfig, backend: Backend | None = None,
                         progress: bool = True) -> RunReport:
    """``generate`` for callers that already run an event loop.

    Order matters for the user: the settings and the RUN_DIR target are checked before a model is loaded or a
    server contacted, and RUN_DIR is created (or grown) only once the server has answered.
    """
    benchmark = get_benchmark(config.benchmark)
    _validate(config, benchmark)
    settings = run_settings(config, benchmark)
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
        # what reaches the decoder, per parameter, beside what the settings requested
        store.update_provenance(applied=applied_record(backend, config.grammar))
        run = _Run(config, benchmark, store, backend, progress)
        await run.run()
    finally:
        if own_backend:
            await backend.aclose()
    return run.report(time.perf_counter() - started)


def generate(config: GenerationConfig, backend: Backend | None = None, progress: bool = True) -> RunReport:
    """Generate ``config.num_dialogues`` dialogues into ``config.out`` (resuming it if it exists).

    ``backend`` lets a caller reuse one loaded model for several runs; it is not closed here.
    """
    return asyncio.run(generate_async(config, backend, progress))
