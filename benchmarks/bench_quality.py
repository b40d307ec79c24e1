"""Cost of the data-quality report on a 200-dialogue set: its cheap part, the two-sample test, the judge's ceiling.

The "synthetic" set is the last ``--dialogues`` dialogues of the real train split (the report's cost depends on
how much text there is, not on where it came from), compared with the rest of the train split and the test
split. Printed: seconds for the text and label measures alone, for the full report (MiniLM embeddings and
the cross-validated classifier included), optionally for the judge's kappa on the real test labels with a judge
already in ``--judge-cache`` (as a build with ``--audit train`` runs it), and the ratio of the total to the 60 s
goal.

Run: OMP_NUM_THREADS=2 python benchmarks/bench_quality.py --real-data DIR [--benchmark meld] [--dialogues 200]
     [--threads 2] [--judge-cache DIR]
"""

from __future__ import annotations

import argparse
import time

import torch

from erc_synth.classifiers.quality import QualitySettings, from_columns, quality_report
from erc_synth.dataset_scripts.core.environment import real_data_env
from erc_synth.dataset_scripts.core.registry import get_benchmark
from erc_synth.dataset_scripts.readers import load_reference

GOAL_S = 60.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real-data", default=real_data_env())
    parser.add_argument("--benchmark", default="meld")
    parser.add_argument("--dialogues", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--judge-cache", default=None, help="folder holding a cached train judge")
    args = parser.parse_args()
    if not args.real_data:
        parser.error("--real-data DIR (or ERC_SYNTH_REAL_DATA) is required")
    torch.set_num_threads(args.threads)
    benchmark = get_benchmark(args.benchmark)
    real = load_reference(benchmark.name, args.real_data)
    train = from_columns(real["train"]["utterances"], real["train"]["emotions"])
    test = from_columns(real["test"]["utterances"], real["test"]["emotions"])
    synthetic, train = train[-args.dialogues:], train[:-args.dialogues]
    utterances = sum(len(d.utterances) for d in synthetic)

    start = time.perf_counter()
    quality_report(synthetic, benchmark, real_train=train, real_test=test, settings=QualitySettings(c2st=False))
    cheap = time.perf_counter() - start
    start = time.perf_counter()
    report = quality_report(synthetic, benchmark, real_train=train, real_test=test)
    full = time.perf_counter() - start
    judge = 0.0
    if args.judge_cache:
        from erc_synth.classifiers.quality.kappa import judge_real_kappa

        start = time.perf_counter()
        ceiling = judge_real_kappa("train", benchmark, args.real_data, cache_dir=args.judge_cache)
        judge = time.perf_counter() - start
        print(f"judge kappa on the real test labels: {ceiling['kappa']:.3f} over {ceiling['num_utterances']} "
              f"utterances, {judge:.1f} s")
    total = full + judge
    print(f"{len(synthetic)} dialogues, {utterances} utterances, {args.threads} threads")
    print(f"text and label measures: {cheap:.2f} s")
    print(f"full report (two-sample test on {report['c2st_auc']['n']} utterances per side): {full:.1f} s "
          f"({full / max(cheap, 1e-9):.0f}x the cheap part)")
    print(f"total {total:.1f} s = {total / GOAL_S:.2f}x the {GOAL_S:.0f} s goal")


if __name__ == "__main__":
    main()
