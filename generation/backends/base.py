"""The one interface every generation backend implements (TGI, OpenAI-compatible, in-process transformers).

Why requests carry chat ``messages`` rather than a rendered prompt: the chat format belongs to the model
(Vicuna v1.1 for Vicuna, the tokenizer's chat template elsewhere) and only the backend knows the model; a
backend that posts raw text (TGI's ``/generate``) renders the messages itself with the configured format.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable


@dataclass(frozen=True)
class SamplingParams:
    """Sampling parameters; the defaults are the reference setup (Vicuna-13B v1.5 on TGI)."""

    temperature: float = 0.7
    top_p: float = 1.0
    top_k: int = 10000
    typical_p: float = 0.995
    repetition_penalty: float = 1.0
    max_new_tokens: int = 512
    stop: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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

    async def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Generate one result per request, in order; raise ``BackendError`` on failure."""
        ...

    async def aclose(self) -> None:
        """Release connections, threads or model memory."""
        ...
