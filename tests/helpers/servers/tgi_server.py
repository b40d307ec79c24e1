"""A TGI- and OpenAI-protocol test server: a real HTTP process (FastAPI + uvicorn) over a real tiny model.

Routes follow the wire formats of TGI 3.x's router (``/generate``, ``/generate_stream`` as server-sent events,
``/`` as the compat route the ``huggingface_hub`` client posts to when given a URL, ``/info``, ``/health``) and
of OpenAI's API as TGI serves it (``/v1/chat/completions``, ``/v1/models``), including TGI's validation rules
(422 with ``error_type``) and its overload answer (429, ``error_type: overloaded``).

Generation is gen-local's ``TransformersBackend`` over ``tests.servers.tiny_lm`` (seeded per request, grammar
enforced by xgrammar). Concurrent requests are gathered into one batch, like TGI's continuous batching, so that
concurrency pays off as it does against a real server.

Fault injection (``--fault-rate R --faults reset,delay,500,429 --fault-seed S``): each generation request draws
from a RNG of its own seed; with probability R it meets one of the faults, chosen uniformly. ``reset`` aborts
the TCP connection (SO_LINGER 0: the client sees a reset) from inside the HTTP protocol before any answer;
``delay`` holds the request ``--fault-delay-s`` seconds (past a short client timeout); ``500`` and ``429``
answer with TGI's error bodies. A refused connection is produced by the tests themselves, by stopping the
server process and starting it again on the same port.

``--reject-field NAME`` (repeatable) refuses chat requests carrying that body field with OpenAI's HTTP 400, as a
server that does not know a structured-output field does.

``--log-headers PATH`` appends one JSON line per request (method, path, the ``Authorization`` header or null),
so that a test can prove which credentials a client sent.

``--instant`` answers every request at once with a canned dialogue valid for ``--instant-benchmark`` (no
model), so that a benchmark measures the client and engine alone.

Run: ``python -m servers.tgi_server --model-dir DIR --port 8080`` from ``tests/`` (or with tests on sys.path).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

SERVER_VERSION = "3.3.7-erc-synth-test"
GENERATION_PATHS = (b"POST /generate ", b"POST /generate_stream ", b"POST / ", b"POST /v1/chat/completions ")
FAULT_KINDS = ("reset", "delay", "500", "429")


@dataclass
class FaultInjector:
    """Decides, per generation request, whether it meets a fault (thread-safe; its own seeded RNG)."""

    rate: float = 0.0
    kinds: tuple[str, ...] = ()
    seed: int = 0
    delay_s: float = 5.0
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    def draw(self) -> str | None:
        if not self.kinds or self.rate <= 0:
            return None
        with self._lock:
            if self._rng.random() >= self.rate:
                return None
            kind = self._rng.choice(self.kinds)
            self.counts[kind] = self.counts.get(kind, 0) + 1
            return kind


FAULTS = FaultInjector()
#: Faults drawn by the protocol for the request now on a connection, keyed by the client's (host, port).
PENDING_FAULTS: dict[tuple[str, int], str] = {}


def _faulty_protocol_class():
    """uvicorn's h11 protocol, extended to reset the connection of requests that drew the ``reset`` fault."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class FaultyH11Protocol(H11Protocol):
        def data_received(self, data: bytes) -> None:
            if FAULTS.kinds and data.startswith(GENERATION_PATHS):
                # Drawn here, once per request, because only the protocol can abort the TCP connection; the
                # app answers the other kinds, finding them under the connection's peer address.
                fault = FAULTS.draw()
                if fault == "reset":
                    sock = self.transport.get_extra_info("socket")
                    if sock is not None:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.transport.abort()
                    return
                if fault is not None:
                    PENDING_FAULTS[tuple(self.transport.get_extra_info("peername")[:2])] = fault
            super().data_received(data)

    return FaultyH11Protocol


def canned_dialogue(benchmark_name: str, as_json: bool) -> str:
    """A valid dialogue of the benchmark using every label once (so any balanced target is present)."""
    from erc_synth.dataset_scripts.core.registry import get_benchmark

    benchmark = get_benchmark(benchmark_name)
    low, high = benchmark.turns
    count = min(max(low, benchmark.num_labels), high)
    turns = [(benchmark.speakers[i % 2], f"Line number {i} of this canned scene, said plainly.",
              i % benchmark.num_labels) for i in range(count)]
    if as_json:
        return json.dumps({"turns": [{"speaker": s, "utterance": u, "emotion": e} for s, u, e in turns]})
    return "\n".join(f"{s}: {u} ({e})" for s, u, e in turns)


class ValidationFailure(Exception):
    """A request TGI's router would refuse with 422."""


def _check_parameters(p: dict[str, Any]) -> None:
    """TGI's router validation (``validation.rs``), for the parameters the clients send."""
    temperature = p.get("temperature")
    if temperature is not None and temperature <= 0:
        raise ValidationFailure("`temperature` must be strictly positive")
    for name in ("top_p", "typical_p"):
        value = p.get(name)
        if value is not None and not 0 < value < 1:
            raise ValidationFailure(f"`{name}` must be > 0.0 and < 1.0")
    if p.get("top_k") is not None and p["top_k"] <= 0:
        raise ValidationFailure("`top_k` must be strictly positive")
    if p.get("repetition_penalty") is not None and p["repetition_penalty"] <= 0:
        raise ValidationFailure("`repetition_penalty` must be strictly positive")
    seed = p.get("seed")
    if seed is not None and not 0 <= int(seed) < 2**64:
        raise ValidationFailure("`seed` must be a u64")
    if (p.get("best_of") or 1) > 1 and seed is not None:
        raise ValidationFailure("`seed` must not be set when `best_of` > 1")


def _grammar(spec: dict[str, Any] | None):
    from erc_synth.generation.backends.base import Grammar

    if not spec:
        return None
    kind, value = spec.get("type"), spec.get("value")
    if kind == "regex" and isinstance(value, str):
        return Grammar("regex", value)
    if kind in ("json", "json_schema"):
        schema = json.loads(value) if isinstance(value, str) else value
        if not isinstance(schema, dict) or "properties" not in schema:
            raise ValidationFailure("Grammar must have a 'properties' field")
        return Grammar("json_schema", schema)
    raise ValidationFailure(f"unsupported grammar type {kind!r}")


def _sampling(p: dict[str, Any]):
    from erc_synth.generation.backends.base import SamplingParams

    sampling = p.get("do_sample") or any(p.get(k) is not None for k in ("temperature", "top_k", "top_p", "typical_p"))
    return SamplingParams(
        temperature=float(p.get("temperature") or 1.0) if sampling else 0.0,
        top_p=float(p.get("top_p") or 1.0),
        top_k=int(p.get("top_k") or 0),
        typical_p=float(p.get("typical_p") or 1.0),
        repetition_penalty=float(p.get("repetition_penalty") or 1.0),
        max_new_tokens=int(p.get("max_new_tokens") or 100),
        stop=tuple(p.get("stop") or ()),
    )


class Batcher:
    """Gathers concurrent requests into batches for the model, one batch at a time (continuous-batching-lite)."""

    def __init__(self, backend: Any, max_batch: int) -> None:
        self.backend = backend
        self.max_batch = max_batch
        self.queue: asyncio.Queue[tuple[tuple, asyncio.Future]] = asyncio.Queue()
        self.task: asyncio.Task | None = None

    async def submit(self, prompt: str, seed: int, params: Any, grammar: Any, add_special_tokens: bool):
        if self.task is None:
            self.task = asyncio.create_task(self._loop())
        future = asyncio.get_running_loop().create_future()
        await self.queue.put(((prompt, seed, params, grammar, add_special_tokens), future))
        return await future

    async def _loop(self) -> None:
        while True:
            jobs = [await self.queue.get()]
            while len(jobs) < self.max_batch and not self.queue.empty():
                jobs.append(self.queue.get_nowait())
            groups: dict[bool, list] = {}
            for job in jobs:
                groups.setdefault(job[0][4], []).append(job)
            for add_special, group in groups.items():
                try:
                    results = await asyncio.to_thread(
                        self.backend.generate_prompts,
                        [j[0][0] for j in group], [j[0][1] for j in group], [j[0][2] for j in group],
                        [j[0][3] for j in group], add_special_tokens=add_special)
                except Exception as exc:
                    for _, future in group:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(group, results, strict=True):
                    if not future.done():
                        future.set_result(result)


def create_app(args: argparse.Namespace) -> FastAPI:
    app = FastAPI(title="erc-synth TGI test server")
    state: dict[str, Any] = {}
    if args.instant:
        model_id, model_sha, tokenizer = "erc-synth/instant", "0" * 40, None
    else:
        from erc_synth.generation.backends.transformers_backend import TransformersBackend

        backend = TransformersBackend(args.model_dir, device="cpu", batch_size=args.max_batch, chat_format="template",
                                      model_id=args.model_id)
        state["batcher"] = Batcher(backend, args.max_batch)
        state["backend"] = backend
        model_id, model_sha, tokenizer = args.model_id, backend.model_sha(), backend.tokenizer

    if args.log_headers:
        @app.middleware("http")
        async def log_headers(request: Request, call_next):
            entry = {"method": request.method, "path": request.url.path,
                     "authorization": request.headers.get("authorization")}
            with open(args.log_headers, "a", encoding="utf-8") as log:
                log.write(json.dumps(entry) + "\n")
            return await call_next(request)

    def error(status: int, message: str, error_type: str) -> JSONResponse:
        return JSONResponse({"error": message, "error_type": error_type}, status_code=status)

    async def app_fault(request: Request) -> JSONResponse | None:
        """The fault the protocol drew for this request, if any (resets never reach the app)."""
        if not FAULTS.kinds or request.client is None:
            return None
        fault = PENDING_FAULTS.pop((request.client.host, request.client.port), None)
        if fault == "delay":
            await asyncio.sleep(FAULTS.delay_s)
        elif fault == "500":
            return error(500, "injected fault: internal error", "generation")
        elif fault == "429":
            return error(429, "Model is overloaded", "overloaded")
        return None

    async def run(prompt: str, params: dict[str, Any], as_json: bool = False, add_special: bool = True):
        _check_parameters(params)
        grammar = _grammar(params.get("grammar"))
        if args.instant:
            if args.instant_latency_s:
                await asyncio.sleep(args.instant_latency_s)
            text = canned_dialogue(args.instant_benchmark, as_json or (grammar is not None
                                                                       and grammar.type == "json_schema"))
            return text, "eos_token", len(text.split())
        seed = int(params["seed"]) if params.get("seed") is not None else random.getrandbits(63)
        sampling = _sampling(params)
        result = await state["batcher"].submit(prompt, seed, sampling, grammar, add_special)
        return result.text, result.finish_reason or "length", result.generated_tokens or 0

    @app.get("/health")
    async def health() -> Response:
        return Response(status_code=200)

    @app.get("/faults")
    async def faults() -> dict[str, int]:
        """Faults injected so far, by kind (for tests to check that each kind really happened)."""
        return dict(FAULTS.counts)

    @app.get("/info")
    async def info() -> dict[str, Any]:
        return {
            "model_id": model_id, "model_sha": model_sha, "model_dtype": "torch.float32",
            "model_device_type": "cpu", "model_pipeline_tag": "text-generation", "max_concurrent_requests": 128,
            "max_best_of": 2, "max_stop_sequences": 4, "max_input_tokens": 1024, "max_total_tokens": 2048,
            "validation_workers": 2, "max_client_batch_size": 4, "router": "text-generation-router",
            "version": SERVER_VERSION, "sha": None, "docker_label": None,
        }

    async def run_generate(request: Request) -> Response | tuple[dict[str, Any], str, str, int]:
        """A TGI ``/generate``-style request run: its injected fault or 422, else ``(params, text, finish, tokens)``.

        Shared by the plain and the streamed reply, which differ only in how they send the result.
        """
        if (faulted := await app_fault(request)) is not None:
            return faulted
        body = await request.json()
        params = dict(body.get("parameters") or {})
        try:
            text, finish, tokens = await run(body["inputs"], params)
        except ValidationFailure as exc:
            return error(422, str(exc), "validation")
        return params, text, finish, tokens

    async def generate_response(request: Request, as_list: bool) -> Response:
        outcome = await run_generate(request)
        if isinstance(outcome, Response):
            return outcome
        params, text, finish, tokens = outcome
        payload: dict[str, Any] = {"generated_text": text}
        if params.get("details"):
            payload["details"] = {"finish_reason": finish, "generated_tokens": tokens, "seed": params.get("seed"),
                                  "prefill": [], "tokens": []}
        return JSONResponse([payload] if as_list else payload)

    async def stream_response(request: Request) -> Response:
        outcome = await run_generate(request)
        if isinstance(outcome, Response):
            return outcome
        params, text, finish, tokens = outcome
        pieces = _token_pieces(tokenizer, text)

        async def events():
            for i, piece in enumerate(pieces):
                last = i == len(pieces) - 1
                event = {
                    "index": i + 1,
                    "token": {"id": piece[0], "text": piece[1], "logprob": 0.0, "special": False},
                    "generated_text": text if last else None,
                    "details": {"finish_reason": finish, "generated_tokens": tokens, "seed": params.get("seed")}
                    if last else None,
                }
                yield f"data:{json.dumps(event)}\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.post("/generate")
    async def generate(request: Request) -> Response:
        return await generate_response(request, as_list=False)

    @app.post("/generate_stream")
    async def generate_stream(request: Request) -> Response:
        return await stream_response(request)

    @app.post("/")
    async def compat(request: Request) -> Response:
        body = await request.json()
        if body.get("stream"):
            return await stream_response(request)
        return await generate_response(request, as_list=True)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": model_id, "object": "model", "created": 0,
                                            "owned_by": "erc-synth-tests"}]}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        if (faulted := await app_fault(request)) is not None:
            return faulted
        body = await request.json()
        refused = [name for name in args.reject_field if name in body]
        if refused:  # what OpenAI's API answers for a field it does not know
            return JSONResponse({"error": {"message": f"Unrecognized request argument supplied: {refused[0]}",
                                           "type": "invalid_request_error", "param": None, "code": None}},
                                status_code=400)
        fmt = body.get("response_format") or None
        grammar = None
        if fmt and fmt.get("type") == "json_schema":  # OpenAI's shape
            grammar = {"type": "json", "value": (fmt.get("json_schema") or {}).get("schema")}
        elif fmt and fmt.get("type") in ("json", "json_object", "regex") and fmt.get("value") is not None:
            # TGI's shape (``json_object`` is its alias of ``json``); huggingface_hub's chat_completion turns
            # OpenAI's json_schema into it when the model is a URL
            grammar = {"type": "regex" if fmt["type"] == "regex" else "json", "value": fmt["value"]}
        params = {"seed": body.get("seed"), "temperature": body.get("temperature"), "top_p": body.get("top_p"),
                  "max_new_tokens": body.get("max_tokens"), "stop": body.get("stop"), "grammar": grammar}
        if params["top_p"] is not None and params["top_p"] >= 1:
            params["top_p"] = None  # TGI's Messages API maps top_p=1 to "off"
        if params["temperature"] is not None and params["temperature"] <= 0:
            params["temperature"] = None
        chat_format = None if args.instant else state["backend"].chat_format
        prompt = chat_format.render(body["messages"]) if chat_format else ""
        try:
            text, finish, tokens = await run(prompt, params, as_json=grammar is not None,
                                             add_special=chat_format.add_special_tokens if chat_format else True)
        except ValidationFailure as exc:
            return error(422, str(exc), "validation")
        return JSONResponse({
            "id": "", "object": "chat.completion", "created": int(time.time()), "model": model_id,
            "system_fingerprint": SERVER_VERSION,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None,
                         "finish_reason": "length" if finish == "length" else "stop"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": tokens, "total_tokens": tokens},
        })

    return app


def _token_pieces(tokenizer: Any, text: str) -> list[tuple[int, str]]:
    if tokenizer is None:
        return [(i, word + " ") for i, word in enumerate(text.split(" "))] or [(0, "")]
    ids = tokenizer.encode(text, add_special_tokens=False)
    pieces, previous = [], ""
    for end in range(1, len(ids) + 1):
        decoded = tokenizer.decode(ids[:end])
        pieces.append((ids[end - 1], decoded[len(previous):]))
        previous = decoded
    return pieces or [(0, "")]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", help="folder of the tiny model (built with build_tiny_lm if missing)")
    parser.add_argument("--model-id", default="erc-synth/tiny-lm")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--instant", action="store_true", help="answer a canned dialogue at once, no model")
    parser.add_argument("--instant-benchmark", default="meld")
    parser.add_argument("--instant-latency-s", type=float, default=0.0, help="--instant: seconds per answer")
    parser.add_argument("--reject-field", action="append", default=[], metavar="NAME",
                        help="answer /v1/chat/completions requests carrying this body field with OpenAI's 400")
    parser.add_argument("--log-headers", metavar="PATH", help="append each request's Authorization header here")
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--faults", default=",".join(FAULT_KINDS), help=f"comma list from {FAULT_KINDS}")
    parser.add_argument("--fault-seed", type=int, default=0)
    parser.add_argument("--fault-delay-s", type=float, default=5.0)
    args = parser.parse_args(argv)
    if not args.instant and not args.model_dir:
        parser.error("--model-dir is required unless --instant")
    return args


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    args = parse_args(argv)
    kinds = tuple(k for k in args.faults.split(",") if k) if args.fault_rate > 0 else ()
    unknown = set(kinds) - set(FAULT_KINDS)
    if unknown:
        raise SystemExit(f"unknown fault kinds {sorted(unknown)}; choose from {FAULT_KINDS}")
    global FAULTS
    FAULTS = FaultInjector(rate=args.fault_rate, kinds=kinds, seed=args.fault_seed, delay_s=args.fault_delay_s)
    if args.model_dir and not args.instant:
        from helpers.servers.tiny_lm import build_tiny_lm

        build_tiny_lm(args.model_dir)
    config = uvicorn.Config(create_app(args), host=args.host, port=args.port, http=_faulty_protocol_class(),
                            log_level="warning", access_log=False, timeout_keep_alive=30)
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
