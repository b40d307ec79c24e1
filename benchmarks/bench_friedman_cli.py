"""How fast does ``erc-synth friedman`` answer a bad CSV, next to a good one? Ratios measured in this one run.

    python benchmarks/bench_friedman_cli.py [--repeats 3]

Each run is a fresh console-script process, as a user would start it. A bad CSV is refused before the metric
module (and with it ``evaluate`` and transformers) is imported, so its answer should cost a small fraction of a
good CSV's, whose run must import them to compute the test.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOOD = "test_set,base,synth,other\nmeld,0.651,0.663,0.640\nemorynlp,0.381,0.390,0.376\niemocap,0.612,0.661,0.600\n"
BAD = GOOD.replace("0.663", "O.663")


def median_seconds(csv_path: Path, expected_status: int, repeats: int) -> float:
    """Median wall time of ``erc-synth friedman CSV`` in a fresh interpreter."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "erc_synth.cli", "friedman", str(csv_path)],
                              capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if done.returncode != expected_status:
            raise SystemExit(f"unexpected exit {done.returncode}: {done.stderr}")
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        good, bad = Path(folder) / "good.csv", Path(folder) / "bad.csv"
        good.write_text(GOOD)
        bad.write_text(BAD)
        median_seconds(good, 0, 1)  # warm the file-system cache of the imports once
        bad_s = median_seconds(bad, 2, args.repeats)
        good_s = median_seconds(good, 0, args.repeats)
    print(f"erc-synth friedman, median of {args.repeats} fresh processes")
    print(f"  bad CSV (refused, exit 2):   {bad_s:.2f} s")
    print(f"  good CSV (full test, exit 0): {good_s:.2f} s")
    print(f"  bad / good: {bad_s / good_s:.2f}")


if __name__ == "__main__":
    main()
