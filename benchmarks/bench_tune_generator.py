"""Training speed of LoRA against full fine-tuning of the embedded SmolLM2-135M, and the time of one MELD epoch.

Why: ``tune-generator`` defaults to LoRA because it should train faster than updating all 135M weights (no
gradients or Adam states for the frozen weights); this measures by how much, with the Trainer, collator and
examples ``tune-generator`` itself uses, both methods in this one run.

    OMP_NUM_THREADS=1 python benchmarks/bench_tune_generator.py --real-data ../shared/data [--steps 4]

Each method trains ``--steps`` optimizer steps on the same first MELD train examples (batch ``--batch-size``);
the first step is a warm-up and is not timed. Tokens are the non-padding tokens of the timed batches. The epoch
estimate is the whole MELD tuning set's tokens divided by the LoRA rate (and by the full rate).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer, DataCollatorForSeq2Seq, TrainerCallback

from erc_synth.dataset_scripts.core.registry import get_benchmark
from erc_synth.generation.chat_format import resolve_chat_format
from erc_synth.generation.tuning import TuneSettings, make_trainer, prepare_model, resolve_base, tokenise
from erc_synth.generation.tuning_data import load_tune_set


class _CountingCollator:
    """The tuning collator, counting the non-padding tokens of each batch it makes."""

    def __init__(self, tokenizer: Any) -> None:
        self.inner = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
        self.tokens: list[int] = []

    def __call__(self, features: list[dict]) -> dict:
        batch = self.inner(features)
        self.tokens.append(int(batch["attention_mask"].sum()))
        return batch


class _StepClock(TrainerCallback):
    def __init__(self) -> None:
        self.ends: list[float] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.ends.append(time.perf_counter())


def _rate(method: str, rows: list[dict], tokenizer: Any, steps: int, batch_size: int) -> tuple[float, int]:
    """Tokens per second of ``steps - 1`` timed steps, and the trainable parameter count."""
    settings = TuneSettings(method=method, max_steps=steps, batch_size=batch_size, learning_rate=1e-4)
    model = prepare_model(resolve_base(None), settings)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    collator, clock = _CountingCollator(tokenizer), _StepClock()
    with tempfile.TemporaryDirectory(prefix="erc-synth-bench-tune-") as work:
        trainer = make_trainer(model, tokenizer, rows, settings, Path(work), save_steps=10 ** 9, device="cpu",
                               collator=collator)
        trainer.add_callback(clock)
        trainer.train()
    timed_tokens = sum(collator.tokens[1:steps])
    return timed_tokens / (clock.ends[steps - 1] - clock.ends[0]), trainable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real-data", required=True)
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps per method (the first is untimed)")
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args()
    if args.steps < 2:
        parser.error("--steps must be at least 2 (the first step is a warm-up)")
    base = resolve_base(None)
    tokenizer = AutoTokenizer.from_pretrained(base.folder)
    chat_format = resolve_chat_format("auto", base.given, tokenizer)
    meld = load_tune_set(get_benchmark("meld"), args.real_data)
    all_rows, too_long = tokenise(meld, tokenizer, chat_format, TuneSettings().max_length)
    rows = all_rows[: args.steps * args.batch_size]
    epoch_tokens = sum(len(r["input_ids"]) for r in all_rows)
    print(f"torch threads {torch.get_num_threads()}; {args.steps} steps of batch {args.batch_size} per method; "
          f"MELD tuning set: {len(all_rows)} examples, {epoch_tokens} tokens ({too_long} over the length limit)")
    lora, lora_params = _rate("lora", rows, tokenizer, args.steps, args.batch_size)
    full, full_params = _rate("full", rows, tokenizer, args.steps, args.batch_size)
    print(f"full fine-tuning: {full:8.1f} tokens/s ({full_params:,} trainable parameters)")
    print(f"LoRA (r=8):       {lora:8.1f} tokens/s ({lora_params:,} trainable parameters)")
    print(f"LoRA / full = {lora / full:.2f}x")
    print(f"estimated wall time of one MELD epoch: LoRA {epoch_tokens / lora / 60:.1f} min, "
          f"full {epoch_tokens / full / 60:.1f} min")


if __name__ == "__main__":
    main()
