"""Subcommands ``build`` and ``build-all`` (registered into ``erc-synth``).

Why in the top layer: a build runs the quality report and may run the label audit, which live in
``classifiers``; ``hub_cards`` writes the folder but must not import ``classifiers``, so the command that joins
the two lives above both. Heavy imports
(datasets, matplotlib, torch) happen inside the handlers so ``erc-synth --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys

from erc_synth.dataset_scripts.core.build_defaults import (
    DECONTAM_NGRAM,
    DECONTAM_THRESHOLD,
    DEFAULT_LABEL_FILTER,
    DEFAULT_LABEL_POLICY,
    DEFAULT_RATIOS,
    DEFAULT_SPLIT_SEED,
    GIBBERISH_MIN_WORDS,
    GIBBERISH_THRESHOLD,
    LABEL_POLICIES,
    MAX_BAD_LINE_SHARE,
    NEAR_DUP_THRESHOLD,
)
from erc_synth.dataset_scripts.core.errors import in_flag_words

from .label_auditor import ClassifierAuditor
from .quality_reporter import ClassifierQualityReporter


def _quiet_datasets() -> None:
    """A build writes a handful of tiny files; per-file progress bars would drown the one-line summary."""
    import datasets

    datasets.disable_progress_bars()


#: Library arguments whose flag is not the argument's name with dashes.
_FLAGS = {"out_dir": "--out", "out_root": "--out", "real_data_dir": "--real-data"}


_in_flag_words = in_flag_words(_FLAGS, every_option=True)


@_in_flag_words
def _build(args: argparse.Namespace) -> int:
    from erc_synth.hub_cards.folder import build_folder

    _quiet_datasets()
    report = build_folder(
        args.run_dir, args.out, real_data_dir=args.real_data, real_variant=args.real_variant,
        split_seed=args.split_seed, ratios=args.ratios, near_dup_threshold=args.near_dup_threshold,
        decontaminate=not args.no_decontaminate, decontam_ngram=args.decontam_ngram,
        decontam_threshold=args.decontam_threshold, repo_id=args.repo, license=args.license, audit=args.audit,
        label_policy=args.label_policy, bad_line_gates=_bad_line_gates(args), quality_c2st=not args.no_c2st,
        auditor=ClassifierAuditor(), quality_reporter=ClassifierQualityReporter(), label_filter=args.label_filter,
    )
    gates = report.build["gates"]
    print(f"built {report.config_name} into {report.folder}: "
          + ", ".join(f"{split} {n}" for split, n in report.build["split_sizes"].items())
          + f" dialogues; dropped {gates['exact_duplicates']} exact and {gates['near_duplicates']} near duplicates, "
          + (f"{gates['contaminated']} contaminated" if gates["decontaminated_against"] else "no decontamination")
          + f"; removed {gates.get('gibberish_utterances', 0)} gibberish and {gates.get('bare_label_utterances', 0)} "
          f"bare-label lines, dropped {gates.get('bad_line_dialogues', 0)} dialogues with too many bad lines")
    if report.quality:
        print(_quality_line(report.quality))
    if report.divergences:
        print("JS divergence from the real label distribution: "
              + ", ".join(f"{k} {v:.4f}" for k, v in report.divergences.items()))
    if report.label_fidelity:
        print(f"label fidelity ({report.label_policy} labels): kappa {report.label_fidelity.get('kappa')}, "
              f"position/label Spearman {report.label_fidelity.get('position_label_spearman')} "
              f"(real {report.label_fidelity.get('position_label_spearman_real')})")
    if args.report_json:
        json.dump(report.to_dict(), sys.stdout, indent=2, sort_keys=True)
        print()
    return 0


def _quality_line(quality: dict) -> str:
    """The report's headline figures, synthetic (real)."""
    def pair(name: str) -> str:
        figures = quality.get(name) or {}
        return " ".join("n/a" if figures.get(side) is None else f"{figures[side]:.3f}"
                        for side in ("synthetic", "real"))

    return ("quality (synthetic real): " + ", ".join(f"{name} {pair(name)}" for name in
            ("gibberish_share", "c2st_auc", "label_js", "kappa")) + " (quality.json)")


def _bad_line_gates(args: argparse.Namespace) -> dict:
    return {"gibberish_threshold": args.gibberish_threshold, "gibberish_min_words": args.gibberish_min_words,
            "bare_label_gate": not args.no_bare_label_gate, "max_bad_line_share": args.max_bad_line_share}


def _confidence(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number in [0, 1]") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be in [0, 1]")
    return value


def _off_or_float(text: str) -> float | None:
    if text == "off":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number or 'off'") from None


@_in_flag_words
def _build_all(args: argparse.Namespace) -> int:
    from erc_synth.hub_cards.folder import build_all

    _quiet_datasets()
    result = build_all(args.runs_root, args.out, real_data_dir=args.real_data, real_variant=args.real_variant,
                       split_seed=args.split_seed, ratios=args.ratios, near_dup_threshold=args.near_dup_threshold,
                       decontaminate=not args.no_decontaminate, decontam_ngram=args.decontam_ngram,
                       decontam_threshold=args.decontam_threshold, license=args.license, audit=args.audit,
                       label_policy=args.label_policy, bad_line_gates=_bad_line_gates(args),
                       quality_c2st=not args.no_c2st, auditor=ClassifierAuditor(),
                       quality_reporter=ClassifierQualityReporter(), label_filter=args.label_filter)
    for name, report in result.folders.items():
        print(f"built {name} into {report.folder}: "
              + ", ".join(f"{split} {n}" for split, n in report.build["split_sizes"].items()) + " dialogues")
    return 0


def _add_build_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``build`` and ``build-all``."""
    parser.add_argument("--real-data", metavar="DIR", help="folder with meld/, emorynlp/, iemocap/ (enables "
                       "decontamination against the real test split and the comparison in the card)")
    parser.add_argument("--real-variant", help="benchmark file variant (default: the registry's default)")
    parser.add_argument("--split-seed", type=int, default=DEFAULT_SPLIT_SEED)
    ratios = ",".join(map(str, DEFAULT_RATIOS))
    parser.add_argument("--ratios", default=ratios, help=f"train,validation,test (default {ratios})")
    parser.add_argument("--near-dup-threshold", type=float, default=NEAR_DUP_THRESHOLD,
                        help=f"MinHash Jaccard threshold (default {NEAR_DUP_THRESHOLD})")
    parser.add_argument("--no-decontaminate", action="store_true")
    parser.add_argument("--decontam-ngram", type=int, default=DECONTAM_NGRAM,
                        help=f"word n-gram length (default {DECONTAM_NGRAM})")
    parser.add_argument("--decontam-threshold", type=float, default=DECONTAM_THRESHOLD,
                        help="drop a dialogue when more than this share of its n-grams is in the real test split "
                             "(default 0: any shared n-gram)")
    parser.add_argument("--gibberish-threshold", type=_off_or_float, default=GIBBERISH_THRESHOLD, metavar="SHARE|off",
                        help=f"remove a line whose known-word share is below this (default {GIBBERISH_THRESHOLD})")
    parser.add_argument("--gibberish-min-words", type=int, default=GIBBERISH_MIN_WORDS,
                        help=f"lines with fewer alphabetic words are never gibberish (default {GIBBERISH_MIN_WORDS})")
    parser.add_argument("--no-bare-label-gate", action="store_true",
                        help="keep lines made only of emotion words")
    parser.add_argument("--max-bad-line-share", type=_off_or_float, default=MAX_BAD_LINE_SHARE, metavar="SHARE|off",
                        help="drop a dialogue when more than this share of its lines are bad "
                             f"(default {MAX_BAD_LINE_SHARE})")
    parser.add_argument("--no-c2st", action="store_true",
                        help="leave the two-sample test (MiniLM embeddings, the costly part) out of the quality "
                             "report")
    parser.add_argument("--license", default="cc-by-4.0", help="Hub license id of the synthetic text")
    parser.add_argument("--audit", metavar="JUDGE",
                        help="audit the labels against a judge (train, classifier:PATH_OR_HUB_ID, llm) and add the "
                             "label fidelity section to the card; needs --real-data for the train judge")
    parser.add_argument("--label-filter", type=_confidence, default=DEFAULT_LABEL_FILTER, metavar="CONFIDENCE",
                        help="keep only the dialogues whose labels a judge trained on half the real train split "
                             "supports with at least this mean probability, in [0, 1] (needs --real-data; the "
                             "audit's train judge then learns from the other half; default: no filter)")
    parser.add_argument("--label-policy", default=DEFAULT_LABEL_POLICY, metavar="|".join(LABEL_POLICIES),
                        help="which labels the set gets: the LLM's (default, the study's), the judge's, or the "
                             "LLM's where the judge agrees and -1 elsewhere (needs --audit)")


def register(subparsers: argparse._SubParsersAction) -> None:
    build = subparsers.add_parser("build", help="build a generation RUN_DIR into a Hub-ready dataset folder",
                                  description="Build RUN_DIR into DIR: parquet for the dialogues and utterances "
                                              "configs, a dataset card (README.md) and the label distribution plot.")
    build.add_argument("run_dir", metavar="RUN_DIR")
    build.add_argument("--out", required=True, metavar="DIR")
    _add_build_options(build)
    build.add_argument("--repo", help="ORG/NAME shown in the card's load snippet (push fills it in otherwise)")
    build.add_argument("--report-json", action="store_true", help="also print the full build report as JSON")
    build.set_defaults(func=_build)

    build_all = subparsers.add_parser(
        "build-all", help="build every RUN_DIR under a folder into ROOT/{benchmark}-synth-{mode}",
        description="Build each RUN_DIR directly under RUNS_ROOT (one per benchmark and mode) into "
                    "ROOT/{benchmark}-synth-{mode}, the layout push-all reads; every card gets the full figure.")
    build_all.add_argument("runs_root", metavar="RUNS_ROOT")
    build_all.add_argument("--out", required=True, metavar="ROOT")
    _add_build_options(build_all)
    build_all.set_defaults(func=_build_all)
