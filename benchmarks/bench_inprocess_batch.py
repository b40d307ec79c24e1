"""Dialogues per minute of the in-process backend (embedded SmolLM2 + dialogue grammar) at batch sizes 1, 8, 32.

Why: batching is the in-process backend's only lever on CPU (and its main one on GPU); this measures what it
buys on this machine, all batch sizes in one run so the ratios share the same conditions.

    python benchmarks/bench_inprocess_batch.py
    python benchmarks/bench_inprocess_batch.py --batches 1 8 --counts 2 8 --threads 1

Each batch size generates ``count`` MELD balanced dialogues (seeds 0..count-1, the same prompts for every
batch size) and reports dialogues/minute, generated tokens/second, the share that ended cleanly and matched
the grammar, and the ratio to batch 1. Small batches get fewer dialogues to keep the default run short; the
figures are rates, so the counts do not bias the ratios (beyond batch-to-batch length variation).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import time

import torch

from erc_synth.dataset_scripts.registry import get_benchmark
from erc_synth.generation.backends.base import GenerationRequest, Grammar, SamplingParams
from erc_synth.generation.embedded import load_embedded_backend
from erc_synth.generation.grammar import dialogue_regex
from erc_synth.generation.prompts import build_messages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--counts", type=int, nargs="+", default=[4, 8, 32], help="dialogues per batch size")
    parser.add_argument("--benchmark", default="meld")
    parser.add_argument("--min-turns", type=int, default=2)
    parser.add_argument("--max-turns", type=int, default=6)
    parser.add_argument("--max-utterance-chars", type=int, default=120)
    parser.add_argument("--max-new-tokens", type=int, default=400)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if len(args.counts) != len(args.batches):
        parser.error("--counts needs one value per --batches value")

    benchmark = get_benchmark(args.benchmark)
    turns = (args.min_turns, args.max_turns)
    started = time.perf_counter()
    backend = load_embedded_backend(batch_size=max(args.batches), num_threads=args.threads)
    threads = torch.get_num_threads()
    print(f"model loaded in {time.perf_counter() - started:.1f} s; torch threads {threads}, "
          f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")

    def request(index: int) -> GenerationRequest:
        target = index % benchmark.num_labels
        regex = dialogue_regex(
            benchmark.speakers, benchmark.num_labels, *turns,
            max_utterance_chars=args.max_utterance_chars, target_label=target,
        )
        return GenerationRequest(
            build_messages(benchmark, "balanced", turns=turns, target_label=target),
            seed=index,
            params=SamplingParams(max_new_tokens=args.max_new_tokens),
            grammar=Grammar("regex", regex),
        )

    rows = []
    for batch, count in zip(args.batches, args.counts, strict=True):
        backend.preferred_batch_size = batch
        requests = [request(i) for i in range(count)]
        began = time.perf_counter()
        results = asyncio.run(backend.generate_batch(requests))
        seconds = time.perf_counter() - began
        tokens = sum(r.generated_tokens or 0 for r in results)
        clean = sum(
            r.finish_reason == "eos_token" and re.fullmatch(q.grammar.value, r.text) is not None
            for q, r in zip(requests, results, strict=True)
        )
        rows.append((batch, count, seconds, count / seconds * 60, tokens / seconds, clean))
        print(f"batch {batch:>3}: {count} dialogues in {seconds:.1f} s", flush=True)

    base = rows[0][3]
    print(f"\n{'batch':>5} {'dialogues':>9} {'seconds':>8} {'dial/min':>9} {'tok/s':>8} {'clean':>6} {'vs b1':>6}")
    for batch, count, seconds, per_minute, tokens_per_s, clean in rows:
        print(f"{batch:>5} {count:>9} {seconds:>8.1f} {per_minute:>9.2f} {tokens_per_s:>8.1f} "
              f"{clean:>3}/{count:<2} {per_minute / base:>6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
