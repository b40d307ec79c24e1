"""``erc-synth generate`` and ``erc-synth inspect``.

Heavy imports (torch, transformers, huggingface_hub) happen inside the handlers so that ``erc-synth --help``
stays fast.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from erc_synth.dataset_scripts.core.errors import ErcSynthError
from erc_synth.dataset_scripts.core.registry import BENCHMARKS, MODES

from .backends.factory import BACKENDS, DEFAULT_BACKEND
from .backends.openai_compat import SERVER_KINDS
from .engine import CONFIG_RULES, EXIT_SERVER_FAULT, SettingError, default_of
from .grammar import LABEL_FORMATS
from .label_plan import LABEL_PLANS
from .prompts import TEMPLATE_VERSIONS

#: Exit statuses of ``generate`` beyond 0 (complete) and 2 (user error, from the dispatcher).
EXIT_INCOMPLETE = 1  # some indices used all their attempts without an accepted dialogue
EXIT_STOPPED = EXIT_SERVER_FAULT  # stopped on server faults or a failed write: rerun the same command to resume


def register(subparsers: argparse._SubParsersAction) -> None:
    gen = subparsers.add_parser(
        "generate", help="generate emotion-labelled dialogues into a RUN_DIR (resumable)",
        description="Generate dialogues with an LLM into RUN_DIR. Rerunning the same command resumes.",
    )
    gen.add_argument("--benchmark", required=True, choices=sorted(BENCHMARKS))
    gen.add_argument("--mode", default=default_of("mode"), choices=MODES)
    gen.add_argument("--num-dialogues", type=int, required=True,
                     help="dialogues in RUN_DIR; a larger number on an existing RUN_DIR grows it")
    gen.add_argument("--backend", default=DEFAULT_BACKEND, choices=BACKENDS,
                     help="vllm: the in-process vLLM engine (install with scripts/install-vllm.sh)")
    gen.add_argument("--server", choices=SERVER_KINDS,
                     help="openai backend: the server's kind, deciding which fields it is sent "
                          "(default: detected from the server)")
    gen.add_argument("--endpoint", action="append", default=[], dest="endpoints", metavar="URL",
                     help="server URL (tgi/openai); repeat for replicas, taken round-robin")
    gen.add_argument("--model", help="Hub id or local folder (transformers; default: the embedded SmolLM2), "
                                     "or the model name on an OpenAI-compatible server")
    gen.add_argument("--chat-format", default="auto", choices=("auto", "vicuna", "chatml", "template", "raw"),
                     help="prompt rendering for tgi/transformers (auto: vicuna for Vicuna, else the tokenizer's)")
    gen.add_argument("--seed", type=int, default=default_of("seed"))
    gen.add_argument("--out", required=True, metavar="RUN_DIR")
    gen.add_argument("--concurrency", type=int, help="requests in flight (default: 16 per endpoint, or the "
                                                     "in-process batch size)")
    gen.add_argument("--no-grammar", action="store_true", help="turn constrained decoding off")
    gen.add_argument("--max-attempts", type=int, default=default_of("max_attempts"),
                     help="attempts per dialogue before giving up on it (default: %(default)s)")
    gen.add_argument("--turns", type=int, nargs=2, metavar=("MIN", "MAX"), help="turn range (default: benchmark's)")
    gen.add_argument("--steer", action="store_true",
                     help="balanced mode: pick later targets among under-represented emotions (in waves)")
    gen.add_argument("--steer-wave", type=int, default=default_of("steer_wave"), help="dialogues per steering wave")
    gen.add_argument("--temperature", type=float, default=default_of("sampling.temperature"), help="> 0")
    gen.add_argument("--top-p", type=float, default=default_of("sampling.top_p"), help="in (0, 1]; 1 is off")
    gen.add_argument("--top-k", type=int, default=default_of("sampling.top_k"), help=">= 0; 0 is off")
    gen.add_argument("--typical-p", type=float, default=default_of("sampling.typical_p"), help="in (0, 1]; 1 is off")
    gen.add_argument("--repetition-penalty", type=float, default=default_of("sampling.repetition_penalty"),
                     help="> 0; 1 is off")
    gen.add_argument("--min-p", type=float, default=default_of("sampling.min_p"),
                     help="in [0, 1); 0 is off (not every backend applies it: the manifest says)")
    gen.add_argument("--max-new-tokens", type=int, default=default_of("sampling.max_new_tokens"))
    gen.add_argument("--stop", action="append", default=[], help="stop sequence (repeatable)")
    gen.add_argument("--max-utterance-chars", type=int, default=default_of("max_utterance_chars"))
    gen.add_argument("--max-retries", type=int, default=default_of("max_retries"),
                     help="consecutive server faults per request")
    gen.add_argument("--request-timeout", type=float, default=default_of("request_timeout"),
                     help="seconds per HTTP request")
    gen.add_argument("--prompt-version", default=default_of("prompt_version"), choices=tuple(TEMPLATE_VERSIONS))
    gen.add_argument("--label-format", default=default_of("label_format"), choices=LABEL_FORMATS,
                     help="how a line carries its label (word_first: 'Speaker (joy): utterance'; needs "
                          "--prompt-version v2)")
    gen.add_argument("--few-shot", type=int, default=default_of("few_shot"), metavar="K",
                     help=f"real train dialogues shown in each prompt as examples ({CONFIG_RULES['few_shot'][1]}); "
                          "needs --real-data")
    gen.add_argument("--label-plan", default=default_of("label_plan"), choices=LABEL_PLANS,
                     help="benchmark: draw each dialogue's length and labels from the benchmark's train-split "
                          "statistics and force them (needs --label-format word_first)")
    gen.add_argument("--real-data", metavar="DIR",
                     help="folder holding meld/, emorynlp/, iemocap/ (default: $ERC_SYNTH_REAL_DATA); "
                          "--few-shot reads its train split")
    gen.add_argument("--device", help="transformers backend: cpu, cuda, mps (default: auto)")
    gen.add_argument("--dtype", help="transformers backend: float32, bfloat16... (default: auto)")
    gen.add_argument("--batch-size", type=int, help="transformers backend: rows decoded together (default 8)")
    gen.add_argument("--no-progress", action="store_true", help="no progress bar")
    gen.set_defaults(func=_generate)

    ins = subparsers.add_parser("inspect", help="summarise a RUN_DIR: counts, rejections by reason, labels")
    ins.add_argument("run_dir", metavar="RUN_DIR")
    ins.add_argument("--json", action="store_true", help="print the summary as JSON")
    ins.set_defaults(func=_inspect)

    from .tune_cli import register as register_tune

    register_tune(subparsers)


#: Settings whose ``generate`` flag is not their last name part with dashes.
_FLAGS = {"endpoints": "--endpoint", "grammar": "--no-grammar"}


def _flag(setting: str) -> str:
    """The ``generate`` flag of a ``GenerationConfig`` setting name (``sampling.top_p`` -> ``--top-p``,
    ``backend_options.server`` -> ``--server``, ``endpoints`` -> ``--endpoint``)."""
    return _FLAGS.get(setting) or "--" + setting.rsplit(".", 1)[-1].replace("_", "-")


def config_from_args(args: argparse.Namespace):
    """The ``GenerationConfig`` of parsed ``generate`` arguments; a value out of range names its flag."""
    from .backends.base import SamplingParams
    from .engine import GenerationConfig

    chosen = (("device", args.device), ("dtype", args.dtype), ("batch_size", args.batch_size), ("server", args.server))
    options = {k: v for k, v in chosen if v is not None}
    real_data = args.real_data
    if real_data is None:
        from erc_synth.dataset_scripts.core.environment import real_data_env

        real_data = real_data_env()
    elif not Path(real_data).is_dir():
        raise ErcSynthError(f"--real-data {real_data}: no such folder")
    sampling = SamplingParams(
        temperature=args.temperature, top_p=args.top_p, top_k=args.top_k, typical_p=args.typical_p,
        repetition_penalty=args.repetition_penalty, min_p=args.min_p, max_new_tokens=args.max_new_tokens,
        stop=tuple(args.stop),
    )
    try:
        config = GenerationConfig(
            benchmark=args.benchmark, mode=args.mode, num_dialogues=args.num_dialogues, seed=args.seed,
            out=args.out, backend=args.backend, endpoints=list(args.endpoints), model=args.model,
            chat_format=args.chat_format, sampling=sampling, grammar=not args.no_grammar,
            concurrency=args.concurrency, max_attempts=args.max_attempts,
            turns=tuple(args.turns) if args.turns else None, steer=args.steer, steer_wave=args.steer_wave,
            max_utterance_chars=args.max_utterance_chars, max_retries=args.max_retries,
            request_timeout=args.request_timeout, backend_options=options, prompt_version=args.prompt_version,
            label_format=args.label_format, few_shot=args.few_shot, label_plan=args.label_plan, real_data=real_data,
        )
    except SettingError as exc:
        raise ErcSynthError(exc.worded(_flag)) from exc
    if config.few_shot:
        # few-shot is the only reader of the real files: the flag or the variable is checked as `run` checks it
        # (a folder with the benchmark's files), before any model loads, and its error names where it came from
        from erc_synth.dataset_scripts.real_data import resolve_real_data

        config.real_data = resolve_real_data(args.real_data, [config.benchmark])
    return config


def _generate(args: argparse.Namespace) -> int:
    from .backends.base import BackendError
    from .engine import generate

    config = config_from_args(args)
    try:
        report = generate(config, progress=not args.no_progress)
    except SettingError as exc:
        raise ErcSynthError(exc.worded(_flag)) from exc
    except BackendError as exc:  # the backend failed outside a request (e.g. loading); retrying may help
        error = ErcSynthError(f"backend {config.backend} failed: {' '.join(str(exc).split())}; fix the cause and "
                              "rerun the same command (finished dialogues are kept)")
        error.exit_code = EXIT_SERVER_FAULT
        raise error from exc
    print(report.summary())
    if report.status == "stopped":
        print(f"The run stopped before finishing; everything finished so far is kept in {report.run_dir}. "
              f"Rerun the same command (same settings, --out {shlex.quote(str(report.run_dir))}) to resume; "
              "finished dialogues are skipped.", file=sys.stderr)
        return EXIT_STOPPED
    if report.status == "incomplete":
        print(f"{len(report.exhausted)} dialogue(s) were rejected {args.max_attempts} times; see "
              f"'erc-synth inspect {report.run_dir}' for the reasons", file=sys.stderr)
        return EXIT_INCOMPLETE
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from .run_report import format_summary, summarize_run

    summary = summarize_run(args.run_dir)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0
