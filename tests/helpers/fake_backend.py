"""An in-memory ``Backend`` for engine unit tests: scripted outputs and injected faults, no server, no model.

Why a fake here and not a server: the engine's own logic (retries, attempts, resume, steering, growth) is the
thing under test, and it depends on the backend only through the ``Backend`` protocol. A fake that answers in
microseconds lets those tests run in milliseconds; one real-server test per protocol stays in the slow tier.

The fake behaves like a seeded model that follows its prompt: its text is a pure function of the request's
seed and of the target emotion the prompt asks for (found by rendering the engine's prompt for each label), so
resumed, grown or concurrent runs must store the same records as a clean run.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterable, Sequence

from erc_synth.dataset_scripts.core.registry import get_benchmark
from erc_synth.generation.backends.base import BackendError, GenerationRequest, GenerationResult, ModelInfo
from erc_synth.generation.prompts import build_messages

Writer = Callable[[GenerationRequest, "int | None"], str]


def retryable(message: str = "503 Service Unavailable") -> BackendError:
    return BackendError(message, retryable=True, status=503)


def fatal(message: str = "400 Bad Request: prompt too long") -> BackendError:
    return BackendError(message, retryable=False, status=400)


class FakeBackend:
    """A scripted backend.

    ``bad_seeds``: requests with these seeds get text that names no speaker (rejected as ``no_lines``).
    ``faults``: consumed one per ``generate_batch`` call, in order; an exception is raised, None answers.
    ``info_fault``: raised by ``info()`` (a server that cannot be reached at first contact).
    ``delay``: seconds each call sleeps before answering (lets a test interrupt a run part way).
    """

    name = "fake"
    supports_grammar = False
    grammar_kind = "regex"

    def __init__(self, benchmark: str = "meld", *, mode: str = "natural", turns: tuple[int, int] = (2, 4),
                 bad_seeds: Iterable[int] = (), faults: Sequence[BaseException | None] = (),
                 info_fault: BaseException | None = None, batch_size: int = 1, delay: float = 0.0,
                 model_id: str = "fake/seeded-model", write: Writer | None = None) -> None:
        self.benchmark = get_benchmark(benchmark)
        self.turns = turns
        self.bad_seeds = set(bad_seeds)
        self.faults = list(faults)
        self.info_fault = info_fault
        self.preferred_batch_size = batch_size
        self.delay = delay
        self.model_id = model_id
        self.write = write or self.dialogue
        self.calls: list[list[GenerationRequest]] = []
        self.in_flight = 0
        self.most_in_flight = 0  # the most calls that were ever awaited at once
        self.closed = False
        self._targets = {
            self._key(build_messages(self.benchmark, mode, turns=turns, target_label=label)): label
            for label in range(self.benchmark.num_labels)
        } if mode == "balanced" else {}

    @staticmethod
    def _key(messages: Sequence[dict[str, str]]) -> tuple[tuple[str, str], ...]:
        return tuple((m["role"], m["content"]) for m in messages)

    def target_of(self, request: GenerationRequest) -> int | None:
        """The emotion the request's prompt asks for (None in natural mode)."""
        return self._targets.get(self._key(request.messages))

    def dialogue(self, request: GenerationRequest, target: int | None) -> str:
        """A valid line-format dialogue drawn from the request's seed, carrying ``target`` when given."""
        rng = random.Random(request.seed)
        first, second = rng.sample(list(self.benchmark.speakers), 2)
        count = rng.randint(*self.turns)
        labels = [rng.randrange(self.benchmark.num_labels) for _ in range(count)]
        if target is not None:
            labels[rng.randrange(count)] = target
        lines = [f"{(first, second)[i % 2]}: line {i} of dialogue {request.seed % 100_000} here ({label})"
                 for i, label in enumerate(labels)]
        return "\n".join(lines)

    async def info(self) -> ModelInfo:
        if self.info_fault is not None:
            raise self.info_fault
        return ModelInfo(backend=self.name, model_id=self.model_id, model_sha="0" * 40, server_version="fake-1")

    async def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        self.calls.append(list(requests))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)  # also yields: calls made concurrently overlap here
        finally:
            self.in_flight -= 1
        if self.faults:
            fault = self.faults.pop(0)
            if fault is not None:
                raise fault
        results = []
        for request in requests:
            text = ("I would rather not write that." if request.seed in self.bad_seeds
                    else self.write(request, self.target_of(request)))
            results.append(GenerationResult(text=text, finish_reason="stop", generated_tokens=len(text.split())))
        return results

    async def aclose(self) -> None:
        self.closed = True

    @property
    def requests(self) -> list[GenerationRequest]:
        return [request for call in self.calls for request in call]
