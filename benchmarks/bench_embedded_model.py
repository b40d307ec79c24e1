"""The embedded SmolLM2's load times (first load against a cached one) and decode speed at 1 and 2 torch threads.

Why: the embedded model's cache and the quickstart's one-thread default rest on these two figures. The first load
dequantises the GGUF and writes the safetensors cache; later loads read the cache. On a CPU shared with other
work, torch's OpenMP threads spin-wait against each other and against the other work, so one thread can decode
faster than two. Both are measured in this one run, so the ratios share its conditions.

    python benchmarks/bench_embedded_model.py [--new-tokens 48] [--threads 1 2]

The first load uses a fresh temporary cache folder (never the user's cache). Decoding is one request of
``--new-tokens`` tokens without a grammar, the same seed and parameters at every thread count; the figure is
generated tokens per second.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time

import torch

from erc_synth.dataset_scripts.core.registry import get_benchmark
from erc_synth.generation.backends.base import GenerationRequest, SamplingParams
from erc_synth.generation.backends.embedded import load_embedded_backend
from erc_synth.generation.prompts import build_messages


def _timed_load(cache_dir: str) -> tuple[float, object]:
    start = time.perf_counter()
    backend = load_embedded_backend(cache_dir=cache_dir, batch_size=1)
    return time.perf_counter() - start, backend


def _tokens_per_second(backend, threads: int, new_tokens: int) -> float:
    torch.set_num_threads(threads)
    request = GenerationRequest(build_messages(get_benchmark("meld"), "natural", turns=(2, 4)), seed=13,
                                params=SamplingParams(max_new_tokens=new_tokens))
    start = time.perf_counter()
    result = asyncio.run(backend.generate_batch([request]))[0]
    return result.generated_tokens / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    original_threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory(prefix="erc-synth-bench-cache-") as cache_dir:
        first, _ = _timed_load(cache_dir)
        cached, backend = _timed_load(cache_dir)
        print(f"first load (dequantise the GGUF, write the cache): {first:7.2f} s")
        print(f"cached load (safetensors):                         {cached:7.2f} s   "
              f"first / cached = {first / cached:.1f}x")
        _tokens_per_second(backend, args.threads[0], 4)  # warm-up: first-call allocations
        rates = {threads: _tokens_per_second(backend, threads, args.new_tokens) for threads in args.threads}
    torch.set_num_threads(original_threads)
    base = rates[args.threads[0]]
    for threads, rate in rates.items():
        print(f"decode, {threads} thread(s): {rate:7.1f} tokens/s   ratio to {args.threads[0]} thread(s): "
              f"{rate / base:.2f}x")


if __name__ == "__main__":
    main()
