"""``erc-synth audit DATASET --benchmark B --judge JUDGE [--real-data DIR] --out DIR``.

Heavy libraries are imported inside the handler so that ``erc-synth --help`` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from erc_synth.dataset_scripts.core.errors import ErcSynthError, SettingError

from .judges import JUDGE_SPECS


def register(subparsers) -> None:
    audit = subparsers.add_parser(
        "audit", help="measure how well a set's labels match its utterances, against a judge",
        description="Have a judge label every utterance of DATASET and compare the set's labels with the judge's: "
                    "agreement, Cohen's kappa against chance, per-label scores, whether labels follow the turn "
                    "position (next to the real benchmark's value), and likely label errors (cleanlab). Writes "
                    "audit.json, audit.md and confusion_matrix.png to --out.",
    )
    audit.add_argument("dataset", metavar="DATASET", help="a built dataset folder, a Hub id, or any dataset in the "
                                                          "dialogues schema")
    audit.add_argument("--benchmark", required=True, help="meld, emorynlp or iemocap")
    audit.add_argument("--judge", required=True, help=f"the judge: {JUDGE_SPECS}")
    audit.add_argument("--real-data", default=None, help="folder with the benchmark's original files (default: "
                                                          "$ERC_SYNTH_REAL_DATA); the train judge needs it")
    audit.add_argument("--out", required=True, help="output folder")
    audit.add_argument("--seed", type=int, default=0, help="seed of the train judge and of the llm judge")
    audit.add_argument("--cache-dir", default=None, help="where judges are cached (default: "
                                                          "${XDG_CACHE_HOME:-~/.cache}/erc-synth/judges)")
    audit.set_defaults(func=run_audit)


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def run_audit(args: argparse.Namespace) -> int:
    from erc_synth.classifiers.data import load_dialogues
    from erc_synth.dataset_scripts.core.registry import get_benchmark
    from erc_synth.dataset_scripts.real_data import resolve_real_data

    from ..settings import check_seed
    from .auditing import audit_dataset
    from .report import write_audit

    try:
        check_seed(args.seed)
    except SettingError as exc:
        raise ErcSynthError(f"--seed {exc.problem}") from exc
    benchmark = get_benchmark(args.benchmark)
    real_data = resolve_real_data(args.real_data, [benchmark.name])
    dialogues = load_dialogues(args.dataset)
    result = audit_dataset(dialogues, benchmark, args.judge, real_data=real_data,
                           seed=args.seed, cache_dir=Path(args.cache_dir) if args.cache_dir else None,
                           source=args.dataset)
    paths = write_audit(result, Path(args.out))
    s = result.summary
    print(f"{s['num_utterances']} utterances; agreement {_number(s['agreement'])} (chance "
          f"{_number(s['chance_agreement'])}); kappa {_number(s['kappa'])}; position/label Spearman "
          f"{_number(s['position_label_spearman'])} (real {_number(s['position_label_spearman_real'])}); "
          f"suspect utterances {s['suspect_utterances']['count']}")
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0
