"""``erc-synth run``: the main job, a preset from generation to Hub-ready (or pushed) datasets."""

from __future__ import annotations

import argparse

#: The ``run_preset`` arguments that these flags set, as a ``SettingError`` names them.
_FLAGS = {"num_dialogues": "--num-dialogues", "workers": "--workers", "org": "--org"}


def _run(args: argparse.Namespace) -> int:
    from erc_synth.dataset_scripts.core.errors import ErcSynthError, SettingError

    from .pipeline import run_preset
    from .preset import load_preset

    preset = load_preset(args.preset)
    try:
        report = run_preset(
            preset, args.out, org=args.org, private=args.private, real_data_dir=args.real_data,
            num_dialogues=args.num_dialogues, model=args.model, endpoints=args.endpoint,
            progress=not args.no_progress, workers=args.workers,
        )
    except SettingError as exc:
        if exc.setting not in _FLAGS:
            raise
        raise ErcSynthError(f"{_FLAGS[exc.setting]} {exc.problem}") from exc
    print()
    print(report.summary_markdown())
    return 0


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
    parser.add_argument("--workers", type=int, metavar="N",
                        help="generation processes for the in-process backend, each on one dataset at a time "
                             "(default: one per core, at most one per dataset; the number used is in summary.json)")
    parser.set_defaults(func=_run)
