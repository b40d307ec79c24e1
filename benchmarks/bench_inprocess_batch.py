"""The in-process backend (embedded SmolLM2, continuous batching) against ``model.generate`` and its static-batch
predecessor, all in one run.

Why: the backend decodes with a loop of its own (per-row seeds, TGI's sampling, grammars, rows joining and
leaving the batch); this measures what that loop costs against transformers' own ``generate`` and what
continuous batching buys over the static batches it replaced, under the same conditions.

    python benchmarks/bench_inprocess_batch.py
    python benchmarks/bench_inprocess_batch.py --batches 16 --count-factor 1 --tokens 32     # a quick look
    python benchmarks/bench_inprocess_batch.py --vllm       # also the workload through a local vLLM server

It prints four tables:

1. decode tokens/s on one batch of ``--batch`` prompts, ``--tokens`` new tokens each (EOS ignored, so every
   row decodes the same count), the quickstart's sampling parameters, no grammar: ``model.generate``, the
   backend, and the static-batch backend of commit 049bf48 (loaded from git, the "before"); ``--repeats``
   rounds with the engines interleaved, each engine's best round reported (the cores may be shared);
2. the same batch with each row's dialogue grammar: the grammar's cost per token;
3. dialogues/minute on the quickstart's workload (MELD balanced dialogues of 4-6 turns with their target's
   grammar, the quickstart's sampling, real EOS; lines of at most 60 characters where the quickstart allows
   120, to keep the run short), per minute of wall time and of this process's CPU time, at each of
   ``--batches``, ``--count-factor`` x batch dialogues, before and after, and how many texts the two wrote
   identically (they differ only where CPU float kernels round a row's logits
   differently with the batch's size or padding, see docs/engines.md);
4. with ``--vllm``: the same workload through a vLLM server (``.venv-vllm``), as many requests in flight as
   the largest batch; vLLM's start-up is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from erc_synth.dataset_scripts.core.registry import get_benchmark
from erc_synth.generation.backends.base import (
    BackendError,
    GenerationRequest,
    GenerationResult,
    Grammar,
    SamplingParams,
)
from erc_synth.generation.backends.embedded import load_embedded_backend
from erc_synth.generation.grammar import dialogue_regex
from erc_synth.generation.prompts import build_messages

REPO_ROOT = Path(__file__).resolve().parents[1]
BEFORE_COMMIT = "049bf48"
#: The quickstart preset's sampling parameters (erc_synth/presets/quickstart.yaml).
QUICKSTART = SamplingParams(temperature=0.7, top_p=1.0, top_k=10000, typical_p=0.995, repetition_penalty=1.15,
                            max_new_tokens=320)


def load_before() -> type:
    """The static-batch ``TransformersBackend`` of ``BEFORE_COMMIT``, imported from ``git show``."""
    source = subprocess.run(["git", "show", f"{BEFORE_COMMIT}:generation/backends/transformers_backend.py"],
                            cwd=REPO_ROOT, check=True, capture_output=True, text=True).stdout
    with tempfile.TemporaryDirectory(prefix="bench-before-") as folder:
        path = Path(folder) / "transformers_backend_before.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location("transformers_backend_before", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return module.TransformersBackend


def timed(run: Any) -> tuple[Any, float]:
    began = time.perf_counter()
    result = run()
    return result, time.perf_counter() - began


def cpu_timed(run: Any) -> tuple[Any, float, float]:
    """Wall seconds and this process's CPU seconds: on cores shared with other jobs the CPU time is what the
    run itself cost, while its wall time also follows the neighbours' load."""
    began = time.process_time()
    result, seconds = timed(run)
    return result, seconds, time.process_time() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=16, help="rows of the tokens/s comparison (tables 1, 2)")
    parser.add_argument("--tokens", type=int, default=48, help="new tokens per row in tables 1 and 2")
    parser.add_argument("--repeats", type=int, default=3,
                        help="rounds of tables 1 and 2 (engines interleaved; each engine's best round counts)")
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 32], help="batch sizes of table 3")
    parser.add_argument("--count-factor", type=float, default=1.5,
                        help="dialogues per batch size in table 3, as a multiple of the batch size")
    parser.add_argument("--benchmark", default="meld")
    parser.add_argument("--min-turns", type=int, default=4)
    parser.add_argument("--max-turns", type=int, default=6)
    parser.add_argument("--max-utterance-chars", type=int, default=60)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--vllm", action="store_true", help="also run table 3's workload through a vLLM server "
                                                             "started from .venv-vllm (about 5 GB of memory)")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()

    benchmark = get_benchmark(args.benchmark)
    turns = (args.min_turns, args.max_turns)
    started = time.perf_counter()
    backend = load_embedded_backend(num_threads=args.threads)
    model, tokenizer = backend.model, backend.tokenizer
    print(f"model loaded in {time.perf_counter() - started:.1f} s; torch threads {torch.get_num_threads()}, "
          f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}", flush=True)
    special = backend.chat_format.add_special_tokens
    before = load_before().from_objects(model, tokenizer, model_id=backend.model_id, model_sha="-")

    def request(index: int, params: SamplingParams = QUICKSTART) -> GenerationRequest:
        target = index % benchmark.num_labels
        regex = dialogue_regex(benchmark.speakers, benchmark.num_labels, *turns,
                               max_utterance_chars=args.max_utterance_chars, target_label=target)
        return GenerationRequest(build_messages(benchmark, "balanced", turns=turns, target_label=target),
                                 seed=index, params=params, grammar=Grammar("regex", regex))

    def run_prompts(engine: Any, requests: list[GenerationRequest], grammar: bool) -> list[GenerationResult]:
        return engine.generate_prompts([backend.chat_format.render(q.messages) for q in requests],
                                       [q.seed for q in requests], [q.params for q in requests],
                                       [q.grammar if grammar else None for q in requests], add_special_tokens=special)

    # ---- tables 1 and 2: one batch, a fixed number of tokens per row ---------------------------------------
    fixed = SamplingParams(**{**QUICKSTART.to_dict(), "max_new_tokens": args.tokens})
    requests = [request(i, fixed) for i in range(args.batch)]
    for engine in (backend, before):  # compile the grammars (with the real EOS) outside the timings
        run_prompts(engine, requests[:1], True)
    for engine in (backend, before):  # never stop at EOS: every row decodes exactly args.tokens tokens
        engine.eos_token_ids = [-1]
    backend.max_batch = before.preferred_batch_size = args.batch
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token_id = backend.pad_token_id
    encoded = tokenizer([backend.chat_format.render(q.messages) for q in requests], return_tensors="pt",
                        padding=True, add_special_tokens=special)

    def reference() -> Any:
        with torch.inference_mode():
            return model.generate(**encoded, do_sample=True, temperature=fixed.temperature, top_k=fixed.top_k,
                                  top_p=fixed.top_p, typical_p=fixed.typical_p,
                                  repetition_penalty=fixed.repetition_penalty, max_new_tokens=args.tokens,
                                  min_new_tokens=args.tokens, pad_token_id=backend.pad_token_id)

    best: dict[str, float] = {}
    total = args.batch * args.tokens
    for round_ in range(args.repeats):  # --repeats 0: table 3 (and 4) only
        for name, run in [("model.generate", reference),
                          ("backend", lambda: run_prompts(backend, requests, False)),
                          (f"before ({BEFORE_COMMIT})", lambda: run_prompts(before, requests, False)),
                          ("backend + grammar", lambda: run_prompts(backend, requests, True)),
                          (f"before ({BEFORE_COMMIT}) + grammar", lambda: run_prompts(before, requests, True))]:
            results, seconds = timed(run)
            tokens = total if name == "model.generate" else sum(r.generated_tokens for r in results)
            best[name] = max(best.get(name, 0.0), tokens / seconds)
            print(f"round {round_ + 1}, {name}: {tokens} tokens in {seconds:.1f} s", flush=True)
    fixed_rows = list(best.items())
    backend.eos_token_ids = before.eos_token_ids = backend._eos_token_ids()

    # ---- table 3: dialogues per minute, before and after ---------------------------------------------------
    dialogue_rows = []
    for batch in args.batches:
        count = max(1, round(batch * args.count_factor))
        workload = [request(i) for i in range(count)]
        backend.max_batch = before.preferred_batch_size = batch
        merged = backend.merged_rows
        after_results, after_s, after_cpu = cpu_timed(lambda: run_prompts(backend, workload, True))  # noqa: B023
        print(f"batch {batch}, after: {count} dialogues in {after_s:.1f} s, {after_cpu:.1f} CPU s "
              f"({backend.merged_rows - merged} rows joined a running batch)", flush=True)
        before_results, before_s, before_cpu = cpu_timed(lambda: run_prompts(before, workload, True))  # noqa: B023
        print(f"batch {batch}, before: {count} dialogues in {before_s:.1f} s, {before_cpu:.1f} CPU s", flush=True)
        same = sum(a.text == b.text for a, b in zip(after_results, before_results, strict=True))
        dialogue_rows.append((batch, count, before_s, after_s, before_cpu, after_cpu,
                              clean_count(workload, before_results), clean_count(workload, after_results), same))

    # ---- report --------------------------------------------------------------------------------------------
    print(f"\ncpus {os.cpu_count()}, torch threads {torch.get_num_threads()}, load average "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}, python {sys.version.split()[0]}")
    base = dict(fixed_rows)
    if fixed_rows:
        print_fixed(args, fixed_rows, base)
    print("\n3. quickstart workload with its grammar: dialogues per minute of wall time, and per minute of this "
          "process's CPU time")
    print(f"{'batch':>5} {'dialogues':>9} {'before':>8} {'after':>8} {'after/before':>13} {'CPU before':>11} "
          f"{'CPU after':>10} {'CPU a/b':>8} {'clean b/a':>10} {'same text':>9}")
    for batch, count, before_s, after_s, before_cpu, after_cpu, clean_before, clean_after, same in dialogue_rows:
        print(f"{batch:>5} {count:>9} {count / before_s * 60:>8.2f} {count / after_s * 60:>8.2f} "
              f"{before_s / after_s:>12.2f}x {count / before_cpu * 60:>11.2f} {count / after_cpu * 60:>10.2f} "
              f"{before_cpu / after_cpu:>7.2f}x {clean_before:>4}/{clean_after:<4} {same:>4}/{count}")
    if args.vllm:  # after the tables: its start-up and memory must not disturb them
        del backend, before, model
        count, seconds, tokens, clean = run_vllm(
            args, [request(i) for i in range(round(max(args.batches) * args.count_factor))])
        print(f"\n4. vLLM server, {max(args.batches)} in flight: {count} dialogues in {seconds:.1f} s, "
              f"{count / seconds * 60:.2f} dialogues/min, {tokens / seconds:.1f} tok/s, clean {clean}/{count}; "
              f"load average {os.getloadavg()[0]:.1f}")
    return 0


def print_fixed(args: argparse.Namespace, fixed_rows: list[tuple[str, float]], base: dict[str, float]) -> None:
    """Tables 1 and 2: tokens/s per engine, the ratio to ``model.generate``, the grammar's cost."""
    print(f"\n1-2. {args.batch} rows x {args.tokens} tokens, quickstart sampling (EOS ignored), "
          f"best of {args.repeats}")
    print(f"{'engine':>32} {'tok/s':>8} {'vs generate':>12}")
    for name, rate in fixed_rows:
        print(f"{name:>32} {rate:>8.1f} {rate / base['model.generate']:>11.2f}x")
    print(f"grammar overhead, backend: {1 - base['backend + grammar'] / base['backend']:.1%} "
          f"(before: {1 - base[f'before ({BEFORE_COMMIT}) + grammar'] / base[f'before ({BEFORE_COMMIT})']:.1%})")


def clean_count(requests: list[GenerationRequest], results: list[GenerationResult]) -> int:
    """Dialogues that ended cleanly and match their grammar."""
    return sum(r.finish_reason in ("eos_token", "stop") and re.fullmatch(q.grammar.value, r.text) is not None
               for q, r in zip(requests, results, strict=True))


def run_vllm(args: argparse.Namespace, requests: list[GenerationRequest]) -> tuple[int, float, int, int]:
    """Table 3's workload through a vLLM server, ``max(--batches)`` requests in flight at any time."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_vllm_server import start_vllm

    from erc_synth.generation.backends.openai_compat import OpenAICompatBackend

    with tempfile.TemporaryDirectory() as cache_root:
        log = Path(tempfile.gettempdir()) / "bench_inprocess_batch-vllm.log"  # kept for a failed run
        server, started_in = start_vllm(args.port, cache_root, log)
        print(f"vLLM answered after {started_in:.0f} s (not counted)", flush=True)
        try:
            async def through_server() -> list[GenerationResult]:
                client = OpenAICompatBackend([f"http://127.0.0.1:{args.port}"])
                slots = asyncio.Semaphore(max(args.batches))

                async def one(request: GenerationRequest) -> GenerationResult:
                    async with slots:
                        return (await client.generate_batch([request]))[0]

                try:
                    await client.info()
                    return list(await asyncio.gather(*(one(r) for r in requests)))
                finally:
                    await client.aclose()

            try:
                results, seconds = timed(lambda: asyncio.run(through_server()))
            except BackendError as error:
                raise SystemExit(f"the vLLM server failed ({error}); its log: {log}") from None
        finally:
            server.stop(60)
    return len(requests), seconds, sum(r.generated_tokens or 0 for r in results), clean_count(requests, results)


if __name__ == "__main__":
    raise SystemExit(main())
