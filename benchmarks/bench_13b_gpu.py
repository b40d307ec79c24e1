"""Decode throughput of the in-process backend on a GPU with a 13B-shaped Llama, against the bandwidth floor.

Why: the paper's generator is Vicuna-13B; on one GPU a decode step must at least read every weight once, so
``bytes of weights / memory bandwidth`` is the fastest a step can be (plus the KV cache it reads). Batch 1
sits near that floor per step but makes one token per step; batching makes B tokens per step for little
more time. This prints both, and the ratio of the best batch to batch 1, in one run.

    python benchmarks/bench_13b_gpu.py                       # needs CUDA and ~40 GB of GPU memory
    python benchmarks/bench_13b_gpu.py --batches 1 16 64 --new-tokens 64
    python benchmarks/bench_13b_gpu.py --smoke-cpu           # checks the code path on CPU with a tiny model;
                                                             # its figures mean nothing

The weights are random (bf16, Llama-2-13B / Vicuna-13B v1.5 shape: 40 layers, hidden 5120, MLP 13824, 40
heads, vocabulary 32000), which changes nothing about speed. Sampling uses the reference parameters
(temperature 0.7, top-k 10000, typical-p 0.995) through the backend's own decoding loop; EOS is disabled so
every row decodes exactly ``--new-tokens`` tokens. No grammar: a random model's vocabulary cannot spell a
dialogue, and the grammar's CPU cost per token is measured by bench_inprocess_batch.py.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from erc_synth.generation.backends.base import SamplingParams
from erc_synth.generation.backends.transformers_backend import TransformersBackend

LLAMA_13B = {
    "hidden_size": 5120, "intermediate_size": 13824, "num_hidden_layers": 40, "num_attention_heads": 40,
    "num_key_value_heads": 40, "vocab_size": 32000, "max_position_embeddings": 4096, "rms_norm_eps": 1e-5,
}
SMOKE = {**LLAMA_13B, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
         "num_key_value_heads": 4}
#: Peak memory bandwidth (GB/s) by device-name fragment, from the vendors' data sheets; first match wins.
BANDWIDTH_GBS = (
    ("H200", 4800), ("H100 NVL", 3900), ("H100 PCIe", 2000), ("H100", 3350), ("A100-SXM4-80GB", 2039),
    ("A100 80GB PCIe", 1935), ("A100", 1555), ("L40S", 864), ("L4", 300),
)


def spec_bandwidth_gbs(device_name: str) -> float | None:
    return next((gbs for fragment, gbs in BANDWIDTH_GBS if fragment in device_name), None)


def measured_copy_bandwidth_gbs(device: str, gib: float = 2.0) -> float:
    """Device-to-device copy bandwidth (bytes read + written per second), what a decode step can hope for."""
    source = torch.empty(int(gib * 2**30), dtype=torch.uint8, device=device)
    target = torch.empty_like(source)
    for _ in range(3):
        target.copy_(source)
    torch.cuda.synchronize()
    began = time.perf_counter()
    repeats = 10
    for _ in range(repeats):
        target.copy_(source)
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - began) / repeats
    del source, target
    torch.cuda.empty_cache()
    return 2 * gib * 2**30 / seconds / 1e9


def word_level_tokenizer(vocab_size: int):
    """A tokenizer whose token i is the word ``t<i>``, so prompts of chosen token ids are easy to write."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.WordLevel(vocab={f"t{i}": i for i in range(vocab_size)}, unk_token="t0"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="t0", eos_token="t1", unk_token="t0")


def build_model(shape: dict, device: str, dtype: torch.dtype):
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = LlamaConfig(**shape, pad_token_id=0, bos_token_id=1, eos_token_id=1)
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return model.eval()


def measure_decode(device: str, shape: dict, dtype: torch.dtype, batches: list[int], prompt_tokens: int,
                   new_tokens: int, on_row=None) -> dict:
    """Decode steps at each batch size against the bandwidth floor; ``on_row(result)`` after each batch.

    Stops at the first batch that runs out of GPU memory. Returns the device, the floor inputs and one row per
    batch (seconds per step, tokens/s, the floor with and without the KV cache, peak GiB).
    """
    model = build_model(shape, device, dtype)
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    kv_bytes_per_token = 2 * shape["num_hidden_layers"] * shape["num_key_value_heads"] * (
        shape["hidden_size"] // shape["num_attention_heads"]) * torch.finfo(dtype).bits // 8
    tokenizer = word_level_tokenizer(shape["vocab_size"])
    backend = TransformersBackend.from_objects(model, tokenizer, model_id="random-llama-13b-shape",
                                               chat_format="raw", model_sha="random")
    backend.eos_token_ids = [-1]  # never stop early: every row decodes exactly new_tokens tokens
    params = SamplingParams(max_new_tokens=new_tokens)
    one_token = SamplingParams(max_new_tokens=1)
    if device == "cuda":
        name = torch.cuda.get_device_name()
        spec = spec_bandwidth_gbs(name)
        copy = measured_copy_bandwidth_gbs(device)
        floor_bandwidth = spec or copy
    else:
        name, spec, copy, floor_bandwidth = "cpu (smoke run)", None, None, 50.0
    result = {"device": name, "spec_bandwidth_gbs": spec, "copy_bandwidth_gbs": copy,
              "floor_bandwidth_gbs": floor_bandwidth, "weight_gb": weight_bytes / 1e9, "dtype": str(dtype),
              "kv_mb_per_token": kv_bytes_per_token / 1e6, "prompt_tokens": prompt_tokens, "new_tokens": new_tokens,
              "rows": []}
    generator = torch.Generator().manual_seed(0)
    for batch in batches:
        prompts = [" ".join(f"t{i}" for i in torch.randint(2, shape["vocab_size"], (prompt_tokens,),
                                                            generator=generator).tolist()) for _ in range(batch)]
        seeds = list(range(batch))
        backend.max_batch = batch
        try:
            backend.generate_prompts(prompts, seeds, one_token)  # warm-up (kernels, allocator)
            if device == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            began = time.perf_counter()
            backend.generate_prompts(prompts, seeds, one_token)
            prefill = time.perf_counter() - began
            began = time.perf_counter()
            backend.generate_prompts(prompts, seeds, params)
            total = time.perf_counter() - began
        except torch.OutOfMemoryError:
            result["stopped"] = f"batch {batch}: out of GPU memory"
            break
        step_seconds = max(total - prefill, 1e-9) / (new_tokens - 1)
        context = prompt_tokens + new_tokens / 2
        floor = weight_bytes / floor_bandwidth / 1e9
        floor_kv = (weight_bytes + batch * context * kv_bytes_per_token) / floor_bandwidth / 1e9
        peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
        result["rows"].append({"batch": batch, "prefill_s": prefill, "step_s": step_seconds,
                               "tokens_per_s": batch / step_seconds, "floor_step_s": floor,
                               "floor_kv_step_s": floor_kv, "of_floor": floor_kv / step_seconds, "peak_gib": peak})
        if on_row:
            on_row(result)
    rows = result["rows"]
    if rows:
        best = max(rows, key=lambda row: row["tokens_per_s"])
        result["best_batch"] = best["batch"]
        result["best_vs_batch1"] = best["tokens_per_s"] / rows[0]["tokens_per_s"]
        result["batch1_ceiling_tokens_per_s"] = 1 / rows[0]["floor_step_s"]
    del model, backend
    if device == "cuda":
        torch.cuda.empty_cache()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 16, 32, 64, 128])
    parser.add_argument("--prompt-tokens", type=int, default=256, help="about the length of the dialogue prompts")
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--tokens-per-dialogue", type=int, default=350, help="to express tokens/s as dialogues/min")
    parser.add_argument("--smoke-cpu", action="store_true", help="tiny model on CPU, to check the code path only")
    args = parser.parse_args()

    if args.smoke_cpu:
        device, shape, dtype = "cpu", SMOKE, torch.float32
    elif not torch.cuda.is_available():
        print("bench_13b_gpu: needs a CUDA GPU and none is visible (torch.cuda.is_available() is False); "
              "run it on a GPU machine, or pass --smoke-cpu to check the code path.", file=sys.stderr)
        return 2
    else:
        device, shape, dtype = "cuda", LLAMA_13B, torch.bfloat16

    def show(result: dict) -> None:
        row = result["rows"][-1]
        print(f"batch {row['batch']}: prefill {row['prefill_s']:.2f} s, decode step {row['step_s'] * 1e3:.1f} ms",
              flush=True)

    result = measure_decode(device, shape, dtype, args.batches, args.prompt_tokens, args.new_tokens, on_row=show)
    print(f"{result['device']}: spec bandwidth {result['spec_bandwidth_gbs'] or 'unknown'} GB/s; weights "
          f"{result['weight_gb']:.2f} GB ({dtype}); KV cache {result['kv_mb_per_token']:.2f} MB per token")
    if not result["rows"]:
        return 1
    print(decode_table(result, args.tokens_per_dialogue))
    return 0


def decode_table(result: dict, tokens_per_dialogue: int = 350) -> str:
    """The rows as a Markdown table, with the best batch against batch 1 underneath."""
    lines = ["| batch | step ms | floor ms | +KV ms | of floor | tokens/s | dialogues/min | vs batch 1 | peak GiB |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    base = result["rows"][0]["tokens_per_s"]
    for row in result["rows"]:
        peak = f"{row['peak_gib']:.1f}" if row["peak_gib"] is not None else "-"
        lines.append(f"| {row['batch']} | {row['step_s'] * 1e3:.1f} | {row['floor_step_s'] * 1e3:.2f} | "
                     f"{row['floor_kv_step_s'] * 1e3:.2f} | {row['of_floor']:.0%} | {row['tokens_per_s']:.0f} | "
                     f"{row['tokens_per_s'] * 60 / tokens_per_dialogue:.1f} | {row['tokens_per_s'] / base:.1f} | "
                     f"{peak} |")
    lines.append(f"\nBest batch {result['best_batch']}: {result['best_vs_batch1']:.1f}x batch 1; batch-1 ceiling from "
                 f"the weights-only floor: {result['batch1_ceiling_tokens_per_s']:.0f} tokens/s.")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
