"""The label filter on one generated RUN_DIR: no filter against several confidences, each audited the same way.

Every build is audited by the ``train`` judge on half ``b`` of the real train split, the judge a filtered build's
audit uses, so the kappas are comparable: the unfiltered build is given that judge explicitly. Printed, one row a
confidence: dialogues kept of those built, the kept share, and the quality report's kappa (with the judge's own
ceiling on the real test labels), gibberish share, label JS, transition L1, C2ST AUC and MAUVE, then the seconds
each build took (the first trains both half judges; later builds reuse them from ``--judge-cache``).

Run: python benchmarks/bench_label_filter.py --run-dir OUT/runs/meld-synth-natural --real-data DIR --out DIR
     [--judge-cache DIR] [--confidences 0.15,0.25,0.35]
(make the RUN_DIR with ``erc-synth run --preset quickstart --real-data DIR`` and more dialogues than it asks)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from erc_synth.classifiers.audit import JudgeSettings
from erc_synth.dataset_scripts.core.environment import real_data_env
from erc_synth.hub_cards.folder import build_folder
from erc_synth.label_auditor import ClassifierAuditor
from erc_synth.quality_reporter import ClassifierQualityReporter

FIGURES = ("gibberish_share", "label_js", "transition_l1", "c2st_auc", "mauve")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", required=True, type=Path)
    parser.add_argument("--real-data", default=real_data_env())
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--judge-cache", type=Path, default=None)
    parser.add_argument("--confidences", default="0.15,0.25,0.35")
    args = parser.parse_args()
    if not args.real_data:
        parser.error("--real-data DIR (or ERC_SYNTH_REAL_DATA) is required")
    confidences = [None, *(float(c) for c in args.confidences.split(","))]
    print("| confidence | kept / built | kept share | kappa (ceiling) | " + " | ".join(FIGURES) + " | seconds |")
    print("|---|---:|---:|---:|" + "---:|" * len(FIGURES) + "---:|")
    for confidence in confidences:
        start = time.perf_counter()
        options = {"judge_settings": JudgeSettings(train_half="b")} if confidence is None else {}
        report = build_folder(args.run_dir, args.out / f"confidence-{confidence}", real_data_dir=args.real_data,
                              audit="train", audit_cache_dir=args.judge_cache, auditor=ClassifierAuditor(),
                              quality_reporter=ClassifierQualityReporter(), label_filter=confidence, **options)
        seconds = time.perf_counter() - start
        quality = report.quality or {}
        built = sum(report.build["split_sizes"].values())
        summary = report.build.get("label_filter") or {"kept": built, "generated": built, "kept_share": 1.0}
        kappa = quality.get("kappa") or {}
        figures = [(quality.get(name) or {}).get("synthetic") for name in FIGURES]
        print(f"| {confidence if confidence is not None else 'none'} | {summary['kept']} / {summary['generated']} | "
              f"{summary['kept_share']:.3f} | {kappa.get('synthetic', float('nan')):.3f} "
              f"({kappa.get('real', float('nan')):.3f}) | "
              + " | ".join("n/a" if f is None else f"{f:.3f}" for f in figures) + f" | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
