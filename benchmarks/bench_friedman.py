"""How fast are the exact Friedman rank-sum p-values? Prints timings and ratios measured in this one run.

    python benchmarks/bench_friedman.py

Goals: one pairwise p-value at k = n = 100 well under a second; all 36 pairs at k = n = 9 in
milliseconds. Every "cold" figure clears the caches first, so it is the cost a fresh process pays; "warm" is
the same call again with the per-(k, n) distribution / per-(d, k, n) tails cached.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np

from erc_synth.evaluate_metrics.erc_metrics import erc_metrics as module
from erc_synth.evaluate_metrics.erc_metrics import (
    exact_critical_difference,
    exact_rank_sum_pvalue,
    friedman_test,
    rank_sum_difference_distribution,
)


def median_seconds(call: Callable[[], object], repeats: int, cold: bool) -> float:
    """Median wall time of ``call`` over ``repeats`` runs, clearing caches before each one when ``cold``."""
    times = []
    for _ in range(repeats):
        if cold:
            module._clear_caches()
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    print("Exact Friedman rank-sum p-values (Eisinga et al. 2017), median wall time\n")

    one_p = median_seconds(lambda: exact_rank_sum_pvalue(100, 100, 100), repeats=7, cold=True)
    value = exact_rank_sum_pvalue(100, 100, 100)
    print(f"k = n = 100, one p-value P(|D| >= 100) = {value:.7f} (closed form, cold): {one_p * 1e3:8.2f} ms")
    print(f"    goal < 1 s: {1.0 / one_p:6.1f}x under the goal")
    full = median_seconds(lambda: rank_sum_difference_distribution(100, 100), repeats=1, cold=True)
    print(f"k = n = 100, whole distribution by convolution (cold):        {full * 1e3:8.2f} ms")
    print(f"    closed form for one value is {full / one_p:6.1f}x faster than building every tail")
    cd = median_seconds(lambda: exact_critical_difference(100, 100, 0.05), repeats=3, cold=True)
    print(f"k = n = 100, exact critical difference at alpha 0.05 (cold):  {cd * 1e3:8.2f} ms")

    scores = np.random.default_rng(0).random((9, 9)).tolist()
    names = [f"system_{i}" for i in range(9)]
    print()
    cold_test = median_seconds(lambda: friedman_test(scores, names), repeats=21, cold=True)
    warm_test = median_seconds(lambda: friedman_test(scores, names), repeats=21, cold=False)
    print(f"k = n = 9, friedman_test, all 36 pairs + 2 critical differences (cold): {cold_test * 1e3:7.3f} ms")
    print(f"k = n = 9, the same, distribution cached (warm):                        {warm_test * 1e3:7.3f} ms")
    result = friedman_test(scores, names)
    diffs = [pair["rank_sum_diff"] for pair in result["pairwise"]]
    for method in ("convolution", "closed_form"):
        seconds = median_seconds(
            lambda method=method: [exact_rank_sum_pvalue(d, 9, 9, method=method) for d in diffs], repeats=21, cold=True
        )
        print(f"k = n = 9, the 36 p-values alone, {method:<11} (cold):                   {seconds * 1e3:7.3f} ms")
    print(f"    goal: milliseconds; cold friedman_test is {0.01 / cold_test:6.1f}x under 10 ms")

    # Many blocks: friedman_test weighs one convolution against one closed form per distinct difference.
    k, n = 10, 100
    scores = np.random.default_rng(1).random((n, k)).tolist()
    names = [f"system_{i}" for i in range(k)]
    diffs = [pair["rank_sum_diff"] for pair in friedman_test(scores, names)["pairwise"]]
    print()
    timings = {}
    for method in ("closed_form", "convolution"):
        timings[method] = median_seconds(
            lambda method=method: [exact_rank_sum_pvalue(d, k, n, method=method) for d in diffs], repeats=3, cold=True
        )
        print(f"k = {k}, n = {n}, the {len(diffs)} p-values, {method:<11} (cold): {timings[method] * 1e3:9.2f} ms")
    whole = median_seconds(lambda: friedman_test(scores, names), repeats=3, cold=True)
    print(f"k = {k}, n = {n}, friedman_test, all pairs, its own choice (cold): {whole * 1e3:9.2f} ms")
    print(
        f"    one convolution is {timings['closed_form'] / timings['convolution']:6.1f}x faster than closed forms here"
    )


if __name__ == "__main__":
    main()
