"""``erc-synth run``: the main job, a preset from generation to Hub-ready (or pushed) datasets."""

from __future__ import annotations

import argparse


def _run(args: argparse.Namespace) -> int:
    from .pipeline import run_preset
    from .preset import load_preset

    preset = load_preset(args.preset)
    report = run_preset(
        preset, args.out, org=args.org, private=args.private, real_data_dir=args.real_data,
        num_dialogues=args.num_dialogues, model=args.model, endpoints=args.endpoint, progress=not args.no_progress,
        workers=args.workers,
    )
    print()
    print(report.summary_markdown())
    return 0


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value!r}")
    return number


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a preset end to end: generate six datasets, build, gate, card, plot (and push with --org)",
        description="Run a preset end to end. Rerunning the same command resumes where it stopped.",
    )
    parser.add_argument("--preset", default="quickstart",
                        help="built-in preset (quickstart, paper) or a preset YAML file (default: quickstart)")
    parser.add_argument("--out", required=True, help="output folder (runs/, datasets/, summary)")
    parser.add_argument("--org", help="push the six datasets to ORG/{benchmark}-synth-{mode} (needs HF_TOKEN)")
    parser.add_argument("--private", action="store_true", help="create private repos when pushing")
    parser.add_argument("--real-data", help="folder with meld/ emorynlp/ iemocap/ (default: ../shared/data if present)")
    parser.add_argument("--num-dialogues", type=int, help="override every dataset's dialogue count")
    parser.add_argument("--model", help="override the preset's model (Hub id, local folder, or 'embedded')")
    parser.add_argument("--endpoint", action="append", help="override the preset's server URL(s); repeatable")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--workers", type=_positive_int, metavar="N",
                        help="generation processes for the in-process backend, each on one dataset at a time "
                             "(default: one per core, at most one per dataset; the number used is in summary.json)")
    parser.set_defaults(func=_run)
