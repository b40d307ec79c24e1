"""``erc-synth tune-generator``: fine-tune the generator on a benchmark's real train split (see ``tuning``).

Heavy imports (torch, transformers, peft) happen inside the handler so that ``erc-synth --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from erc_synth.dataset_scripts.core.errors import ErcSynthError, SettingError
from erc_synth.dataset_scripts.core.registry import BENCHMARKS


def register(subparsers: argparse._SubParsersAction) -> None:
    tune = subparsers.add_parser(
        "tune-generator", help="LoRA-tune the generator on a benchmark's real train split (resumable, cached)",
        description="Fine-tune the generator on the real train split's dialogues, rendered as generation prompts "
                    "and label-first answers. Rerunning resumes after a kill; the same inputs again do nothing.",
    )
    tune.add_argument("--benchmark", required=True, help=f"one of: {', '.join(sorted(BENCHMARKS))}")
    tune.add_argument("--real-data", required=True, metavar="DIR", help="folder holding meld/, emorynlp/, iemocap/")
    tune.add_argument("--out", required=True, metavar="GEN_DIR")
    tune.add_argument("--base-model", metavar="DIR", help="a causal LM folder (default: the embedded SmolLM2)")
    tune.add_argument("--variant", help="which copy of the benchmark to read (default: the benchmark's)")
    tune.add_argument("--method", default="lora", choices=("lora", "full"))
    tune.add_argument("--lora-r", type=int, default=8)
    tune.add_argument("--lora-alpha", type=int, default=16)
    tune.add_argument("--lora-dropout", type=float, default=0.05)
    tune.add_argument("--learning-rate", type=float, default=2e-4)
    tune.add_argument("--epochs", type=float, default=1.0)
    tune.add_argument("--max-steps", type=int, default=-1, help="optimizer steps (default -1: from --epochs)")
    tune.add_argument("--batch-size", type=int, default=4)
    tune.add_argument("--max-length", type=int, default=512, help="tokens per example; longer ones are left out")
    tune.add_argument("--max-dialogues", type=int, help="use only the first N usable train dialogues (by id)")
    tune.add_argument("--save-steps", type=int, default=50, help="checkpoint every N steps (resume point)")
    tune.add_argument("--seed", type=int, default=13)
    tune.add_argument("--device", default="auto", choices=("auto", "cpu"))
    tune.set_defaults(func=_tune)


def _tune(args: argparse.Namespace) -> int:
    """The command; a library ``SettingError`` (``base_model``, ``out``, ``max_length``...) names its flag."""
    try:
        return _tune_generator(args)
    except SettingError as exc:
        raise ErcSynthError(f"--{exc.setting.replace('_', '-')} {exc.problem}") from exc


def _tune_generator(args: argparse.Namespace) -> int:
    from erc_synth.dataset_scripts.core.registry import get_benchmark

    if args.benchmark not in BENCHMARKS:
        raise ErcSynthError(f"--benchmark {args.benchmark!r}: unknown; choose one of: {', '.join(sorted(BENCHMARKS))}")
    if not Path(args.real_data).is_dir():
        raise ErcSynthError(f"--real-data {args.real_data}: no such folder")
    from .tuning import TuneSettings, check_tune_setting, describe, tune_generator
    from .tuning_data import load_tune_set

    settings = TuneSettings(method=args.method, lora_r=args.lora_r, lora_alpha=args.lora_alpha,
                            lora_dropout=args.lora_dropout, learning_rate=args.learning_rate, epochs=args.epochs,
                            max_steps=args.max_steps, batch_size=args.batch_size, max_length=args.max_length,
                            seed=args.seed)
    settings.check()  # every setting before the real data or a model is read
    check_tune_setting("save_steps", args.save_steps)
    check_tune_setting("max_dialogues", args.max_dialogues)
    benchmark = get_benchmark(args.benchmark)
    tune_set = load_tune_set(benchmark, args.real_data, variant=args.variant, max_dialogues=args.max_dialogues)
    result = tune_generator(tune_set, args.out, base_model=args.base_model, settings=settings,
                            save_steps=args.save_steps, device=args.device,
                            log=lambda line: print(line, file=sys.stderr))
    print(describe(result, benchmark))
    return 0
