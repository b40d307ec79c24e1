"""The ``tgi`` backend: TGI's native ``/generate`` API, posted with httpx.

Why the native API and not TGI's Messages API: the reference model (Vicuna-13B v1.5) has no chat template, so
the client renders the prompt (``generation.chat_format``) and posts raw text, which also lets it send every
sampling parameter TGI knows (typical_p, top_k, repetition_penalty) and a ``grammar`` (regex by default).

Why httpx and not ``huggingface_hub``'s ``AsyncInferenceClient``: that client attaches the user's Hub token
(``HF_TOKEN`` or the one ``hf auth login`` saved) to every request, whatever server the URL names, and cannot be
told not to (``token=False`` is refused). A generation server must never receive the Hub token; it gets the
token of ``ERC_SYNTH_ENDPOINT_TOKEN`` when the user sets one, and no ``Authorization`` header otherwise.

Several endpoints (replicas of one model) are taken round-robin; ``info`` checks that they all serve the same
model, because a run mixing models would not be reproducible.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from erc_synth.dataset_scripts.core.errors import ErcSynthError, SettingError

from ..chat_format import ChatFormat, resolve_chat_format
from .base import (
    DEFAULT_REQUEST_TIMEOUT,
    AppliedSettings,
    BackendError,
    GenerationRequest,
    GenerationResult,
    Grammar,
    ModelInfo,
    SamplingParams,
)
from .endpoint_pool import EndpointPool

#: HTTP statuses worth retrying: rate limiting, and server-side failures that a later attempt may not meet.
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def _status_of(exc: BaseException) -> int | None:
    """The HTTP status behind an exception, looking through ``raise ... from`` chains."""
    seen = 0
    while exc is not None and seen < 5:
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
        if isinstance(status, int):
            return status
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def _server_message(exc: BaseException) -> str:
    """The error text the server put in its body (TGI: ``{"error": ..., "error_type": ...}``), if any."""
    while exc is not None:
        response = getattr(exc, "response", None)
        if response is not None:
            try:
                body = response.json()
                return f" (server says: {body.get('error') or body})" if isinstance(body, dict) else ""
            except Exception:  # not JSON, or a streamed body: nothing more to say
                return ""
        exc = exc.__cause__
    return ""


def as_backend_error(exc: BaseException, what: str) -> BackendError:
    """Classify a client exception: transport faults, timeouts, 429 and 5xx are retryable, the rest are not.

    Shared by the ``tgi`` and ``openai`` backends and the ``llm`` judge's servers, which all post with httpx.
    """
    import httpx2

    if isinstance(exc, BackendError):
        return exc
    status = _status_of(exc)
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    said = _server_message(exc)
    status_text = f" HTTP {status}" if status is not None else ""
    message = f"{what}:{status_text} {type(exc).__name__}: {first_line}{'' if said[15:-1] in first_line else said}"
    if isinstance(exc, httpx2.TransportError | asyncio.TimeoutError):
        return BackendError(message, retryable=True, status=status)
    if status is not None:
        return BackendError(message, retryable=status in RETRYABLE_STATUSES, status=status)
    return BackendError(message, retryable=False)


def auth_headers(token: str | None) -> dict[str, str]:
    """The headers that carry ``token`` (the user's explicit endpoint token), none without one."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def tgi_parameters(params: SamplingParams, seed: int, grammar: Grammar | None) -> dict[str, Any]:
    """Keyword arguments of ``text_generation`` for one request, within TGI's validation rules.

    TGI rejects ``top_p`` and ``typical_p`` outside the open interval (0, 1) and ``temperature`` <= 0, so a
    value meaning "off" (1.0, or temperature 0 for greedy decoding) is expressed by not sending it.
    """
    kwargs: dict[str, Any] = {
        "details": True,
        "seed": seed,
        "max_new_tokens": params.max_new_tokens,
        "repetition_penalty": params.repetition_penalty,
        "stop": list(params.stop) or None,
        "do_sample": params.temperature > 0,
    }
    if params.temperature > 0:
        kwargs["temperature"] = params.temperature
        if params.top_k and params.top_k > 0:
            kwargs["top_k"] = params.top_k
        if 0 < params.top_p < 1:
            kwargs["top_p"] = params.top_p
        if 0 < params.typical_p < 1:
            kwargs["typical_p"] = params.typical_p
    if grammar is not None:
        kwargs["grammar"] = {"type": "regex" if grammar.type == "regex" else "json", "value": grammar.value}
    return kwargs


class TgiBackend:
    """A client of one or more TGI servers (or anything speaking TGI's ``/generate`` protocol)."""

    name = "tgi"
    supports_grammar = True
    grammar_kind = "regex"
    preferred_batch_size = 1

    def __init__(self, endpoints: Sequence[str], *, chat_format: str = "auto", model: str | None = None,
                 timeout: float = DEFAULT_REQUEST_TIMEOUT, token: str | None = None) -> None:
        if not endpoints:
            raise SettingError("endpoints", "must hold at least one server URL for the tgi backend")
        #: The explicit endpoint token (``ERC_SYNTH_ENDPOINT_TOKEN``); never the Hub token.
        self.token = token
        self._pool = EndpointPool(endpoints, self._new_client)
        self.endpoints = self._pool.endpoints
        self.chat_format_name = chat_format
        self.model = model
        self.timeout = timeout
        self._format: ChatFormat | None = None
        self._info: ModelInfo | None = None

    def _new_client(self, endpoint: str):
        import httpx2

        return httpx2.AsyncClient(timeout=self.timeout, headers=auth_headers(self.token))

    async def _server_info(self, endpoint: str) -> dict[str, Any]:
        import httpx2

        try:
            async with httpx2.AsyncClient(timeout=30, headers=auth_headers(self.token)) as http:
                response = await http.get(f"{endpoint}/info")
                response.raise_for_status()
                return response.json()
        except Exception as exc:  # any failure to reach /info is a fault of that endpoint
            raise as_backend_error(exc, f"GET {endpoint}/info") from exc

    async def info(self) -> ModelInfo:
        infos = [await self._server_info(endpoint) for endpoint in self.endpoints]
        models = {(i.get("model_id"), i.get("model_sha")) for i in infos}
        if len(models) > 1:
            listing = ", ".join(f"{e} serves {i.get('model_id')}@{i.get('model_sha')}"
                                for e, i in zip(self.endpoints, infos, strict=True))
            raise ErcSynthError(f"endpoints serve different models, refusing to mix them in one run: {listing}")
        first = infos[0]
        model_id = first.get("model_id")
        if self.model and model_id and self.model != model_id:
            raise SettingError("model", f"{self.model!r} was requested but {self.endpoints[0]} serves {model_id!r}")
        self._format = self._resolve_format(model_id)
        self._info = ModelInfo(
            backend=self.name, model_id=model_id, model_sha=first.get("model_sha"),
            server_version=first.get("version"),
            extra={"max_total_tokens": first.get("max_total_tokens"), "chat_format": self._format.name},
        )
        return self._info

    def applied(self) -> AppliedSettings:
        """TGI's ``/generate`` takes every sampling parameter but min_p, and the line regex as its ``grammar``."""
        return AppliedSettings.declare(not_applied=("min_p",), constraint="regex via TGI grammar", server_kind="tgi")

    def _resolve_format(self, model_id: str | None) -> ChatFormat:
        if self.chat_format_name != "auto":
            return resolve_chat_format(self.chat_format_name, model_id)
        if model_id and "vicuna" in model_id.lower():
            return resolve_chat_format("vicuna", model_id)
        tokenizer = self._local_tokenizer(self.model or model_id)
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise SettingError(
                "chat_format", f"auto cannot tell the chat format of {model_id!r} (not a Vicuna model and no local "
                "tokenizer with a chat template); choose vicuna, chatml, template or raw"
            )
        return resolve_chat_format("template", model_id, tokenizer)

    @staticmethod
    def _local_tokenizer(model: str | None):
        """The model's tokenizer when it is available without a download (a local folder or the HF cache)."""
        if not model:
            return None
        try:
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(model, local_files_only=True)
        except Exception:  # not cached locally: the caller asks the user for --chat-format
            return None

    async def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        if self._format is None:
            await self.info()
        return list(await asyncio.gather(*(self._generate_one(r) for r in requests)))

    async def _generate_one(self, request: GenerationRequest) -> GenerationResult:
        assert self._format is not None
        endpoint = self._pool.next_endpoint()
        prompt = self._format.render(request.messages)
        parameters = {k: v for k, v in tgi_parameters(request.params, request.seed, request.grammar).items()
                      if v is not None}
        try:
            response = await self._pool.client(endpoint).post(f"{endpoint}/generate",
                                                              json={"inputs": prompt, "parameters": parameters})
            response.raise_for_status()
            output = response.json()
            if isinstance(output, list):  # the compat route's shape, which some proxies return
                output = output[0]
            text = output["generated_text"]
            if not isinstance(text, str):
                raise TypeError(f"generated_text is {type(text).__name__}, not a string")
        except Exception as exc:
            raise as_backend_error(exc, f"POST {endpoint}/generate") from exc
        details = output.get("details") if isinstance(output.get("details"), dict) else {}
        return GenerationResult(
            text=text,
            finish_reason=str(details["finish_reason"]) if details.get("finish_reason") else None,
            generated_tokens=details.get("generated_tokens"),
            endpoint=endpoint,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


__all__ = ["BackendError", "TgiBackend", "auth_headers", "tgi_parameters"]
