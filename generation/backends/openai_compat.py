"""The ``openai`` backend: any OpenAI-compatible server (vLLM, SGLang, TGI's Messages API, llama.cpp).

Why each server gets its own dialect: the OpenAI API has no field for a regex, nor for top_k,
repetition_penalty or typical_p, and each server spells its extensions differently. A field a server does not
know is mostly *ignored* (HTTP 200, unconstrained text: vLLM's old ``guided_regex``), so sending one generic
body and hoping would make the run record parameters that never reached the decoder. Instead the server kind is
detected (or given with ``--server``), only fields that kind is documented to honour are sent, and ``applied()``
tells the manifest exactly which parameters and which constraint were applied.

Why the body is posted with httpx and not through ``huggingface_hub``'s ``chat_completion``: given a URL, that
client rewrites OpenAI's ``{"type": "json_schema", ...}`` response format into TGI's ``{"type": "json_object",
"value": schema}``, which vLLM and SGLang read as plain JSON mode, so the schema would not be enforced.

The Hub token never travels: httpx attaches no credentials of its own, and the one header sent is the token of
``ERC_SYNTH_ENDPOINT_TOKEN`` when the user sets it.

Constraints: vLLM and SGLang get the same line regex as TGI and the in-process backend (so every backend writes
``Speaker: utterance (N)`` lines); TGI's Messages API and llama.cpp get the dialogue JSON schema (TGI's
``{"type": "json"}`` shape, OpenAI's ``json_schema`` shape for llama.cpp and unknown servers). The SGLang and
llama.cpp dialects follow those servers' documentation and are not exercised by this project's tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from erc_synth.dataset_scripts.core.errors import ErcSynthError, SettingError

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
from .tgi import as_backend_error, auth_headers

#: Values of ``--server``: the kinds with a dialect; ``openai`` means "only the OpenAI API's own fields".
SERVER_KINDS: tuple[str, ...] = ("vllm", "sglang", "tgi", "llamacpp", "openai")
#: Statuses with which a server refuses a request it cannot parse or validate.
REJECTION_STATUSES = frozenset({400, 422})


class ServerRejectedField(ErcSynthError):
    """The server refuses a request field this backend sends for the run (e.g. its structured-output field)."""


class ServerModelMissing(SettingError):
    """The server does not serve the model the run asks for (a ``SettingError`` of ``model``)."""


def _openai_json_schema(schema: Any) -> dict[str, Any]:
    return {"response_format": {"type": "json_schema",
                                "json_schema": {"name": "dialogue", "schema": schema, "strict": True}}}


@dataclass(frozen=True)
class ServerDialect:
    """How one server kind takes what the OpenAI API cannot say."""

    kind: str
    #: Non-OpenAI sampling parameters the server honours, by ``SamplingParams`` name -> request field name.
    extra_fields: dict[str, str]
    #: Request body fragment enforcing a regex (None: the server takes no regex).
    regex_body: Callable[[str], dict[str, Any]] | None
    #: Request body fragment enforcing a JSON schema.
    json_body: Callable[[Any], dict[str, Any]]
    #: Which grammar this kind is given by default: the line regex where it can take one.
    grammar_kind: Literal["regex", "json_schema"]

    def constraint_body(self, grammar: Grammar) -> dict[str, Any]:
        if grammar.type == "regex":
            if self.regex_body is None:
                raise ValueError(f"a {self.kind} server takes no regex constraint; use a JSON schema")
            return self.regex_body(grammar.value)
        return self.json_body(grammar.value)

    @property
    def constraint_fields(self) -> frozenset[str]:
        """The top-level request fields that carry a constraint to this kind of server."""
        regex = set(self.regex_body("")) if self.regex_body else set()
        return frozenset(regex | set(self.json_body({})))

    def constraint_via(self, grammar_type: str) -> str:
        """How a constraint travels, e.g. ``structured_outputs.regex`` or ``response_format.json_schema``."""
        body = self.constraint_body(Grammar("regex", "") if grammar_type == "regex" else Grammar("json_schema", {}))
        (field, inner), = body.items()
        if isinstance(inner, dict):
            return f"{field}.{inner['type'] if 'type' in inner else next(iter(inner))}"
        return field

    def applied(self) -> AppliedSettings:
        not_applied = tuple(p for p in ("top_k", "typical_p", "repetition_penalty", "min_p")
                            if p not in self.extra_fields)
        constraint = f"{self.grammar_kind} via {self.constraint_via(self.grammar_kind)}"
        return AppliedSettings.declare(not_applied=not_applied, constraint=constraint, server_kind=self.kind)


DIALECTS: dict[str, ServerDialect] = {
    # vLLM 0.32: structured_outputs {regex|json|choice}; top_k, repetition_penalty, min_p, seed as extra fields;
    # no typical_p. The older guided_regex is silently ignored, hence never sent.
    "vllm": ServerDialect("vllm", {"top_k": "top_k", "repetition_penalty": "repetition_penalty", "min_p": "min_p"},
                          lambda regex: {"structured_outputs": {"regex": regex}}, _openai_json_schema, "regex"),
    # SGLang: top-level ``regex``; top_k, repetition_penalty and min_p as extra fields; no typical_p.
    "sglang": ServerDialect("sglang", {"top_k": "top_k", "repetition_penalty": "repetition_penalty",
                                       "min_p": "min_p"},
                            lambda regex: {"regex": regex}, _openai_json_schema, "regex"),
    # TGI's Messages API: its own grammar shape in response_format; no top_k, typical_p or repetition_penalty
    # (its native /generate has them all: use --backend tgi).
    "tgi": ServerDialect("tgi", {}, lambda regex: {"response_format": {"type": "regex", "value": regex}},
                         lambda schema: {"response_format": {"type": "json", "value": schema}}, "json_schema"),
    # llama.cpp's server: top_k, repeat_penalty, typical_p and min_p as extra fields; JSON schema via
    # response_format.
    "llamacpp": ServerDialect("llamacpp", {"top_k": "top_k", "repetition_penalty": "repeat_penalty",
                                           "typical_p": "typical_p", "min_p": "min_p"},
                              None, _openai_json_schema, "json_schema"),
    # Anything else: the OpenAI API's own fields only.
    "openai": ServerDialect("openai", {}, None, _openai_json_schema, "json_schema"),
}


def openai_parameters(params: SamplingParams, seed: int, grammar: Grammar | None,
                      dialect: ServerDialect = DIALECTS["openai"]) -> dict[str, Any]:
    """The request body fields (besides ``model`` and ``messages``) of one request to a ``dialect`` server."""
    body: dict[str, Any] = {
        "seed": seed,
        "max_tokens": params.max_new_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
    }
    if params.stop:
        body["stop"] = list(params.stop)
    for name, field in dialect.extra_fields.items():
        value = getattr(params, name)
        if name in ("top_k", "min_p") and (value is None or value <= 0):
            continue  # "off": the server's default already considers every token
        body[field] = value
    if grammar is not None:
        body.update(dialect.constraint_body(grammar))
    return body


def _error_text(response: Any) -> str:
    """The server's own words from an error body (vLLM/OpenAI ``{"error": {"message"}}``, TGI ``{"error"}``)."""
    try:
        body = response.json()
    except Exception:  # not JSON: the raw text says it
        return (response.text or "").strip().splitlines()[0][:300] if response.text else ""
    if isinstance(body, dict):
        error = body.get("error", body.get("message", body.get("detail", body)))
        if isinstance(error, dict):
            error = error.get("message", error)
        return str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
    return str(body)[:300]


class OpenAICompatBackend:
    """A client of one or more OpenAI-compatible chat completion servers of one kind."""

    name = "openai"
    supports_grammar = True
    preferred_batch_size = 1

    def __init__(self, endpoints: Sequence[str], *, model: str | None = None, token: str | None = None,
                 timeout: float = DEFAULT_REQUEST_TIMEOUT, server: str | None = None) -> None:
        if not endpoints:
            raise SettingError("endpoints", "must hold at least one server URL (the server's base URL) for the "
                                            "openai backend")
        if server is not None and server not in DIALECTS:
            raise SettingError("backend_options.server", f"must be a known server kind, one of: "
                                                         f"{', '.join(SERVER_KINDS)}; got {server!r}")
        self._pool = EndpointPool(endpoints, self._new_client)
        self.endpoints = self._pool.endpoints
        self.model = model
        #: The explicit endpoint token (``ERC_SYNTH_ENDPOINT_TOKEN``); never the Hub token.
        self.token = token
        self.timeout = timeout
        self.requested_server = server
        self.dialect: ServerDialect | None = DIALECTS[server] if server else None
        self._served_model: str | None = None
        self._server_version: str | None = None

    @property
    def grammar_kind(self) -> Literal["regex", "json_schema"]:
        """The line regex for servers that take one (known once ``info`` detected the server)."""
        return (self.dialect or DIALECTS["openai"]).grammar_kind

    @property
    def server_kind(self) -> str | None:
        return self.dialect.kind if self.dialect else None

    def applied(self) -> AppliedSettings:
        if self.dialect is None:
            raise RuntimeError("applied() is known once info() has identified the server")
        return self.dialect.applied()

    def _headers(self) -> dict[str, str]:
        return auth_headers(self.token)

    def _new_client(self, endpoint: str):
        import httpx2

        return httpx2.AsyncClient(timeout=self.timeout, headers=self._headers())

    @staticmethod
    def _server_root(endpoint: str) -> str:
        return endpoint[: -len("/v1")] if endpoint.endswith("/v1") else endpoint

    @classmethod
    def _api_root(cls, endpoint: str) -> str:
        return f"{cls._server_root(endpoint)}/v1"

    async def _get_json(self, url: str, *, required: bool) -> Any:
        """GET ``url`` as JSON; for a probe (``required=False``) any failure is just "not this kind"."""
        import httpx2

        try:
            async with httpx2.AsyncClient(timeout=30, headers=self._headers()) as http:
                response = await http.get(url)
                response.raise_for_status()
                return response.json()
        except Exception as exc:
            if required:
                raise as_backend_error(exc, f"GET {url}") from exc
            return None

    async def _detect(self, endpoint: str, models: list[dict[str, Any]]) -> tuple[str, str | None]:
        """The server kind and version, from ``owned_by`` in ``/v1/models`` or the kind's own endpoints."""
        root = self._server_root(endpoint)
        owners = {str(m.get("owned_by") or "").lower() for m in models}
        version = await self._get_json(f"{root}/version", required=False)
        version_text = version.get("version") if isinstance(version, dict) else None
        for kind in ("vllm", "sglang", "llamacpp"):
            if kind in owners:
                return kind, version_text
        tgi_info = await self._get_json(f"{root}/info", required=False)
        if isinstance(tgi_info, dict) and "max_total_tokens" in tgi_info and "model_id" in tgi_info:
            return "tgi", tgi_info.get("version")
        props = await self._get_json(f"{root}/props", required=False)
        if isinstance(props, dict) and "default_generation_settings" in props:
            return "llamacpp", props.get("build_info")
        return "openai", version_text

    async def _models(self, endpoint: str) -> list[dict[str, Any]]:
        listing = await self._get_json(f"{self._api_root(endpoint)}/models", required=True)
        return list((listing or {}).get("data") or []) if isinstance(listing, dict) else []

    async def info(self) -> ModelInfo:
        served = [await self._models(endpoint) for endpoint in self.endpoints]
        ids = [sorted(m.get("id") for m in models if m.get("id")) for models in served]
        if any(i != ids[0] for i in ids):
            raise ErcSynthError(f"endpoints serve different models, refusing to mix them in one run: {ids}")
        kind, self._server_version = await self._detect(self.endpoints[0], served[0])
        if self.dialect is None:
            self.dialect = DIALECTS[kind]
        who = f"the {self.dialect.kind} server at {self.endpoints[0]}"
        if self.model is not None:
            if ids[0] and self.model not in ids[0]:
                raise ServerModelMissing("model", f"{self.model!r} is not served by {who} "
                                                  f"(it serves: {', '.join(ids[0])})")
            self._served_model = self.model
        elif len(ids[0]) == 1:
            self._served_model = ids[0][0]
        else:
            raise SettingError("model", f"must name one of the {len(ids[0])} models {who} serves "
                                        f"({', '.join(ids[0]) or 'none listed'})")
        entry = next((m for m in served[0] if m.get("id") == self._served_model), {})
        extra: dict[str, Any] = {"served_models": ids[0], "server_kind": self.dialect.kind,
                                 "detected_server_kind": kind}
        if entry.get("max_model_len") is not None:
            extra["max_model_len"] = entry["max_model_len"]
        return ModelInfo(backend=self.name, model_id=self._served_model, model_sha=None,
                         server_version=self._server_version, extra=extra)

    async def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        if self._served_model is None:
            await self.info()
        return list(await asyncio.gather(*(self._generate_one(r) for r in requests)))

    def _body(self, request: GenerationRequest) -> dict[str, Any]:
        assert self.dialect is not None
        return {"model": self._served_model, "messages": list(request.messages),
                **openai_parameters(request.params, request.seed, request.grammar, self.dialect)}

    async def _generate_one(self, request: GenerationRequest) -> GenerationResult:
        endpoint = self._pool.next_endpoint()
        url = f"{self._api_root(endpoint)}/chat/completions"
        body = self._body(request)
        try:
            response = await self._pool.client(endpoint).post(url, json=body)
            if response.status_code in REJECTION_STATUSES and request.grammar is not None:
                await self._blame_constraint(endpoint, url, body, response)
            response.raise_for_status()
            output = response.json()
            choice = output["choices"][0]
        except ErcSynthError:
            raise
        except Exception as exc:
            raise as_backend_error(exc, f"POST {url}") from exc
        usage = output.get("usage") or {}
        return GenerationResult(
            text=(choice.get("message") or {}).get("content") or "",
            finish_reason=choice.get("finish_reason"),
            generated_tokens=usage.get("completion_tokens"),
            endpoint=endpoint,
        )

    async def _blame_constraint(self, endpoint: str, url: str, body: dict[str, Any], response: Any) -> None:
        """Raise ``ServerRejectedField`` when the refused request passes without its structured-output field.

        Why a probe: servers word their validation errors differently, so the culprit is proven, not guessed,
        by sending the same request once more without the constraint.
        """
        assert self.dialect is not None
        constraint_fields = self.dialect.constraint_fields
        # everything else unchanged (a shorter max_tokens could pass where the original length did not)
        probe = {k: v for k, v in body.items() if k not in constraint_fields}
        try:
            passed = (await self._pool.client(endpoint).post(url, json=probe)).status_code < 400
        except Exception:  # the probe itself failed: no proof, the original error stands
            passed = False
        if passed:
            field = " / ".join(sorted(constraint_fields & set(body)))
            raise ServerRejectedField(
                f"the {self.dialect.kind} server at {endpoint} rejected the structured-output field '{field}' "
                f"(HTTP {response.status_code}: {_error_text(response)}); give the server's kind as server (--server "
                f"{'|'.join(SERVER_KINDS)}) or turn the grammar off (--no-grammar)")

    async def aclose(self) -> None:
        await self._pool.aclose()


__all__ = ["DIALECTS", "SERVER_KINDS", "BackendError", "OpenAICompatBackend", "ServerDialect",
           "ServerModelMissing", "ServerRejectedField", "openai_parameters"]
