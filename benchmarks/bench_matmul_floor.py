"""This machine's fp32 matrix-multiply floor, and how much of it the in-process decoder uses, in one run.

Why: the embedded SmolLM2-135M decodes at some tokens/s; whether that is near what the cores can do or far from
it decides whether to optimise the decoding loop or to use more cores. A decoding step is, in FLOPs, almost only
the weight products of every layer (attention over a few hundred cached positions adds about 2%); so the floor
is torch's own throughput on exactly those products, at the step's row count, and on a large square product
(the most a core does in a matmul).

    python benchmarks/bench_matmul_floor.py
    python benchmarks/bench_matmul_floor.py --batches 1 16 32 --tokens 48 --threads 1 2

It prints:

1. GFLOP/s of ``torch.nn.functional.linear`` at the decoder's shapes (one decoding step's products: q, k, v,
   o, gate, up, down for every layer, and the output head) for ``--rows`` rows, and of a ``--square`` square
   product, at each ``--threads`` count;
2. decoder tokens/s (the quickstart's sampling, ``--tokens`` new tokens a row, EOS ignored) at each
   ``--batches`` row count, with and without the dialogue grammar, and ``model.generate`` at the same rows;
   their GFLOP/s at the model's weight FLOPs per token (2 x the weights of its linear layers, about 0.27 GFLOP),
   and that as a share of each floor of table 1 at one thread (the decoder runs on one); ``--rounds`` rounds
   with the engines interleaved, each one's best round reported (the cores may be shared).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import torch
import torch.nn.functional as F

from erc_synth.dataset_scripts.core.registry import get_benchmark
from erc_synth.generation.backends.base import GenerationRequest, Grammar, SamplingParams
from erc_synth.generation.backends.embedded import load_embedded_backend
from erc_synth.generation.grammar import dialogue_regex
from erc_synth.generation.prompts import build_messages

#: The quickstart preset's sampling parameters (erc_synth/presets/quickstart.yaml).
QUICKSTART = SamplingParams(temperature=0.7, top_p=1.0, top_k=10000, typical_p=0.995, repetition_penalty=1.15,
                            max_new_tokens=320)


def step_shapes(config: Any) -> list[tuple[int, int, int]]:
    """(in features, out features, count) of every weight product in one decoding step of a Llama model."""
    hidden, inter = config.hidden_size, config.intermediate_size
    kv = config.num_key_value_heads * (hidden // config.num_attention_heads)
    layers = config.num_hidden_layers
    return [(hidden, hidden, 2 * layers), (hidden, kv, 2 * layers), (hidden, inter, 2 * layers),
            (inter, hidden, layers), (hidden, config.vocab_size, 1)]


def flops_per_token(shapes: list[tuple[int, int, int]]) -> float:
    return float(sum(2 * fan_in * fan_out * count for fan_in, fan_out, count in shapes))


def best_seconds(run: Any, repeats: int) -> float:
    run()  # warm-up: allocation, kernel choice
    best = float("inf")
    for _ in range(repeats):
        began = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - began)
    return best


def step_floor(shapes: list[tuple[int, int, int]], rows: int, repeats: int) -> float:
    """GFLOP/s of one step's weight products at ``rows`` rows (each weight its own tensor, as in the model)."""
    weights = [(torch.randn(rows, fan_in), [torch.randn(fan_out, fan_in) for _ in range(count)])
               for fan_in, fan_out, count in shapes]

    def step() -> None:
        for x, group in weights:
            for weight in group:
                F.linear(x, weight)

    return rows * flops_per_token(shapes) / best_seconds(step, repeats) / 1e9


def square_floor(size: int, repeats: int) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    return 2 * size**3 / best_seconds(lambda: a @ b, repeats) / 1e9


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=16, help="rows of table 1's decoder-shape products")
    parser.add_argument("--square", type=int, default=2048, help="side of table 1's square product")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch threads of table 1")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per measurement (best counts)")
    parser.add_argument("--batches", type=int, nargs="+", default=[16], help="decoder row counts of table 2")
    parser.add_argument("--tokens", type=int, default=48, help="new tokens per row in table 2")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of table 2 (engines interleaved, best counts)")
    args = parser.parse_args()

    backend = load_embedded_backend(num_threads=1)
    model, tokenizer = backend.model, backend.tokenizer
    shapes = step_shapes(model.config)
    per_token = flops_per_token(shapes)
    print(f"cpus {os.cpu_count()}, load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}, "
          f"torch {torch.__version__}, python {sys.version.split()[0]}; {per_token / 1e9:.3f} GFLOP a token",
          flush=True)

    floors: dict[int, tuple[float, float]] = {}
    for threads in args.threads:
        torch.set_num_threads(threads)
        floors[threads] = (step_floor(shapes, args.rows, args.repeats), square_floor(args.square, args.repeats))
        print(f"threads {threads}: decoder shapes {floors[threads][0]:.1f} GFLOP/s, "
              f"square {floors[threads][1]:.1f} GFLOP/s", flush=True)
    torch.set_num_threads(1)

    benchmark = get_benchmark("meld")
    turns = (4, 6)
    fixed = SamplingParams(**{**QUICKSTART.to_dict(), "max_new_tokens": args.tokens})

    def request(index: int) -> GenerationRequest:
        target = index % benchmark.num_labels
        regex = dialogue_regex(benchmark.speakers, benchmark.num_labels, *turns, max_utterance_chars=120,
                               target_label=target, label_format="word_first", label_names=benchmark.labels)
        return GenerationRequest(build_messages(benchmark, "balanced", turns=turns, target_label=target,
                                                version="v2", label_format="word_first", seed=index),
                                 seed=index, params=fixed, grammar=Grammar("regex", regex))

    special = backend.chat_format.add_special_tokens
    backend.generate_prompts(["warm-up"], [0], fixed, [request(0).grammar])  # compile the grammar outside
    backend.eos_token_ids = [-1]  # every row decodes exactly --tokens tokens
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token_id = backend.pad_token_id
    best: dict[tuple[str, int], float] = {}
    for round_ in range(args.rounds):  # the engines interleaved, each one's best round counts
        for rows in args.batches:
            requests = [request(i) for i in range(rows)]
            prompts = [backend.chat_format.render(q.messages) for q in requests]
            backend.max_batch = rows
            encoded = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=special)
            for name, grammar in (("decoder", False), ("decoder + grammar", True)):
                began = time.perf_counter()
                results = backend.generate_prompts(prompts, [q.seed for q in requests], fixed,
                                                   [q.grammar if grammar else None for q in requests],
                                                   add_special_tokens=special)
                rate = sum(r.generated_tokens for r in results) / (time.perf_counter() - began)
                best[name, rows] = max(best.get((name, rows), 0.0), rate)
                print(f"round {round_ + 1}, {name}, {rows} rows: {rate:.1f} tok/s", flush=True)
            began = time.perf_counter()
            with torch.inference_mode():
                model.generate(**encoded, do_sample=True, temperature=fixed.temperature, top_k=fixed.top_k,
                               typical_p=fixed.typical_p, repetition_penalty=fixed.repetition_penalty,
                               max_new_tokens=args.tokens, min_new_tokens=args.tokens,
                               pad_token_id=backend.pad_token_id)
            rate = rows * args.tokens / (time.perf_counter() - began)
            best["model.generate", rows] = max(best.get(("model.generate", rows), 0.0), rate)
            print(f"round {round_ + 1}, model.generate, {rows} rows: {rate:.1f} tok/s", flush=True)
    decoded = [(name, rows, rate) for (name, rows), rate in best.items()]

    print(f"\n1. fp32 matmul floor (best of {args.repeats}): GFLOP/s")
    shaped_header, square_header = f"decoder shapes, {args.rows} rows", f"square {args.square}"
    print(f"{'threads':>7} {shaped_header:>26} {square_header:>12} {'shapes/square':>14}")
    for threads, (shaped, square) in floors.items():
        print(f"{threads:>7} {shaped:>26.1f} {square:>12.1f} {shaped / square:>13.2f}x")
    one_shaped, one_square = floors.get(1, next(iter(floors.values())))
    print(f"\n2. decoder at {per_token / 1e9:.3f} GFLOP a token (one thread), as a share of the one-thread floors")
    print(f"{'engine':>18} {'rows':>5} {'tok/s':>8} {'GFLOP/s':>8} {'of shapes':>10} {'of square':>10}")
    for name, rows, rate in decoded:
        gflops = rate * per_token / 1e9
        print(f"{name:>18} {rows:>5} {rate:>8.1f} {gflops:>8.2f} {gflops / one_shaped:>9.1%} "
              f"{gflops / one_square:>9.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
