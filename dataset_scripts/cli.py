"""Subcommands of the bottom layer: ``erc-synth benchmarks`` and ``erc-synth stats``.

``stats`` takes either a benchmark name with ``--data-dir`` (the original files, through ``load_reference``)
or the path of a built dataset folder laid out like a Hub repo (``load_dataset(PATH, "dialogues")``). Why an
existing directory wins over a benchmark name: a folder called ``meld`` in the working directory is far more
likely a built dataset than a request for the real benchmark without ``--data-dir``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .core.errors import ErcSynthError
from .core.registry import BENCHMARKS, Benchmark
from .stats import FORMATS, render_stats, render_table


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``benchmarks`` and ``stats`` to the ``erc-synth`` parser."""
    benchmarks = subparsers.add_parser(
        "benchmarks", help="list the benchmark registry",
        description="The benchmark registry: labels in canonical order, original spellings, speakers, variants.",
    )
    benchmarks.add_argument("--format", choices=FORMATS, default="table")
    benchmarks.set_defaults(func=run_benchmarks)

    stats = subparsers.add_parser(
        "stats", help="per-split statistics of a benchmark or a built dataset",
        description=(
            "Per split: dialogues, utterances, utterances per label, unlabelled utterances, mean turns and mean "
            "distinct speakers per dialogue. SOURCE is a benchmark name (with --data-dir) or a built dataset "
            "folder laid out like a Hub repo."
        ),
    )
    stats.add_argument("source", metavar="SOURCE", help=f"benchmark ({', '.join(BENCHMARKS)}) or dataset folder")
    stats.add_argument("--data-dir", type=Path, help="folder with meld/ emorynlp/ iemocap/, or the benchmark's own")
    stats.add_argument("--variant", help="benchmark variant (see `erc-synth benchmarks`); default: the registry's")
    stats.add_argument("--format", choices=FORMATS, default="table")
    stats.set_defaults(func=run_stats)


def _original_spellings(benchmark: Benchmark) -> list[str]:
    """Per label, in label order, the spellings other than the canonical name (or the name when it has none)."""
    spellings = []
    for label in benchmark.labels:
        aliases = [s for s, canonical in benchmark.spellings.items() if canonical == label and s != label]
        spellings.extend(aliases or [label])
    return spellings


def _variants(benchmark: Benchmark) -> list[str]:
    return [
        f"{name} ({variant.format}, {'/'.join(variant.files)})" + ("*" if name == benchmark.default_variant else "")
        for name, variant in benchmark.variants.items()
    ]


def run_benchmarks(args: argparse.Namespace) -> int:
    """Print the registry; ``*`` marks each benchmark's default variant."""
    if args.format == "json":
        entries = [
            {"name": b.name, "display_name": b.display_name, "labels": list(b.labels),
             "spellings": dict(b.spellings), "speakers": list(b.speakers), "default_variant": b.default_variant,
             "variants": {n: {"format": v.format, "files": dict(v.files), "description": v.description}
                          for n, v in b.variants.items()}}
            for b in BENCHMARKS.values()
        ]
        print(json.dumps(entries, indent=2))
        return 0
    headers = ["name", "labels (canonical order)", "original spellings", "speakers", "variants (* default)"]
    rows = [
        [b.name, ", ".join(b.labels), ", ".join(_original_spellings(b)), ", ".join(b.speakers),
         "; ".join(_variants(b))]
        for b in BENCHMARKS.values()
    ]
    print(render_table(headers, rows, args.format), end="")
    return 0


def _load_built(path: Path):
    from datasets import load_dataset
    from datasets.exceptions import DatasetGenerationError

    from .built_files import load_built_config

    try:
        if (path / "data" / "dialogues").is_dir():
            data = load_built_config(path)
        else:
            data = load_dataset(str(path), "dialogues")
    except (ValueError, FileNotFoundError, DatasetGenerationError) as exc:
        raise ErcSynthError(f"{path}: not a built erc-synth dataset with a 'dialogues' config ({exc})") from None
    if "emotions" not in next(iter(data.values())).column_names:
        raise ErcSynthError(f"{path}: the 'dialogues' config has no 'emotions' column")
    return data


def run_stats(args: argparse.Namespace) -> int:
    """Print per-split statistics of a benchmark's original files or of a built dataset folder."""
    source = Path(args.source)
    if source.is_dir():
        if args.data_dir or args.variant:
            raise ErcSynthError(f"{source} is a dataset folder; --data-dir and --variant apply to benchmarks only")
        data = _load_built(source)
    else:
        from .readers import load_reference

        if args.source.lower() not in BENCHMARKS:
            raise ErcSynthError(
                f"{args.source!r} is neither a dataset folder nor a benchmark ({', '.join(BENCHMARKS)})"
            )
        if args.data_dir is None:
            raise ErcSynthError(f"stats {args.source} needs --data-dir (the folder with the original files)")
        data = load_reference(args.source, args.data_dir, args.variant)
    from .stats import corpus_stats

    print(render_stats(corpus_stats(data), args.format), end="")
    return 0
