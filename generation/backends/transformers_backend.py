"""In-process generation with transformers: batched decoding with a KV cache, TGI's sampling, xgrammar grammars.

Why a decoding loop of our own instead of ``model.generate``: a dialogue's text must depend only on its own
prompt, seed and parameters (so any index can be regenerated alone and a resumed run equals an uninterrupted
one), whatever else shares its batch. ``generate`` draws from one global RNG for the whole batch; here every
row has its own ``torch.Generator`` seeded with the request's seed, its own sampling parameters and its own
grammar matcher. The token choice copies TGI's ``NextTokenChooser``: repetition penalty, grammar mask, then
temperature, top-k, top-p and typical-p warpers (transformers' classes), then greedy argmax when no warper is
active, else the exponential-race sample ``argmax(probs / Exp(1))``. Finished rows leave the batch (the cache
is pruned) so that short dialogues do not pay for long ones.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from erc_synth.generation.backends.base import (
    AppliedSettings,
    BackendError,
    GenerationRequest,
    GenerationResult,
    Grammar,
    ModelInfo,
    SamplingParams,
)
from erc_synth.generation.chat_format import ChatFormat, resolve_chat_format

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth")


def pick_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def pick_dtype(dtype: str, device: str) -> Any:
    """``auto`` -> bfloat16 on GPU, float32 on CPU (CPU bf16 matmuls are slow and less exact)."""
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; choose auto, float32, bfloat16 or float16") from None


def _files_sha256(folder: Path, gguf_file: str | None) -> str | None:
    """A content hash of a local model's config and weight files (name and bytes, sorted by name)."""
    files = [folder / gguf_file] if gguf_file else sorted(
        p for p in folder.iterdir() if p.is_file() and (p.suffix in _WEIGHT_SUFFIXES or p.name == "config.json")
    )
    if not files:
        return None
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _state_dict_sha256(model: Any) -> str:
    """A content hash of in-memory weights, for models that were not loaded from files."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode() + b"\0" + str(tensor.dtype).encode() + str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def uses_sampling(params: SamplingParams) -> bool:
    """TGI samples when any warper is active; with none it decodes greedily (``temperature <= 0`` too)."""
    if params.temperature <= 0:
        return False
    return (
        params.temperature != 1.0
        or (params.top_k is not None and params.top_k > 0)
        or params.top_p < 1.0
        or params.typical_p < 1.0
    )


@dataclass(frozen=True)
class _Warpers:
    """TGI's static warper chain for one parameter set: temperature, top-k, then top-p and typical-p."""

    temperature: Any | None
    top_k: int
    after_top_k: tuple[Any, ...]


def _warpers(params: SamplingParams) -> _Warpers:
    """Build the chain from transformers' warper classes (top-k is done by compaction, see ``_sample``)."""
    from transformers.generation.logits_process import (
        TemperatureLogitsWarper,
        TopPLogitsWarper,
        TypicalLogitsWarper,
    )

    after: list[Any] = []
    if params.top_p < 1.0:
        after.append(TopPLogitsWarper(params.top_p))
    if params.typical_p < 1.0:
        after.append(TypicalLogitsWarper(params.typical_p))
    temperature = params.temperature
    return _Warpers(
        temperature=TemperatureLogitsWarper(temperature) if temperature > 0 and temperature != 1.0 else None,
        top_k=params.top_k if params.top_k is not None and params.top_k > 0 else 0,
        after_top_k=tuple(after),
    )


def _sample(scores: Any, warpers: _Warpers, generators: Sequence[Any]) -> Any:
    """Warp ``scores`` ([rows, vocab], one parameter set) and draw one token per row (TGI's exponential race).

    Top-k keeps the k best logits as a compact [rows, k] tensor instead of masking the rest with -inf: the
    masked tokens would have probability 0 in every later warper and in the draw, so the distribution is the
    same, while top-p and typical-p sort 10,000 candidates instead of the whole vocabulary (SmolLM2 has 49,152
    tokens; the warpers dominated a CPU decoding step). Every row draws its noise from its own
    generator, so a row's token does not depend on the other rows. Returns a tensor of token ids (no sync).
    """
    import torch

    if warpers.temperature is not None:
        scores = warpers.temperature(None, scores)
    candidates = None
    if 0 < warpers.top_k < scores.shape[-1]:
        scores, candidates = scores.topk(warpers.top_k, dim=-1)
    for warper in warpers.after_top_k:
        scores = warper(None, scores)
    probs = torch.softmax(scores, dim=-1)
    width = probs.shape[-1]
    noise = torch.stack([probs.new_empty(width).exponential_(1, generator=g) for g in generators])
    picks = probs.div_(noise).argmax(dim=-1)
    return candidates.gather(-1, picks.unsqueeze(-1)).squeeze(-1) if candidates is not None else picks


@dataclass
class _Row:
    """Decoding state of one request."""

    prompt_ids: list[int]
    seed: int
    params: SamplingParams
    matcher: Any | None
    generator: Any
    generated: list[int] = field(default_factory=list)
    finish_reason: str | None = None
    text: str | None = None


class TransformersBackend:
    """The ``transformers`` backend: a causal LM in this process, on CPU or GPU.

    Thread-safe: one lock serialises decoding, so the asyncio methods and a server's worker threads can
    share one instance. ``generate_batch`` renders chat messages with the resolved chat format;
    ``generate_prompts`` takes already-rendered prompts (TGI's ``/generate`` semantics).
    """

    name = "transformers"
    supports_grammar = True
    grammar_kind = "regex"

    def __init__(
        self,
        model_name_or_path: str | Path,
        *,
        gguf_file: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 8,
        chat_format: str = "auto",
        model_id: str | None = None,
        model_sha: str | None = None,
        extra_info: dict[str, Any] | None = None,
        num_threads: int | None = None,
    ) -> None:
        """Load ``model_name_or_path`` (a Hub id or a local folder; ``gguf_file`` names a GGUF file in it).

        ``model_id`` and ``model_sha`` override what runs record (the embedded model records its GGUF's hash
        whether it was loaded from the GGUF or from the dequantised cache); ``extra_info`` joins ``info().extra``.
        ``num_threads`` sets torch's intra-op threads for the whole process (``torch.set_num_threads``): on a
        CPU shared with other work, 1 thread avoids OpenMP spin-waits that can make small models many times slower.
        """
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if num_threads is not None:
            torch.set_num_threads(num_threads)

        device = pick_device(device)
        source = str(model_name_or_path)
        kwargs: dict[str, Any] = {"gguf_file": gguf_file} if gguf_file else {}
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
            model = AutoModelForCausalLM.from_pretrained(source, dtype=pick_dtype(dtype, device), **kwargs)
        except OSError as error:
            from erc_synth.dataset_scripts.errors import ErcSynthError

            raise ErcSynthError(f"cannot load model {source!r}: {error}") from error
        model.to(device)
        folder = Path(source)
        self._weights_folder = folder if folder.is_dir() else None
        self._gguf_file = gguf_file
        self._init(model, tokenizer, model_id=model_id or source, chat_format=chat_format, batch_size=batch_size)
        self._model_sha = model_sha
        self._extra_info = dict(extra_info or {})

    @classmethod
    def from_objects(
        cls,
        model: Any,
        tokenizer: Any,
        *,
        model_id: str = "in-memory",
        chat_format: str = "auto",
        batch_size: int = 8,
        model_sha: str | None = None,
    ) -> TransformersBackend:
        """Wrap an already-loaded model and tokenizer (tests, notebooks)."""
        backend = cls.__new__(cls)
        backend._weights_folder = None
        backend._gguf_file = None
        backend._init(model, tokenizer, model_id=model_id, chat_format=chat_format, batch_size=batch_size)
        backend._model_sha = model_sha
        backend._extra_info = {}
        return backend

    def _init(self, model: Any, tokenizer: Any, *, model_id: str, chat_format: str, batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        model.eval()
        self.model = model
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.chat_format: ChatFormat = resolve_chat_format(chat_format, model_id, tokenizer)
        self.preferred_batch_size = batch_size
        self.device = next(model.parameters()).device
        self._lock = threading.Lock()
        self._model_sha: str | None = None
        self._xgr_compiler: Any = None
        self._compiled: dict[str, Any] = {}
        self.eos_token_ids = self._eos_token_ids()
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_token_ids[0]

    def _eos_token_ids(self) -> list[int]:
        ids: list[int] = []
        configured = getattr(self.model.generation_config, "eos_token_id", None)
        for value in (configured if isinstance(configured, list) else [configured], [self.tokenizer.eos_token_id]):
            ids.extend(v for v in value if v is not None and v not in ids)
        if not ids:
            raise BackendError(f"model {self.model_id!r} defines no EOS token", retryable=False)
        return ids

    # ---- Backend protocol -------------------------------------------------------------------------------
    def applied(self) -> AppliedSettings:
        """Every sampling parameter (TGI's warper chain, per-row seeded generator, stop strings) and the line
        regex through xgrammar's token mask."""
        return AppliedSettings.declare(constraint="regex via xgrammar")

    async def info(self) -> ModelInfo:
        import transformers

        if self._model_sha is None:
            self._model_sha = await asyncio.to_thread(self.model_sha)
        return ModelInfo(
            backend=self.name,
            model_id=self.model_id,
            model_sha=self._model_sha,
            server_version=f"transformers {transformers.__version__}",
            extra={
                "chat_format": self.chat_format.name,
                "device": str(self.device),
                "dtype": str(self.model.dtype),
                **self._extra_info,
            },
        )

    async def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        prompts = [self.chat_format.render(request.messages) for request in requests]
        return await asyncio.to_thread(
            self.generate_prompts,
            prompts,
            [request.seed for request in requests],
            [request.params for request in requests],
            [request.grammar for request in requests],
            add_special_tokens=self.chat_format.add_special_tokens,
        )

    async def aclose(self) -> None:
        self._compiled.clear()

    # ---- model facts ------------------------------------------------------------------------------------
    def model_sha(self) -> str:
        """The Hub commit when the model came from the Hub, else a sha256 of the weights (files or tensors)."""
        if self._model_sha is None:
            commit = getattr(self.model.config, "_commit_hash", None)
            if commit:
                self._model_sha = commit
            elif self._weights_folder is not None and (sha := _files_sha256(self._weights_folder, self._gguf_file)):
                self._model_sha = sha
            else:
                self._model_sha = _state_dict_sha256(self.model)
        return self._model_sha

    @property
    def max_context(self) -> int | None:
        return getattr(self.model.config, "max_position_embeddings", None)

    # ---- grammar ----------------------------------------------------------------------------------------
    def _compiled_grammar(self, grammar: Grammar, vocab_size: int) -> Any:
        import xgrammar

        key = json.dumps([grammar.type, grammar.value], sort_keys=True)
        if key not in self._compiled:
            if self._xgr_compiler is None:
                info = xgrammar.TokenizerInfo.from_huggingface(
                    self.tokenizer, vocab_size=vocab_size, stop_token_ids=self.eos_token_ids
                )
                self._xgr_compiler = xgrammar.GrammarCompiler(info)
            try:
                if grammar.type == "regex":
                    compiled = self._xgr_compiler.compile_regex(str(grammar.value))
                elif grammar.type == "json_schema":
                    value = grammar.value if isinstance(grammar.value, str) else json.dumps(grammar.value)
                    compiled = self._xgr_compiler.compile_json_schema(value, any_whitespace=False)
                else:
                    raise BackendError(f"unknown grammar type {grammar.type!r}", retryable=False)
            except (RuntimeError, ValueError) as error:
                raise BackendError(f"invalid {grammar.type} grammar: {error}", retryable=False) from error
            self._compiled[key] = compiled
        return self._compiled[key]

    # ---- decoding ---------------------------------------------------------------------------------------
    def generate_prompts(
        self,
        prompts: Sequence[str],
        seeds: Sequence[int],
        params: SamplingParams | Sequence[SamplingParams],
        grammars: Sequence[Grammar | None] | None = None,
        *,
        add_special_tokens: bool = True,
    ) -> list[GenerationResult]:
        """Generate one result per rendered prompt, in chunks of ``preferred_batch_size``.

        Each result depends only on its own prompt, seed, parameters and grammar. Raises ``BackendError``
        (not retryable) for a prompt longer than the model's context or an invalid grammar.
        """
        count = len(prompts)
        params_list = [params] * count if isinstance(params, SamplingParams) else list(params)
        grammar_list = list(grammars) if grammars is not None else [None] * count
        if not len(seeds) == len(params_list) == len(grammar_list) == count:
            raise ValueError("prompts, seeds, params and grammars must have the same length")
        with self._lock:
            rows = [  # every request is checked before any is generated: one bad request costs no work
                self._prepare_row(prompt, seed, row_params, grammar, add_special_tokens)
                for prompt, seed, row_params, grammar in zip(prompts, seeds, params_list, grammar_list, strict=True)
            ]
            for start in range(0, count, self.preferred_batch_size):
                self._decode(rows[start : start + self.preferred_batch_size])
        return [
            GenerationResult(text=row.text or "", finish_reason=row.finish_reason, generated_tokens=len(row.generated))
            for row in rows
        ]

    @property
    def _vocab_size(self) -> int:
        return self.model.get_output_embeddings().weight.shape[0]

    def _prepare_row(
        self, prompt: str, seed: int, params: SamplingParams, grammar: Grammar | None, add_special_tokens: bool
    ) -> _Row:
        import torch
        import xgrammar

        ids = self.tokenizer(prompt, add_special_tokens=add_special_tokens)["input_ids"]
        if not ids:
            raise BackendError("empty prompt", retryable=False)
        limit = self.max_context
        if limit is not None and len(ids) + params.max_new_tokens > limit:
            raise BackendError(
                f"prompt of {len(ids)} tokens + max_new_tokens {params.max_new_tokens} exceeds the "
                f"model's context of {limit} tokens",
                retryable=False,
            )
        matcher = xgrammar.GrammarMatcher(self._compiled_grammar(grammar, self._vocab_size)) if grammar else None
        generator = torch.Generator(device=self.device)
        generator.manual_seed(int(seed) % (1 << 64))
        return _Row(ids, int(seed), params, matcher, generator)

    def _decode(self, rows: list[_Row]) -> None:
        """Decode a batch of prepared rows to completion (KV cache, left padding, finished rows pruned)."""
        import torch

        with torch.inference_mode():
            self._decode_rows(rows)

    def _decode_rows(self, rows: list[_Row]) -> None:
        import torch
        import xgrammar
        from transformers import DynamicCache

        vocab_size = self._vocab_size

        device = self.device
        width = max(len(row.prompt_ids) for row in rows)
        input_ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):  # left padding: every row's last prompt token is at the same column
            input_ids[i, width - len(row.prompt_ids) :] = torch.tensor(row.prompt_ids)
            attention[i, width - len(row.prompt_ids) :] = 1
        input_ids, attention = input_ids.to(device), attention.to(device)
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache(config=self.model.config)
        active = list(range(len(rows)))
        bitmask = xgrammar.allocate_token_bitmask(len(rows), vocab_size)
        warpers = {params: _warpers(params) for params in {row.params for row in rows}}

        logits = self.model(
            input_ids=input_ids, attention_mask=attention, position_ids=positions, cache=cache, logits_to_keep=1
        ).logits[:, -1, :]
        next_positions = positions[:, -1] + 1
        while True:
            chosen = self._choose([rows[index] for index in active], logits.float(), warpers, bitmask)
            for index, token in zip(active, chosen, strict=True):
                self._advance(rows[index], token)
            keep = [slot for slot, index in enumerate(active) if rows[index].finish_reason is None]
            if not keep:
                break
            if len(keep) < len(active):
                keep_index = torch.tensor(keep, device=device)
                cache.batch_select_indices(keep_index)
                attention = attention[keep_index]
                next_positions = next_positions[keep_index]
                chosen = [chosen[slot] for slot in keep]
                active = [active[slot] for slot in keep]
            attention = torch.cat([attention, attention.new_ones((len(active), 1))], dim=1)
            step_ids = torch.tensor(chosen, device=device).unsqueeze(1)
            logits = self.model(
                input_ids=step_ids,
                attention_mask=attention,
                position_ids=next_positions.unsqueeze(1),
                cache=cache,
                logits_to_keep=1,
            ).logits[:, -1, :]
            next_positions = next_positions + 1

    def _choose(
        self, rows: list[_Row], scores: Any, warpers: dict[SamplingParams, _Warpers], bitmask: Any
    ) -> list[int]:
        """One token per active row, as TGI's NextTokenChooser picks it, with one host sync per step.

        Repetition penalty (per row), grammar mask (one bitmask for the batch), then per parameter group:
        greedy argmax, or the warpers and the seeded draw. Every operation is row-wise, so a row's token
        does not depend on which other rows share the step.
        """
        import torch
        import xgrammar

        for slot, row in enumerate(rows):
            if row.params.repetition_penalty != 1.0:
                from transformers.generation.logits_process import RepetitionPenaltyLogitsProcessor

                seen = torch.tensor([row.prompt_ids + row.generated], device=scores.device)
                penalty = RepetitionPenaltyLogitsProcessor(row.params.repetition_penalty)
                scores[slot : slot + 1] = penalty(seen, scores[slot : slot + 1])
        constrained = [slot for slot, row in enumerate(rows) if row.matcher is not None]
        if constrained:
            for slot in constrained:
                rows[slot].matcher.fill_next_token_bitmask(bitmask, slot)
            xgrammar.apply_token_bitmask_inplace(
                scores, bitmask[: len(rows)].to(scores.device, non_blocking=True), indices=constrained
            )
        tokens = torch.empty(len(rows), dtype=torch.long, device=scores.device)
        groups: dict[SamplingParams, list[int]] = {}
        for slot, row in enumerate(rows):
            groups.setdefault(row.params, []).append(slot)
        for params, slots in groups.items():
            index = torch.tensor(slots, device=scores.device)
            if uses_sampling(params):
                tokens[index] = _sample(scores[index], warpers[params], [rows[slot].generator for slot in slots])
            else:
                tokens[index] = scores[index].argmax(dim=-1)
        return tokens.tolist()

    def _advance(self, row: _Row, token: int) -> None:
        """Record ``token`` and decide whether the row is finished (TGI's finish reasons)."""
        row.generated.append(token)
        if row.matcher is not None and not row.matcher.accept_token(token):
            raise BackendError(f"grammar matcher rejected token {token} it had allowed", retryable=False)
        if token in self.eos_token_ids:
            row.finish_reason = "eos_token"
            row.text = self.tokenizer.decode(row.generated[:-1], skip_special_tokens=True)
            return
        if row.params.stop:
            text = self.tokenizer.decode(row.generated, skip_special_tokens=True)
            ends = [text.find(stop) + len(stop) for stop in row.params.stop if stop and stop in text]
            if ends:
                row.finish_reason = "stop_sequence"
                row.text = text[: min(ends)]
                return
        if row.matcher is not None and row.matcher.is_terminated():
            row.finish_reason = "eos_token"
        elif len(row.generated) >= row.params.max_new_tokens:
            row.finish_reason = "length"
        if row.finish_reason is not None:
            row.text = self.tokenizer.decode(row.generated, skip_special_tokens=True)
