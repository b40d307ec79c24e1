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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--tiny", action="store_true", help="tiny config on any device (checks the script only)")
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available() and not args.tiny:
        print("gpu_classifiers: no CUDA device here; this benchmark needs a GPU (use --tiny to check the script "
              "on CPU)", file=sys.stderr)
        return 2
    from transformers import RobertaForSequenceClassification

    from erc_synth.classifiers.compm import CompmConfig, CompmModel

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    config = roberta_config(args.tiny)
    length, memory_slots, memory_length = (512, 4, 128) if not args.tiny else (64, 4, 16)
    generator = torch.Generator().manual_seed(0)
    print(f"device: {torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}; "
          f"encoder: hidden {config.hidden_size}, {config.num_hidden_layers} layers (random weights), bf16 autocast")

    # EmoBERTa-style, batch 4 x 512.
    head_config = roberta_config(args.tiny)
    head_config.num_labels = 7
    model = RobertaForSequenceClassification(head_config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-6)
    batch = {"input_ids": torch.randint(5, config.vocab_size, (4, length), generator=generator).to(device),
             "attention_mask": torch.ones(4, length, dtype=torch.long, device=device),
             "labels": torch.randint(0, 7, (4,), generator=generator).to(device)}
    seconds, peak = timed(train_step(model, optimizer, batch, device), args.steps, args.warmup, device)
    epoch = MELD_TRAIN_UTTERANCES / 4 * seconds
    print(f"EmoBERTa-style 4 x {length}: {1 / seconds:.2f} steps/s ({seconds:.3f} s/step), peak {peak:.1f} GiB; "
          f"MELD epoch ({MELD_TRAIN_UTTERANCES} utterances) ~ {epoch / 60:.1f} min at full length "
          f"(goal < 3 min: {'met' if epoch < 180 else 'not met'})")
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
    batched_seconds, batched_peak = timed(train_step(compm, optimizer, full, device), args.steps, args.warmup, device)
    singles = [{k: v[i:i + 1] for k, v in full.items()} for i in range(examples)]
    steps = [train_step(compm, optimizer, single, device) for single in singles]

    def one_at_a_time():
        for step in steps:
            step()

    single_seconds, single_peak = timed(one_at_a_time, args.steps, args.warmup, device)
    print(f"CoMPM batched x{examples}: {examples / batched_seconds:.2f} examples/s "
          f"({batched_seconds:.3f} s/step), peak {batched_peak:.1f} GiB")
    print(f"CoMPM batch 1 (reference): {examples / single_seconds:.2f} examples/s "
          f"({single_seconds / examples:.3f} s/step), peak {single_peak:.1f} GiB")
    print(f"CoMPM batched / batch 1 throughput: {single_seconds / batched_seconds:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
