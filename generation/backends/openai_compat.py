"""The ``openai`` backend: any OpenAI-compatible server (vLLM, llama.cpp, SGLang, TGI's Messages API).

Requests go through ``huggingface_hub.AsyncInferenceClient.chat_completion`` with the run's seed, so the server
applies the model's own chat template. Constrained decoding uses ``response_format`` with a JSON schema
(the one grammar type these servers share), so this backend's dialogues arrive as JSON, which the parser reads
like the line format. Caveat: given a URL, huggingface_hub 2.x rewrites OpenAI's ``{"type": "json_schema",
"json_schema": {"schema": ...}}`` into TGI's ``{"type": "json_object", "value": schema}``. TGI enforces that
schema; servers that read ``json_object`` as plain JSON mode (vLLM, SGLang) then only guarantee JSON syntax,
and the parser still rejects wrong speakers, labels or turn counts, each counted with its reason.
Parameters outside the OpenAI API (top_k, typical_p, repetition_penalty) are not sent:
servers differ in whether they accept them, and a run should not depend on which one silently ignores what.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from erc_synth.dataset_scripts.errors import ErcSynthError

from .base import GenerationRequest, GenerationResult, Grammar, ModelInfo, SamplingParams
from .endpoint_pool import EndpointPool
from .tgi import as_backend_error


def openai_parameters(params: SamplingParams, seed: int, grammar: Grammar | None) -> dict[str, Any]:
    """Keyword arguments of ``chat_completion`` for one request."""
    kwargs: dict[str, Any] = {
        "seed": seed,
        "max_tokens": params.max_new_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "stop": list(params.stop) or None,
    }
    if grammar is not None:
        if grammar.type != "json_schema":
            raise ValueError("OpenAI-compatible servers take a JSON schema grammar, not a regex")
        kwargs["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "dialogue", "schema": grammar.value, "strict": True},
        }
    return kwargs


class OpenAICompatBackend:
    """A client of one or more OpenAI-compatible chat completion servers."""

    name = "openai"
    supports_grammar = True
    grammar_kind = "json_schema"
    preferred_batch_size = 1

    def __init__(self, endpoints: Sequence[str], *, model: str | None = None, api_key: str | None = None,
                 timeout: float = 600.0) -> None:
        if not endpoints:
            raise ErcSynthError("the openai backend needs at least one --endpoint URL (the server's base URL)")
        self._pool = EndpointPool(endpoints, self._new_client)
        self.endpoints = self._pool.endpoints
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self._served_model: str | None = None

    def _new_client(self, endpoint: str):
        from huggingface_hub import AsyncInferenceClient

        return AsyncInferenceClient(base_url=endpoint, api_key=self.api_key, timeout=self.timeout)

    @staticmethod
    def _api_root(endpoint: str) -> str:
        return endpoint if endpoint.endswith("/v1") else f"{endpoint}/v1"

    async def _models(self, endpoint: str) -> list[dict[str, Any]]:
        import httpx2

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            async with httpx2.AsyncClient(timeout=30, headers=headers) as http:
                response = await http.get(f"{self._api_root(endpoint)}/models")
                response.raise_for_status()
                return list(response.json().get("data") or [])
        except Exception as exc:
            raise as_backend_error(exc, f"GET {self._api_root(endpoint)}/models") from exc

    async def info(self) -> ModelInfo:
        served = [await self._models(endpoint) for endpoint in self.endpoints]
        ids = [sorted(m.get("id") for m in models if m.get("id")) for models in served]
        if any(i != ids[0] for i in ids):
            raise ErcSynthError(f"endpoints serve different models, refusing to mix them in one run: {ids}")
        if self.model is not None:
            if ids[0] and self.model not in ids[0]:
                raise ErcSynthError(f"--model {self.model!r} is not served by {self.endpoints[0]} "
                                    f"(it serves: {', '.join(ids[0])})")
            self._served_model = self.model
        elif len(ids[0]) == 1:
            self._served_model = ids[0][0]
        else:
            raise ErcSynthError(f"{self.endpoints[0]} serves {len(ids[0])} models ({', '.join(ids[0])}); "
                                "choose one with --model")
        return ModelInfo(backend=self.name, model_id=self._served_model, model_sha=None, server_version=None,
                         extra={"served_models": ids[0]})

    async def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        if self._served_model is None:
            await self.info()
        return list(await asyncio.gather(*(self._generate_one(r) for r in requests)))

    async def _generate_one(self, request: GenerationRequest) -> GenerationResult:
        endpoint = self._pool.next_endpoint()
        try:
            output = await self._pool.client(endpoint).chat_completion(
                list(request.messages), model=self._served_model,
                **openai_parameters(request.params, request.seed, request.grammar))
        except Exception as exc:
            raise as_backend_error(exc, f"POST {endpoint}/v1/chat/completions") from exc
        choice = output.choices[0]
        usage = getattr(output, "usage", None)
        return GenerationResult(
            text=choice.message.content or "",
            finish_reason=choice.finish_reason,
            generated_tokens=getattr(usage, "completion_tokens", None),
            endpoint=endpoint,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()
