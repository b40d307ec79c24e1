"""The ``vllm`` backend: vLLM's in-process engine (``vllm.LLM``), for GPU users who want no server.

Why in-process vLLM next to the ``openai`` backend on a vLLM server: one command, no port, no second process to
start and stop, and the same engine: continuous batching inside each ``generate_batch`` call (a finished
sequence's slot goes to the next waiting one), a per-request ``SamplingParams(seed=...)`` and structured
outputs with the same line regex that TGI, a vLLM server and the transformers backend get.

Why the request is built like the server builds it: a vLLM server fills the parameters a request leaves unset
from the model's ``generation_config.json`` (``get_diff_sampling_param``) and renders the chat template with
``add_generation_prompt``; doing the same here is what lets the same settings and seeds give the same records
in-process and through a server.

vLLM is not a dependency of erc-synth: it lives in its own venv (``scripts/install-vllm.sh`` makes
``.venv-vllm`` with erc-synth installed into it), so this module imports ``vllm`` only when the backend is built.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from erc_synth.dataset_scripts.core.errors import SettingError

from .base import AppliedSettings, BackendError, GenerationRequest, GenerationResult, Grammar, ModelInfo, SamplingParams

#: Requests handed to the engine per call: enough for continuous batching to keep its batch full.
DEFAULT_BATCH_SIZE = 64


def vllm_sampling_params(params: SamplingParams, seed: int, grammar: Grammar | None,
                         defaults: dict[str, Any] | None = None) -> Any:
    """vLLM's ``SamplingParams`` for one request, as a vLLM server builds them from the ``openai`` backend's body.

    typical_p has no vLLM counterpart and is not applied (``applied()`` says so).
    """
    from vllm import SamplingParams as VllmSamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    values: dict[str, Any] = dict(defaults or {})
    values.pop("max_new_tokens", None)  # the server maps it to max_tokens, which every request sets
    values.update(temperature=params.temperature, top_p=params.top_p, repetition_penalty=params.repetition_penalty,
                  max_tokens=params.max_new_tokens, seed=seed, stop=list(params.stop) or None)
    if params.top_k is not None and params.top_k > 0:
        values["top_k"] = params.top_k
    if params.min_p > 0:
        values["min_p"] = params.min_p
    if grammar is not None:
        values["structured_outputs"] = (StructuredOutputsParams(regex=grammar.value) if grammar.type == "regex"
                                        else StructuredOutputsParams(json=grammar.value))
    return VllmSamplingParams.from_optional(**values)


class VllmEngineBackend:
    """A ``vllm.LLM`` engine in this process; thread-safe (one call of the engine at a time)."""

    name = "vllm"
    supports_grammar = True
    grammar_kind = "regex"

    def __init__(self, model_dir: str | Path, *, model_id: str | None = None, model_sha: str | None = None,
                 batch_size: int = DEFAULT_BATCH_SIZE, dtype: str | None = None, max_model_len: int | None = None,
                 enforce_eager: bool | None = None, extra_info: dict[str, Any] | None = None,
                 engine_args: dict[str, Any] | None = None) -> None:
        """Load ``model_dir`` into a vLLM engine.

        On a CPU build of vLLM the defaults are ``dtype=float32``, ``max_model_len=2048``, ``enforce_eager``
        (without it the engine recompiles its graphs on every start, for minutes) and no chunked prefill;
        elsewhere vLLM's own defaults.
        """
        from vllm import LLM
        from vllm.platforms import current_platform

        on_cpu = current_platform.is_cpu()
        if batch_size < 1:
            raise SettingError("backend_options.batch_size", f"must be at least 1, got {batch_size}")
        args: dict[str, Any] = {
            "model": str(model_dir),
            "dtype": dtype or ("float32" if on_cpu else "auto"),
            "enforce_eager": on_cpu if enforce_eager is None else enforce_eager,
            "seed": 0,
        }
        if max_model_len or on_cpu:
            args["max_model_len"] = max_model_len or 2048
        if on_cpu:
            # A prompt split across steps (chunked prefill) has its sampled token discarded and its seeded
            # generator rewound with set_offset, which CPU generators lack: the engine dies. Unsplit prompts wait.
            args["enable_chunked_prefill"] = False
        args.update(engine_args or {})
        self.engine_args = args
        self._llm = LLM(**args)
        self._defaults = self._llm.llm_engine.model_config.get_diff_sampling_param()
        self.preferred_batch_size = batch_size
        self.model_id = model_id or str(model_dir)
        self._model_sha = model_sha
        self._extra = {**(extra_info or {}), "engine": "vllm.LLM", "platform": "cpu" if on_cpu else "gpu"}
        self._lock = threading.Lock()

    def applied(self) -> AppliedSettings:
        """vLLM has every parameter but typical_p; the line regex goes in as structured outputs."""
        return AppliedSettings.declare(not_applied=("typical_p",), constraint="regex via structured_outputs.regex",
                                       server_kind="vllm (in-process)")

    async def info(self) -> ModelInfo:
        import vllm

        return ModelInfo(backend=self.name, model_id=self.model_id, model_sha=self._model_sha,
                         server_version=vllm.__version__,
                         extra={**self._extra, "max_model_len": self.engine_args.get("max_model_len")})

    async def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        return await asyncio.to_thread(self._generate, list(requests))

    def _generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        conversations = [list(r.messages) for r in requests]
        try:
            params = [vllm_sampling_params(r.params, r.seed, r.grammar, self._defaults) for r in requests]
            with self._lock:
                outputs = self._llm.chat(conversations, sampling_params=params, use_tqdm=False)
        except (ValueError, TypeError) as exc:  # vLLM's validation of a request: retrying changes nothing
            raise BackendError(f"vllm.LLM refused the request: {exc}", retryable=False) from exc
        results = []
        for output in outputs:
            completion = output.outputs[0]
            results.append(GenerationResult(text=completion.text, finish_reason=completion.finish_reason,
                                            generated_tokens=len(completion.token_ids), endpoint=None))
        return results

    async def aclose(self) -> None:
        """Stop the engine's worker processes and drop its memory when the run ends."""
        llm, self._llm = self._llm, None
        core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        if core is not None:
            await asyncio.to_thread(core.shutdown)


def load_vllm_backend(model: str | None = None, *, chat_format: str = "auto", device: str | None = None,
                      **options: Any) -> VllmEngineBackend:
    """The in-process vLLM backend for a ``--model`` value: the embedded SmolLM2 (default) or a folder/Hub id."""
    from . import embedded

    if chat_format not in ("auto", "template", None):
        raise SettingError("chat_format", f"{chat_format} does not apply to backend vllm: vLLM renders the "
                                          "model's own chat template")
    if device not in (None, "auto"):
        raise SettingError("backend_options.device", f"{device} does not apply to backend vllm: vLLM runs on the "
                                                     "platform its build is for")
    if model is None or embedded.is_embedded(model):
        from .vllm_model import embedded_model_folder, embedded_model_sha

        return VllmEngineBackend(embedded_model_folder(), model_id=embedded.EMBEDDED_MODEL,
                                 model_sha=embedded_model_sha(), extra_info={"source": embedded.EMBEDDED_SOURCE},
                                 **options)
    return VllmEngineBackend(model, model_id=model, **options)
