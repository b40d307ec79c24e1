"""Label fidelity of the quickstart's label variants: generate quickstart-sized sets per variant, audit each
against the ``train`` judge, and print one table (kappa, agreement, positional statistics, generation cost).

Why a script and not a test: the numbers depend on the model, the judge and the machine's load; the tables in
docs/label-fidelity.md were made with this script, and rerunning it is how to check or extend them.

    python benchmarks/bench_label_variants.py --real-data /path/to/data --out /tmp/label-variants
    python benchmarks/bench_label_variants.py --real-data DATA --benchmarks meld emorynlp iemocap \\
        --variants word_first word_first_relabel word_first_shuffled --out DIR

Every variant uses the quickstart preset's model, sampling, seed and counts; only the generation settings of
``Variant.settings`` change. A variant with ``relabel`` generates nothing of its own: it takes the sets of the
variant named by ``runs_of`` and replaces their labels with those of the judge ``relabel`` names, as
``erc-synth build --audit SPEC --label-policy judge`` does, before the ``train`` judge audits them. Runs are
resumable RUN_DIRs under ``--out``: a second call reuses what is there (and then reports no generation time for
it). The ``train`` judges must already be cached (the audit would otherwise train them here first, which takes
far longer than the variants); ``--allow-judge-training`` lifts that. Set ``OMP_NUM_THREADS=1`` on a shared
machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from erc_synth.dataset_scripts.core.dataset_key import DatasetKey


@dataclass(frozen=True)
class Variant:
    """Generation settings over the quickstart preset's, and optionally a second labelling pass."""

    settings: dict[str, str] = field(default_factory=dict)
    #: A judge spec whose labels replace the generating model's (``--label-policy judge``); None keeps them.
    relabel: str | None = None
    #: The variant whose RUN_DIRs a relabelling variant reads (its own settings are that variant's).
    runs_of: str | None = None


WORD_FIRST = {"prompt_version": "v2", "label_format": "word_first"}
VARIANTS: dict[str, Variant] = {
    "number": Variant({"prompt_version": "v1", "label_format": "number"}),
    "word": Variant({"prompt_version": "v2", "label_format": "word"}),
    "word_first": Variant(WORD_FIRST),
    "word_first_shuffled": Variant({**WORD_FIRST, "label_order": "shuffled"}),
    # the same embedded model, in-process, asked once per utterance in its dialogue for a label number
    "word_first_relabel": Variant(WORD_FIRST, relabel="llm:transformers", runs_of="word_first"),
}
KEYS = ("agreement", "chance_agreement", "kappa", "position_label_spearman", "position_label_spearman_real",
        "monotonic_share", "monotonic_share_real", "judge_unknown", "num_utterances")


def _run_variant(name: str) -> str:
    return VARIANTS[name].runs_of or name


def _generate(variant: str, benchmarks: list[str], out: Path) -> dict[str, float | None]:
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
            config = replace(generation_config(preset, spec, out / variant / spec.name),
                             **VARIANTS[variant].settings)
            backend = backend or create_backend(config)
            started = time.perf_counter()
            report = generate(config, backend=backend, progress=False)
            seconds[spec.name] = round(time.perf_counter() - started, 1) if report.finished_now else None
            print(report.summary(), flush=True)
    finally:
        if backend is not None:
            asyncio.run(backend.aclose())
    return seconds


def _dialogues(run_dir: Path):
    from datasets import DatasetDict

    from erc_synth.dataset_scripts.core.registry import get_benchmark
    from erc_synth.dataset_scripts.run_store import RunStore
    from erc_synth.dataset_scripts.schema import dialogues_dataset

    benchmark = get_benchmark(DatasetKey.parse(run_dir.name).benchmark)
    rows = [{"dialogue_id": f"{run_dir.name}-{r.index}", "speakers": list(r.speakers),
             "utterances": list(r.utterances), "emotions": list(r.emotions)}
            for r in RunStore.open(run_dir).accepted()]
    return benchmark, DatasetDict({"train": dialogues_dataset(benchmark, rows)})


def _cost(run_dir: Path) -> dict[str, object]:
    """Tokens generated for the whole set (rejected attempts included) and the rejections by reason."""
    from erc_synth.dataset_scripts.run_store import RunStore

    records = RunStore.open(run_dir).raw_records()
    rejected: dict[str, int] = {}
    for record in records:
        if record["status"] == "rejected":
            rejected[record["reason"]] = rejected.get(record["reason"], 0) + 1
    return {"tokens": sum(r["generated_tokens"] or 0 for r in records), "rejected": rejected}


def _all_distinct(dialogues) -> float | None:
    """Share of dialogues with 4+ labelled turns whose labels are all different: the list-walking habit."""
    long = [[x for x in e if x >= 0] for e in dialogues["train"]["emotions"]]
    long = [e for e in long if len(e) >= 4]
    return sum(len(set(e)) == len(e) for e in long) / len(long) if long else None


def _audit(variant: str, run_dir: Path, real_data: Path, judge_cache: Path) -> dict[str, object]:
    from erc_synth.classifiers.audit.auditing import audit_dataset
    from erc_synth.classifiers.audit.policy import apply_label_policy

    benchmark, dialogues = _dialogues(run_dir)
    row: dict[str, object] = {}
    relabel = VARIANTS[variant].relabel
    if relabel is not None:
        started = time.perf_counter()
        second = audit_dataset(dialogues, benchmark, relabel, real_data=real_data, cache_dir=judge_cache,
                               source=str(run_dir))
        dialogues = apply_label_policy(dialogues, second, "judge")
        row.update(relabel_s=round(time.perf_counter() - started, 1), relabel_requests=second.summary["splits"]
                   ["train"], relabel_unknown=second.summary["judge_unknown"],
                   kappa_relabel_vs_llm=second.summary["kappa"])
    result = audit_dataset(dialogues, benchmark, "train", real_data=real_data, source=str(run_dir))
    judge = result.summary["judge"]
    row.update({key: result.summary.get(key) for key in KEYS})
    row.update(all_distinct=_all_distinct(dialogues), judge=judge.get("cache_key") or judge["id"],
               judge_weighted_f1=judge.get("weighted_f1"), **_cost(run_dir))
    return row


def _missing_judges(benchmarks: list[str], real_data: Path) -> list[str]:
    from erc_synth.classifiers.audit.judges import TRAINING_RECORD, JudgeSettings, default_cache_dir, judge_key
    from erc_synth.dataset_scripts.core.registry import get_benchmark

    keys = [judge_key(get_benchmark(b), real_data, JudgeSettings(), 0)[0] for b in benchmarks]
    return [key for key in keys if not (default_cache_dir() / key / "model" / TRAINING_RECORD).is_file()]


def _formatter(row: dict):
    return lambda key: "-" if row.get(key) is None else f"{row[key]:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real-data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=sorted(VARIANTS))
    parser.add_argument("--benchmarks", nargs="+", default=["meld"])
    parser.add_argument("--allow-judge-training", action="store_true",
                        help="train a missing train judge here instead of stopping")
    args = parser.parse_args()
    missing = _missing_judges(args.benchmarks, args.real_data)
    if missing and not args.allow_judge_training:
        parser.exit(2, f"train judges not cached yet: {', '.join(missing)}; wait for them or pass "
                       "--allow-judge-training\n")
    rows, seconds = [], {}
    for variant in args.variants:
        runs = _run_variant(variant)
        if runs not in seconds:
            seconds[runs] = _generate(runs, args.benchmarks, args.out)
        for name, elapsed in seconds[runs].items():
            rows.append({"variant": variant, "set": name, "generation_s": elapsed,
                         **_audit(variant, args.out / runs / name, args.real_data, args.out / "judge-cache")})
            print(json.dumps(rows[-1]), flush=True)
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("| variant | set | kappa | agreement (chance) | spearman (real) | monotonic (real) | all distinct | "
          "tokens (rejected) | generation s | relabel s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        f = _formatter(r)
        rejected = ", ".join(f"{n} {k}" for k, n in sorted(r["rejected"].items())) or "0"
        print(f"| {r['variant']} | {r['set']} | {f('kappa')} | {f('agreement')} ({f('chance_agreement')}) | "
              f"{f('position_label_spearman')} ({f('position_label_spearman_real')}) | {f('monotonic_share')} "
              f"({f('monotonic_share_real')}) | {f('all_distinct')} | {r['tokens']} ({rejected}) | "
              f"{r['generation_s']} | {r.get('relabel_s', '-')} |")
    judges = {DatasetKey.parse(r["set"]).benchmark: (r["judge"], r["judge_weighted_f1"]) for r in rows}
    for benchmark, (key, f1) in sorted(judges.items()):
        print(f"judge {benchmark}: {key}, weighted F1 on the real test split {f1}")
    totals = {v: sum((r["generation_s"] or 0) + (r.get("relabel_s") or 0) for r in rows if r["variant"] == v)
              for v in args.variants}
    if totals.get("word_first"):
        for variant, total in totals.items():
            print(f"time of {variant} relative to word_first in this run: {total / totals['word_first']:.2f}x")


if __name__ == "__main__":
    main()
