"""Label fidelity of the quickstart's label variants: generate quickstart-sized sets per variant, audit each
against the ``train`` judge, and print one table (kappa, agreement, positional statistics, generation time).

Why a script and not a test: the numbers depend on the model, the judge and the machine's load; the table in
docs/label-fidelity.md was made with this script, and rerunning it is how to check or extend it.

    python benchmarks/bench_label_variants.py --real-data /path/to/data --out /tmp/label-variants
    python benchmarks/bench_label_variants.py --real-data DATA --benchmarks meld emorynlp iemocap \\
        --variants word_first --out DIR         # the chosen variant on all six sets

Every variant uses the quickstart preset's model, sampling, seed and counts; only ``prompt_version`` and
``label_format`` change. Runs are resumable RUN_DIRs under ``--out``: a second call reuses what is there (and
then reports no generation time for it). Set ``OMP_NUM_THREADS=1`` on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import replace
from pathlib import Path

VARIANTS: dict[str, dict[str, str]] = {
    "number": {"prompt_version": "v1", "label_format": "number"},
    "word": {"prompt_version": "v2", "label_format": "word"},
    "word_first": {"prompt_version": "v2", "label_format": "word_first"},
}
KEYS = ("agreement", "chance_agreement", "kappa", "position_label_spearman", "position_label_spearman_real",
        "monotonic_share", "monotonic_share_real")


def _generate(variant: str, benchmarks: list[str], out: Path) -> dict[str, float]:
    from erc_synth.generation.backends.factory import create_backend
    from erc_synth.generation.engine import generate
    from erc_synth.pipeline import generation_config
    from erc_synth.preset import load_preset

    preset = load_preset("quickstart")
    backend, seconds = None, {}
    try:
        for spec in preset.datasets:
            if spec.benchmark not in benchmarks:
                continue
            config = replace(generation_config(preset, spec, out / variant / spec.name), **VARIANTS[variant])
            backend = backend or create_backend(config)
            started = time.perf_counter()
            report = generate(config, backend=backend, progress=False)
            seconds[spec.name] = round(time.perf_counter() - started, 1) if report.finished_now else None
            print(report.summary(), flush=True)
    finally:
        if backend is not None:
            asyncio.run(backend.aclose())
    return seconds


def _audit(run_dir: Path, real_data: Path) -> dict[str, float | None]:
    from datasets import DatasetDict

    from erc_synth.classifiers.audit.auditing import audit_dataset
    from erc_synth.dataset_scripts.registry import get_benchmark
    from erc_synth.dataset_scripts.run_store import RunStore
    from erc_synth.dataset_scripts.schema import dialogues_dataset

    benchmark = get_benchmark(run_dir.name.split("-")[0])
    rows = [{"dialogue_id": f"{run_dir.name}-{r.index}", "speakers": list(r.speakers),
             "utterances": list(r.utterances), "emotions": list(r.emotions)}
            for r in RunStore.open(run_dir).accepted()]
    result = audit_dataset(DatasetDict({"train": dialogues_dataset(benchmark, rows)}), benchmark, "train",
                           real_data=real_data, source=str(run_dir))
    return {key: result.summary.get(key) for key in KEYS}


def _formatter(row: dict):
    return lambda key: "-" if row[key] is None else f"{row[key]:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real-data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=sorted(VARIANTS))
    parser.add_argument("--benchmarks", nargs="+", default=["meld"])
    args = parser.parse_args()
    rows = []
    for variant in args.variants:
        seconds = _generate(variant, args.benchmarks, args.out)
        for name, elapsed in seconds.items():
            rows.append({"variant": variant, "set": name, "generation_s": elapsed,
                         **_audit(args.out / variant / name, args.real_data)})
            print(json.dumps(rows[-1]), flush=True)
    print("| variant | set | kappa | agreement (chance) | spearman (real) | monotonic (real) | generation s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        f = _formatter(r)
        print(f"| {r['variant']} | {r['set']} | {f('kappa')} | {f('agreement')} ({f('chance_agreement')}) | "
              f"{f('position_label_spearman')} ({f('position_label_spearman_real')}) | {f('monotonic_share')} "
              f"({f('monotonic_share_real')}) | {r['generation_s']} |")


if __name__ == "__main__":
    main()
