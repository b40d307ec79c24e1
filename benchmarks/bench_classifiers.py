"""CPU figures for the classifiers: CoMPM batched (masks, padded memories) against batch size 1 (the reference).

Both modes train on the same examples with the same tiny random encoder (built in-process, no download); the
batched mode pads each batch to its longest context and its largest memory, the batch-1 mode runs one example
per step as the reference CoMPM code does. Printed: training examples per second of each, their ratio, and the
largest logit difference between batched and one-at-a-time inference (should be ~1e-6: masking makes batching
invisible). Also EmoBERTa-style examples/s with dynamic padding vs padding every input to max_length.

Run: python benchmarks/bench_classifiers.py [--examples 256] [--batch-size 16] [--hidden 64] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import torch  # noqa: E402
from datasets import DatasetDict  # noqa: E402
from helpers.tiny_encoders import TOY_WORDS, build_encoder, toy_dialogues  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from erc_synth.classifiers.architectures import get_architecture  # noqa: E402
from erc_synth.dataset_scripts.core.registry import get_benchmark  # noqa: E402


def train_rate(model, collate, rows, batch_size: int, pad_to: int | None = None) -> float:
    """Training examples per second over ``rows`` (one pass, AdamW), after one warm-up step."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()

    def step(chunk):
        batch = collate(chunk)
        if pad_to:
            pad = pad_to - batch["input_ids"].shape[1]
            batch["input_ids"] = torch.nn.functional.pad(batch["input_ids"], (0, pad), value=collate.pad_id)
            batch["attention_mask"] = torch.nn.functional.pad(batch["attention_mask"], (0, pad), value=0)
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    step(rows[:batch_size])
    start = time.perf_counter()
    for first in range(0, len(rows), batch_size):
        step(rows[first:first + batch_size])
    return len(rows) / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    meld = get_benchmark("meld")
    with tempfile.TemporaryDirectory() as tmp:
        encoder = str(build_encoder(Path(tmp) / "enc", TOY_WORDS, "roberta", hidden=args.hidden))
        tokenizer = AutoTokenizer.from_pretrained(encoder)
        dialogues = DatasetDict(train=toy_dialogues(meld, args.examples, 0))

        compm = get_architecture("compm")
        options = compm.options({"max_length": 128, "max_memory_length": 32, "max_memory_utterances": 4})
        rows = list(compm.prepare(dialogues, tokenizer, **options)["train"])[: args.examples]
        collate = compm.collator(tokenizer)
        model = compm.build_model(encoder, meld.num_labels, meld.labels, **options)
        model.eval()
        with torch.no_grad():
            batched = model(**collate(rows[:32])).logits
            single = torch.cat([model(**collate([row])).logits for row in rows[:32]])
        difference = float((batched - single).abs().max())
        batched_rate = train_rate(model, collate, rows, args.batch_size)
        single_rate = train_rate(model, collate, rows, 1)
        print(f"CoMPM (hidden {args.hidden}, {len(rows)} examples, {args.threads} thread(s))")
        print(f"  batched x{args.batch_size}: {batched_rate:8.1f} examples/s")
        print(f"  batch 1 (reference): {single_rate:8.1f} examples/s")
        print(f"  ratio batched / batch 1: {batched_rate / single_rate:.2f}x")
        print(f"  max |logit difference| batched vs one at a time: {difference:.2e}")

        emoberta = get_architecture("emoberta")
        options = emoberta.options({"max_length": 128})
        rows = list(emoberta.prepare(dialogues, tokenizer, **options)["train"])[: args.examples]
        collate = emoberta.collator(tokenizer)
        model = emoberta.build_model(encoder, meld.num_labels, meld.labels)
        dynamic = train_rate(model, collate, rows, args.batch_size)
        fixed = train_rate(model, collate, rows, args.batch_size, pad_to=128)
        lengths = [len(r["input_ids"]) for r in rows]
        print(f"EmoBERTa-style (mean input {sum(lengths) / len(lengths):.0f} tokens, budget 128)")
        print(f"  dynamic padding: {dynamic:8.1f} examples/s; padded to 128: {fixed:8.1f} examples/s; "
              f"ratio {dynamic / fixed:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
