"""Write dataset_scripts/core/benchmark_statistics.json from the real benchmark files (counts only).

    python scripts/make_benchmark_statistics.py --real-data ../shared/data
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from erc_synth.dataset_scripts.core.registry import BENCHMARKS
from erc_synth.dataset_scripts.label_statistics import compute_label_statistics

OUT = Path(__file__).resolve().parents[1] / "dataset_scripts" / "core" / "benchmark_statistics.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real-data", required=True, help="folder holding meld/, emorynlp/, iemocap/")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    stats = {name: compute_label_statistics(name, args.real_data) for name in sorted(BENCHMARKS)}
    Path(args.out).write_text(json.dumps(stats, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v['dialogues']} dialogues" for k, v in stats.items()))


if __name__ == "__main__":
    main()
