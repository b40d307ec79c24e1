"""The one interface every generation backend implements (TGI, OpenAI-compatible, in-process transformers).

Why requests carry chat ``messages`` rather than a rendered prompt: the chat format belongs to the model
(Vicuna v1.1 for Vicuna, the tokenizer's chat template elsewhere) and only the backend knows the model; a
backend that posts raw text (TGI's ``/generate``) renders the messages itself with the configured format.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

#: Seconds one HTTP request may take: the one default of ``GenerationConfig.request_timeout`` and the HTTP backends.
DEFAULT_REQUEST_TIMEOUT = 600.0

@dataclass(frozen=True)
class SamplingParams:
    """Sampling parameters; the defaults are the reference setup (Vicuna-13B v1.5 on TGI)."""

    temperature: float = 0.7
    top_p: float = 1.0
    top_k: int = 10000
    typical_p: float = 0.995
    repetition_penalty: float = 1.0
    #: Drop tokens whose probability is below ``min_p`` times the most likely token's (Nguyen et al. 2024,
    #: arXiv 2407.01082); 0 turns it off. Not every backend has it: ``applied()`` says which.
    min_p: float = 0.0
    max_new_tokens: int = 512
    stop: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The manifest's ``sampling``; ``min_p`` only when on, so RUN_DIRs made before it existed still resume."""
        data = asdict(self)
        if not self.min_p:
            del data["min_p"]
        return data


@dataclass(frozen=True)
class Grammar:
    """A decoding constraint: a regular expression or a JSON schema (TGI's two grammar types)."""

    type: Literal["regex", "json_schema"]
    value: str | dict[str, Any]


@dataclass(frozen=True)
class GenerationRequest:
    """One dialogue to generate: chat messages, a seed derived from (run seed, index, attempt), parameters."""

    messages: tuple[dict[str, str], ...]
    seed: int
    params: SamplingParams = field(default_factory=SamplingParams)
    grammar: Grammar | None = None


@dataclass(frozen=True)
class GenerationResult:
    """What the model wrote, with the facts needed to tell truncation from a clean stop."""

    text: str
    finish_reason: str | None = None
    generated_tokens: int | None = None
    endpoint: str | None = None


@dataclass(frozen=True)
class ModelInfo:
    """What a run records about the model that wrote its dialogues."""

    backend: str
    model_id: str | None
    model_sha: str | None = None
    server_version: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


#: The sampling parameters a backend declares as applied or not (``SamplingParams`` fields, plus the seed).
DECLARED_PARAMETERS: tuple[str, ...] = (
    "seed", "temperature", "top_p", "top_k", "typical_p", "repetition_penalty", "min_p", "max_new_tokens", "stop",
)


@dataclass(frozen=True)
class AppliedSettings:
    """What a backend really applies of what a run requests, for the manifest and the card.

    Why: a run records its requested sampling parameters; a server that silently drops one (vLLM has no
    typical_p) would otherwise make the record claim what never happened. ``sampling`` maps every name of
    ``DECLARED_PARAMETERS`` to whether the decoder honours it; ``constraint`` says how the grammar reaches the
    decoder (e.g. ``"regex via structured_outputs"``), or None when the backend does not enforce one.
    """

    sampling: dict[str, bool]
    constraint: str | None
    server_kind: str | None = None

    def __post_init__(self) -> None:
        if set(self.sampling) != set(DECLARED_PARAMETERS):
            raise ValueError(f"declare exactly {DECLARED_PARAMETERS}, got {sorted(self.sampling)}")

    @classmethod
    def declare(cls, *, not_applied: tuple[str, ...] = (), constraint: str | None,
                server_kind: str | None = None) -> AppliedSettings:
        """Every declared parameter applied except ``not_applied``."""
        unknown = set(not_applied) - set(DECLARED_PARAMETERS)
        if unknown:
            raise ValueError(f"unknown parameters {sorted(unknown)}")
        return cls({name: name not in not_applied for name in DECLARED_PARAMETERS}, constraint, server_kind)

    def record(self, grammar_requested: bool) -> dict[str, Any]:
        """The manifest's ``applied`` block: the constraint only when the run asked for one."""
        block: dict[str, Any] = {"sampling": dict(self.sampling),
                                 "constraint": self.constraint if grammar_requested else None}
        if self.server_kind is not None:
            block["server_kind"] = self.server_kind
        return block


def applied_record(backend: Any, grammar_requested: bool) -> dict[str, Any] | None:
    """The manifest's ``applied`` block for ``backend``; None for a backend that declares nothing (a test
    double), so a record never claims what a backend did not say it applies."""
    declare = getattr(backend, "applied", None)
    return declare().record(grammar_requested) if callable(declare) else None


class BackendError(Exception):
    """A backend failure. ``retryable`` faults (connection refused, timeouts, 5xx, 429) are retried."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status


@runtime_checkable
class Backend(Protocol):
    """A source of generated text. Implementations must be safe to call concurrently from one event loop."""

    name: str
    #: Whether ``GenerationRequest.grammar`` is enforced (otherwise requests must not carry one).
    supports_grammar: bool
    #: Which grammar shape the backend enforces: the line ``regex`` (TGI, xgrammar) or a ``json_schema``.
    grammar_kind: Literal["regex", "json_schema"]
    #: How many requests the backend batches itself per call of ``generate_batch`` (1 for servers).
    preferred_batch_size: int

    async def info(self) -> ModelInfo:
        """Describe the model (id, sha, server version)."""
        ...

    def applied(self) -> AppliedSettings:
        """Which sampling parameters and which constraint reach the decoder (valid once ``info`` returned)."""
        ...

    async def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Generate one result per request, in order; raise ``BackendError`` on failure."""
        ...

    async def aclose(self) -> None:
        """Release connections, threads or model memory."""
        ...
