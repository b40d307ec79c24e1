"""CPU figures for the label-fidelity audit: how long the ``train`` judge takes, and audit throughput.

The judge is trained from scratch into a fresh cache folder (or ``--cache-dir``; an existing judge there is
reused and its training time is then not measured) with the default ``JudgeSettings`` unless limits are given.
Then the real test split (first ``--audit-dialogues`` dialogues) is audited twice with the judge now cached:
printed are the training time, the audit's utterances per second, and the ratio of the first audit's time
(training included) to a cached audit's: what the cache saves.

Run: OMP_NUM_THREADS=2 python benchmarks/bench_audit.py --real-data DIR [--benchmark meld] [--threads 2]
     [--limit-train N] [--max-steps N] [--audit-dialogues N] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from datasets import DatasetDict

from erc_synth.classifiers.audit import JudgeSettings, audit_dataset
from erc_synth.classifiers.data import load_real
from erc_synth.dataset_scripts.core.environment import real_data_env
from erc_synth.dataset_scripts.core.registry import get_benchmark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real-data", default=real_data_env())
    parser.add_argument("--benchmark", default="meld")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit-train", type=int, default=None)
    parser.add_argument("--max-steps", type=int, default=-1)
    parser.add_argument("--audit-dialogues", type=int, default=100)
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args()
    if not args.real_data:
        parser.error("--real-data DIR (or ERC_SYNTH_REAL_DATA) is required")
    torch.set_num_threads(args.threads)
    benchmark = get_benchmark(args.benchmark)
    real_data = Path(args.real_data)
    settings = JudgeSettings(limit_train=args.limit_train, max_steps=args.max_steps)
    test = load_real(benchmark, real_data)["test"]
    audited = DatasetDict({"test": test.select(range(min(args.audit_dialogues, len(test))))})
    with tempfile.TemporaryDirectory() as scratch:
        cache = Path(args.cache_dir) if args.cache_dir else Path(scratch)
        start = time.perf_counter()
        first = audit_dataset(audited, benchmark, "train", real_data=real_data, cache_dir=cache,
                              judge_settings=settings)
        first_s = time.perf_counter() - start
        start = time.perf_counter()
        cached = audit_dataset(audited, benchmark, "train", real_data=real_data, cache_dir=cache,
                               judge_settings=settings)
        cached_s = time.perf_counter() - start
    utterances = cached.summary["num_utterances"]
    trained = not first.summary["judge"]["reused_cache"]
    print(f"benchmark {benchmark.name}, {args.threads} torch threads, judge settings {settings}")
    print(f"judge: weighted F1 on the real test split {first.summary['judge']['weighted_f1']:.4f}")
    if trained:
        print(f"judge training + first audit: {first_s:.1f} s (training about {first_s - cached_s:.1f} s)")
    else:
        print(f"judge reused from {cache} (training not measured); first audit {first_s:.1f} s")
    print(f"cached audit of {utterances} utterances: {cached_s:.1f} s, {utterances / cached_s:.1f} utterances/s")
    print(f"first audit / cached audit time ratio: {first_s / cached_s:.1f}x")
    print(f"kappa of the real labels against this judge: {cached.summary['kappa']:.3f}")


if __name__ == "__main__":
    main()
