"""In-process generation with transformers: continuous batching with a KV cache, TGI's sampling, xgrammar grammars.

Why a decoding loop of our own instead of ``model.generate``: a dialogue's text must depend only on its own
prompt, seed and parameters (so any index can be regenerated alone and a resumed run equals an uninterrupted
one), whatever else shares its batch. ``generate`` draws from one global RNG for the whole batch; here every
row has its own ``torch.Generator`` seeded with the request's seed, its own sampling parameters and its own
grammar matcher. The token choice copies TGI's ``NextTokenChooser``: repetition penalty, grammar mask, then
temperature, top-k, top-p and typical-p warpers (transformers' classes), then greedy argmax when no warper is
active, else the exponential-race sample ``argmax(probs / Exp(1))``.

Why continuous batching: one decode thread keeps up to ``max_batch`` rows in flight, from every caller at
once. A finished row leaves at once (its caller gets its result) and a waiting row takes its slot (prefilled
alone, merged into the running cache: ``kv_batch``), so short dialogues do not wait for long ones and the
batch does not shrink to its slowest row. The engine hands over more requests per call than there are slots
(its concurrency, by default four times ``preferred_batch_size``, which is ``max_batch``).

Row independence is exact in the sampling (per-row generators, row-wise warpers); the model's float kernels
are another matter: on CPU a row's logits can differ in the last bits with the batch size and the padding
(docs/engines.md), which can, rarely, flip a sampled token. Which rows share a step must therefore be a
function of the calls alone, never of timing: rows are admitted in the order they were submitted, whenever a
slot is free, and the engine makes one call at a time, so a run's records are the same byte for byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import threading
from collections import deque
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor
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
        or params.min_p > 0.0
    )


@dataclass(frozen=True)
class _Warpers:
    """TGI's static warper chain for one parameter set: temperature, top-k, then top-p, min-p and typical-p."""

    temperature: Any | None
    top_k: int
    after_top_k: tuple[Any, ...]


def _warpers(params: SamplingParams) -> _Warpers:
    """Build the chain from transformers' warper classes (top-k is done by compaction, see ``_sample``)."""
    from transformers.generation.logits_process import (
        MinPLogitsWarper,
        TemperatureLogitsWarper,
        TopPLogitsWarper,
        TypicalLogitsWarper,
    )

    after: list[Any] = []
    if params.top_p < 1.0:
        after.append(TopPLogitsWarper(params.top_p))
    if params.min_p > 0.0:  # transformers' own order: temperature, top-k, top-p, min-p, typical-p
        after.append(MinPLogitsWarper(params.min_p))
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


@dataclass(eq=False)
class _Row:
    """Decoding state of one request; ``future`` receives its result the moment it finishes.

    ``decoded``, ``prefix_offset`` and ``read_offset`` are the incremental detokenisation of TGI's
    ``decode_token`` (kept only for rows with stop strings): each step decodes the few tokens after
    ``prefix_offset`` instead of the whole output, and a stop string is looked for in the new tail only.
    """

    prompt_ids: list[int]
    seed: int
    params: SamplingParams
    matcher: Any | None
    generator: Any
    future: Future[GenerationResult] = field(default_factory=Future)
    generated: list[int] = field(default_factory=list)
    finish_reason: str | None = None
    text: str | None = None
    decoded: str = ""
    prefix_offset: int = 0
    read_offset: int = 0

    def result(self) -> GenerationResult:
        return GenerationResult(text=self.text or "", finish_reason=self.finish_reason,
                                generated_tokens=len(self.generated))


class _Scheduler:
    """One decode thread over a queue of prepared rows: admits waiting rows whenever slots are free.

    Why one thread: the model runs one forward pass at a time anyway; a single owner of the running batch
    needs no lock around the cache, and callers on any thread or event loop only wait on their rows' futures.
    The thread is a daemon started on the first submission and stopped by ``close`` once idle.
    """

    def __init__(self, backend: TransformersBackend) -> None:
        self._backend = backend
        self._waiting: deque[_Row] = deque()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closing = False

    def submit(self, rows: Sequence[_Row]) -> None:
        with self._wake:
            self._waiting.extend(rows)
            self._closing = False
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="transformers-decode", daemon=True)
                self._thread.start()
            self._wake.notify()

    def close(self) -> None:
        """Let the thread end once nothing is waiting or decoding (a later ``submit`` starts a new one)."""
        with self._wake:
            self._closing = True
            self._wake.notify()

    def _take(self, free: int) -> list[_Row]:
        """Up to ``free`` waiting rows, skipping those whose caller has gone (cancelled futures)."""
        taken: list[_Row] = []
        while self._waiting and len(taken) < free:
            row = self._waiting.popleft()
            if not row.future.cancelled():
                taken.append(row)
        return taken

    def _run(self) -> None:
        import torch

        rows: list[_Row] = []
        batch: Any = None
        masked = 0  # rows[:masked] have their grammar mask for the next token filled already
        while True:
            with self._wake:
                while not rows and not self._waiting:
                    if self._closing:
                        self._thread = None
                        return
                    self._wake.wait()
                can_join = batch is None or batch.mergeable
                newcomers = self._take(self._backend.max_batch - len(rows)) if can_join else []
            try:
                with torch.inference_mode():
                    rows, batch, masked = self._backend._step(rows, batch, newcomers, masked)
            except BaseException as error:
                # every caller with a row in the batch hears of it (as raised: out of memory stays
                # torch.OutOfMemoryError); the thread itself goes on serving later submissions
                for row in rows + newcomers:
                    with contextlib.suppress(InvalidStateError):
                        row.future.set_exception(error)
                rows, batch, masked = [], None, 0
                if not isinstance(error, Exception):
                    raise


class TransformersBackend:
    """The ``transformers`` backend: a causal LM in this process, on CPU or GPU.

    Thread-safe: every caller (the asyncio methods, a server's worker threads) submits rows to one decode
    thread that batches them continuously, up to ``max_batch`` rows per forward pass. ``generate_batch``
    renders chat messages with the resolved chat format; ``generate_prompts`` takes already-rendered prompts
    (TGI's ``/generate`` semantics).
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
        ``batch_size`` is ``max_batch``, the most rows decoded in one forward pass.
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
            from erc_synth.dataset_scripts.core.errors import ErcSynthError

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
        #: The most rows decoded together (slots of the running batch); may be changed between calls.
        self.max_batch = batch_size
        #: Rows admitted into an already running batch (a measure of continuous batching at work).
        self.merged_rows = 0
        self.device = next(model.parameters()).device
        self._lock = threading.Lock()  # guards request preparation (tokenizer, grammar compiler cache)
        self._scheduler = _Scheduler(self)
        self._warper_chains: dict[SamplingParams, _Warpers] = {}
        self._bitmask: Any = None
        self._mask_filler: ThreadPoolExecutor | None = None
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

    async def _rows_for(self, requests: Sequence[GenerationRequest]) -> list[Any]:
        """The requests rendered and tokenised into decode rows, off the event loop."""
        prompts = [self.chat_format.render(request.messages) for request in requests]
        return await asyncio.to_thread(
            self._prepare_rows,
            prompts,
            [request.seed for request in requests],
            [request.params for request in requests],
            [request.grammar for request in requests],
            self.chat_format.add_special_tokens,
        )

    async def generate_batch(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Queue the requests for the decode thread and await their results (in order).

        Cancelling the awaiting task withdraws its rows that have not finished: waiting rows are never
        admitted and running ones leave the batch at the next step.
        """
        rows = await self._rows_for(requests)
        self._scheduler.submit(rows)
        return list(await asyncio.gather(*(asyncio.wrap_future(row.future) for row in rows)))

    async def stream_batch(self, requests: Sequence[GenerationRequest]) -> AsyncIterator[tuple[int, GenerationResult]]:
        """``generate_batch`` that yields ``(position, result)`` for each request the moment its row finishes.

        Why: a continuously batched call of many requests returns only when its slowest row is done, so a
        caller that waits for the whole call cannot show progress or store a dialogue before then, and a
        killed process loses every row of the call. Rows are yielded in the order the decode thread finishes
        them (by step, then by slot), which is a function of the call alone, so it is the same on every run.
        Closing the iterator early (``contextlib.aclosing``) withdraws the rows that have not finished.
        """
        rows = await self._rows_for(requests)
        loop = asyncio.get_running_loop()
        finished: asyncio.Queue[tuple[int, Future[GenerationResult]]] = asyncio.Queue()

        def announce(position: int, future: Future[GenerationResult]) -> None:
            # runs on the decode thread (or here, for a cancelled row); FIFO keeps the finishing order
            with contextlib.suppress(RuntimeError):  # the caller's event loop has closed meanwhile
                loop.call_soon_threadsafe(finished.put_nowait, (position, future))

        for position, row in enumerate(rows):
            row.future.add_done_callback(functools.partial(announce, position))
        self._scheduler.submit(rows)
        try:
            for _ in rows:
                position, future = await finished.get()
                yield position, future.result()
        finally:
            for row in rows:
                row.future.cancel()  # no-op for finished rows; the others leave the batch at the next step

    async def aclose(self) -> None:
        self._scheduler.close()
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
    def preferred_batch_size(self) -> int:
        """The decode slots (``max_batch``): the engine sends four times as many requests per call by default."""
        return self.max_batch

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
        """Generate one result per rendered prompt (blocking; batched with every other caller's rows).

        Each result depends only on its own prompt, seed, parameters and grammar. Raises ``BackendError``
        (not retryable) for a prompt longer than the model's context or an invalid grammar.
        """
        rows = self._prepare_rows(prompts, seeds, params, grammars, add_special_tokens)
        self._scheduler.submit(rows)
        return [row.future.result() for row in rows]

    def _prepare_rows(
        self,
        prompts: Sequence[str],
        seeds: Sequence[int],
        params: SamplingParams | Sequence[SamplingParams],
        grammars: Sequence[Grammar | None] | None,
        add_special_tokens: bool,
    ) -> list[_Row]:
        """Tokenise and check every request before any is queued: one bad request costs no work."""
        count = len(prompts)
        params_list = [params] * count if isinstance(params, SamplingParams) else list(params)
        grammar_list = list(grammars) if grammars is not None else [None] * count
        if not len(seeds) == len(params_list) == len(grammar_list) == count:
            raise ValueError("prompts, seeds, params and grammars must have the same length")
        with self._lock:
            return [
                self._prepare_row(prompt, seed, row_params, grammar, add_special_tokens)
                for prompt, seed, row_params, grammar in zip(prompts, seeds, params_list, grammar_list, strict=True)
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

    # ---- the decode thread ------------------------------------------------------------------------------
    def _step(
        self, rows: list[_Row], batch: Any, newcomers: list[_Row], masked: int
    ) -> tuple[list[_Row], Any, int]:
        """One decoding step of the running batch: admit ``newcomers``, choose one token per row, resolve
        finished rows, drop them (and withdrawn ones), feed the chosen tokens. Returns the new state.

        The grammar masks of the next step are filled on a helper thread while the model runs the forward
        pass (torch releases the GIL inside its kernels), since each matcher has already accepted its token:
        the mask work is hidden wherever a core is free. ``masked`` leading rows have theirs ready; only
        newcomers are filled in ``_choose``.
        """
        from erc_synth.generation.backends.kv_batch import KVBatch

        if newcomers:
            fresh = KVBatch.prefill(self.model, [row.prompt_ids for row in newcomers],
                                    [row.params.repetition_penalty for row in newcomers], self.pad_token_id)
            if batch is None:
                batch = fresh
            else:
                batch.merge(fresh)
                self.merged_rows += len(newcomers)
            rows = rows + newcomers
        tokens = self._choose(rows, batch, masked)
        for row, token in zip(rows, tokens.tolist(), strict=True):
            self._advance(row, token)
            if row.finish_reason is not None:
                _resolve(row)
        keep = [slot for slot, row in enumerate(rows) if row.finish_reason is None and not row.future.cancelled()]
        if not keep:
            return [], None, 0
        if len(keep) < len(rows):
            batch.select(keep)
            tokens = tokens[keep]
            rows = [rows[slot] for slot in keep]
        filling = None
        if any(row.matcher is not None for row in rows):
            if self._mask_filler is None:
                self._mask_filler = ThreadPoolExecutor(1, thread_name_prefix="grammar-mask")
            bitmask = self._bitmask_for(len(rows), batch.logits.shape[-1])
            filling = self._mask_filler.submit(_fill_masks, rows, bitmask, 0)
        try:
            batch.step(self.model, tokens)
        finally:
            if filling is not None:
                filling.result()
        return rows, batch, len(rows)

    def _bitmask_for(self, rows: int, vocab_size: int) -> Any:
        """The grammar bitmask buffer, grown (contents kept) to hold ``rows`` rows."""
        import xgrammar

        if self._bitmask is None or self._bitmask.shape[0] < rows:
            grown = xgrammar.allocate_token_bitmask(max(rows, self.max_batch), vocab_size)
            if self._bitmask is not None:
                grown[: self._bitmask.shape[0]] = self._bitmask
            self._bitmask = grown
        return self._bitmask

    def _warpers_for(self, params: SamplingParams) -> _Warpers:
        if params not in self._warper_chains:
            if len(self._warper_chains) > 256:  # a long-lived server sees many parameter sets
                self._warper_chains.clear()
            self._warper_chains[params] = _warpers(params)
        return self._warper_chains[params]

    def _choose(self, rows: list[_Row], batch: Any, masked: int) -> Any:
        """One token per row, as TGI's NextTokenChooser picks it; returns a tensor of ids (no host sync).

        Repetition penalty (every penalised row at once, from the batch's record of seen tokens), grammar
        mask (one bitmask for the batch), then per parameter group: greedy argmax, or the warpers and the
        seeded draw. Every operation is row-wise, so a row's token does not depend on which other rows share
        the step.
        """
        import torch
        import xgrammar

        scores = batch.logits.float()
        penalised = [slot for slot, row in enumerate(rows) if row.params.repetition_penalty != 1.0]
        if len(penalised) == len(rows):
            batch.apply_repetition_penalty(scores)
        elif penalised:
            batch.apply_repetition_penalty(scores, torch.tensor(penalised, device=scores.device))
        constrained = [slot for slot, row in enumerate(rows) if row.matcher is not None]
        if constrained:
            bitmask = self._bitmask_for(len(rows), scores.shape[-1])
            _fill_masks(rows[masked:], bitmask, masked)
            xgrammar.apply_token_bitmask_inplace(
                scores, bitmask[: len(rows)].to(scores.device, non_blocking=True), indices=constrained
            )
        groups: dict[SamplingParams, list[int]] = {}
        for slot, row in enumerate(rows):
            groups.setdefault(row.params, []).append(slot)
        if len(groups) == 1:  # the common case: one parameter set, no index shuffling
            (params, _), = groups.items()
            if uses_sampling(params):
                return _sample(scores, self._warpers_for(params), [row.generator for row in rows])
            return scores.argmax(dim=-1)
        tokens = torch.empty(len(rows), dtype=torch.long, device=scores.device)
        for params, slots in groups.items():
            index = torch.tensor(slots, device=scores.device)
            if uses_sampling(params):
                tokens[index] = _sample(scores[index], self._warpers_for(params),
                                        [rows[slot].generator for slot in slots])
            else:
                tokens[index] = scores[index].argmax(dim=-1)
        return tokens

    def _advance(self, row: _Row, token: int) -> None:
        """Record ``token`` and decide whether the row is finished (TGI's finish reasons)."""
        row.generated.append(token)
        if row.matcher is not None and not row.matcher.accept_token(token):
            raise BackendError(f"grammar matcher rejected token {token} it had allowed", retryable=False)
        if token in self.eos_token_ids:
            row.finish_reason = "eos_token"
            row.text = self.tokenizer.decode(row.generated[:-1], skip_special_tokens=True)
            return
        if row.params.stop and self._stop_in_new_text(row):
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

    def _stop_in_new_text(self, row: _Row) -> bool:
        """Decode only the newest tokens (TGI's prefix/read offsets) and look for a stop string that ends in
        the new text. A token that ends inside a multi-byte character decodes to U+FFFD and waits for the
        next one. The final text is still one full decode, so it equals a whole-output decode exactly."""
        ids = row.generated
        prefix = self.tokenizer.decode(ids[row.prefix_offset : row.read_offset], skip_special_tokens=True)
        text = self.tokenizer.decode(ids[row.prefix_offset :], skip_special_tokens=True)
        if len(text) <= len(prefix) or text.endswith("\ufffd"):
            return False
        new = text[len(prefix) :]
        row.prefix_offset, row.read_offset = row.read_offset, len(ids)
        row.decoded += new
        longest = max(len(stop) for stop in row.params.stop)
        tail = row.decoded[-(len(new) + longest - 1) :]
        return any(stop and stop in tail for stop in row.params.stop)


def _fill_masks(rows: Sequence[_Row], bitmask: Any, first_slot: int) -> None:
    """Write each constrained row's allowed-token mask into ``bitmask[first_slot + i]``."""
    for offset, row in enumerate(rows):
        if row.matcher is not None:
            row.matcher.fill_next_token_bitmask(bitmask, first_slot + offset)


def _resolve(row: _Row) -> None:
    """Hand a finished row's result to its caller (who may have withdrawn it meanwhile)."""
    with contextlib.suppress(InvalidStateError):  # cancelled by its caller meanwhile
        row.future.set_result(row.result())
