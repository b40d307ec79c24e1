"""GPU figures for the classifiers with roberta-large-sized models (random weights: timing does not need them).

Measured, each after warm-up steps, with AdamW and bf16 autocast (the Trainer's bf16 mode):
  * EmoBERTa-style: RobertaForSequenceClassification, batch 4 x 512 tokens (the paper's setting, every input at
    the full budget: a worst case, dynamic padding only shortens it). Steps/s, peak memory, and a MELD epoch
    estimate (9,989 training utterances / 4 per step). Goal: under 3 minutes on one H100.
  * CoMPM: batched (this project: batch 4, masks, padded memories) against batch size 1 (the reference code),
    the same examples (context 512 tokens, 4 memory utterances of 128 tokens); examples/s and peak memory.
Refuses to run without CUDA (exit 2) unless --tiny is given, which runs the same code with a tiny config on any
device (to check the script itself; its numbers mean nothing).

Run: python benchmarks/gpu_classifiers.py [--steps 20] [--warmup 5] [--tiny]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MELD_TRAIN_UTTERANCES = 9989


def roberta_config(tiny: bool):
    from transformers import RobertaConfig

    if tiny:
        return RobertaConfig(vocab_size=1000, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                             intermediate_size=64, max_position_embeddings=514)
    return RobertaConfig(vocab_size=50265, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                         intermediate_size=4096, max_position_embeddings=514, type_vocab_size=1)


def timed(step, steps: int, warmup: int, device) -> tuple[float, float]:
    """Seconds per step and peak GiB allocated over ``steps`` steps after ``warmup`` steps."""
    import torch

    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / 2**30
    else:
        peak = float("nan")
    return (time.perf_counter() - start) / steps, peak


def train_step(model, optimizer, batch, device):
    import torch

    def step():
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def measure_classifiers(tiny: bool = False, steps: int = 20, warmup: int = 5, encoder: str | None = None) -> dict:
    """EmoBERTa-style and CoMPM training steps: seconds per step, peak GiB, the MELD epoch that follows.

    ``encoder``: a Hub id or folder whose config (not weights) replaces the built-in roberta-large shape.
    """
    import torch
    from transformers import AutoConfig, RobertaForSequenceClassification

    from erc_synth.classifiers.compm import CompmConfig, CompmModel

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    config = AutoConfig.from_pretrained(encoder) if encoder else roberta_config(tiny)
    length, memory_slots, memory_length = (512, 4, 128) if not tiny else (64, 4, 16)
    generator = torch.Generator().manual_seed(0)
    result = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
              "encoder": encoder or ("tiny random RoBERTa" if tiny else "roberta-large shape (random weights)"),
              "hidden_size": config.hidden_size, "layers": config.num_hidden_layers, "precision": "bf16 autocast",
              "length": length}

    # EmoBERTa-style, batch 4 x 512.
    head_config = AutoConfig.from_pretrained(encoder) if encoder else roberta_config(tiny)
    head_config.num_labels = 7
    model = RobertaForSequenceClassification(head_config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-6)
    batch = {"input_ids": torch.randint(5, config.vocab_size, (4, length), generator=generator).to(device),
             "attention_mask": torch.ones(4, length, dtype=torch.long, device=device),
             "labels": torch.randint(0, 7, (4,), generator=generator).to(device)}
    seconds, peak = timed(train_step(model, optimizer, batch, device), steps, warmup, device)
    epoch = MELD_TRAIN_UTTERANCES / 4 * seconds
    result["emoberta"] = {"batch": 4, "steps_per_s": 1 / seconds, "s_per_step": seconds,
                          "peak_gib": None if peak != peak else peak, "meld_epoch_s": epoch,
                          "meld_epoch_goal_s": 180, "goal_met": epoch <= 180}
    del model, optimizer, batch
    if device.type == "cuda":
        torch.cuda.empty_cache()

    # CoMPM batched vs batch size 1 on the same 4 examples.
    compm = CompmModel(CompmConfig(encoder_config=config.to_dict(), num_labels=7)).to(device)
    optimizer = torch.optim.AdamW(compm.parameters(), lr=1e-6)
    examples = 4
    full = {
        "input_ids": torch.randint(5, config.vocab_size, (examples, length), generator=generator).to(device),
        "attention_mask": torch.ones(examples, length, dtype=torch.long, device=device),
        "memory_input_ids": torch.randint(5, config.vocab_size, (examples, memory_slots, memory_length),
                                          generator=generator).to(device),
        "memory_attention_mask": torch.ones(examples, memory_slots, memory_length, dtype=torch.long, device=device),
        "labels": torch.randint(0, 7, (examples,), generator=generator).to(device),
    }
    batched_seconds, batched_peak = timed(train_step(compm, optimizer, full, device), steps, warmup, device)
    singles = [{k: v[i:i + 1] for k, v in full.items()} for i in range(examples)]
    single_steps = [train_step(compm, optimizer, single, device) for single in singles]

    def one_at_a_time():
        for step in single_steps:
            step()

    single_seconds, single_peak = timed(one_at_a_time, steps, warmup, device)
    result["compm"] = {
        "batch": examples, "steps_per_s": 1 / batched_seconds, "examples_per_s": examples / batched_seconds,
        "peak_gib": None if batched_peak != batched_peak else batched_peak,
        "batch1_examples_per_s": examples / single_seconds,
        "batch1_peak_gib": None if single_peak != single_peak else single_peak,
        "batched_vs_batch1": single_seconds / batched_seconds,
        "meld_epoch_s": MELD_TRAIN_UTTERANCES / (examples / batched_seconds),
    }
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--tiny", action="store_true", help="tiny config on any device (checks the script only)")
    parser.add_argument("--encoder", default=None, help="Hub id or folder whose config replaces roberta-large's")
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available() and not args.tiny:
        print("gpu_classifiers: no CUDA device here; this benchmark needs a GPU (use --tiny to check the script "
              "on CPU)", file=sys.stderr)
        return 2
    result = measure_classifiers(args.tiny, args.steps, args.warmup, args.encoder)
    print(classifiers_markdown(result))
    return 0


def classifiers_markdown(result: dict) -> str:
    def gib(value):
        return "-" if value is None else f"{value:.1f}"

    emoberta, compm = result["emoberta"], result["compm"]
    return "\n".join([
        f"{result['device']}; encoder {result['encoder']} (hidden {result['hidden_size']}, {result['layers']} layers), "
        f"{result['precision']}, inputs of {result['length']} tokens",
        "",
        "| model | steps/s | examples/s | peak GiB | MELD epoch |",
        "|---|---:|---:|---:|---:|",
        f"| EmoBERTa-style, batch 4 | {emoberta['steps_per_s']:.2f} | {4 * emoberta['steps_per_s']:.1f} | "
        f"{gib(emoberta['peak_gib'])} | {emoberta['meld_epoch_s'] / 60:.1f} min "
        f"(goal <= 3 min: {'met' if emoberta['goal_met'] else 'not met'}) |",
        f"| CoMPM, batch 4 | {compm['steps_per_s']:.2f} | {compm['examples_per_s']:.1f} | {gib(compm['peak_gib'])} | "
        f"{compm['meld_epoch_s'] / 60:.1f} min |",
        f"| CoMPM, batch 1 (reference code) | {compm['batch1_examples_per_s']:.2f} | "
        f"{compm['batch1_examples_per_s']:.1f} | {gib(compm['batch1_peak_gib'])} | "
        f"{MELD_TRAIN_UTTERANCES / compm['batch1_examples_per_s'] / 60:.1f} min |",
        "",
        f"CoMPM batched / batch 1 throughput: {compm['batched_vs_batch1']:.2f}x. Every input at the full length: "
        "a worst case, dynamic padding only shortens it.",
    ])


if __name__ == "__main__":
    sys.exit(main())
