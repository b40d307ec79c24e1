"""The ``erc-synth`` console script.

Each library package contributes its subcommands through a ``cli`` module with a
``register(subparsers)`` function; handlers are stored as ``func`` on the parsed namespace and return an exit
status. Why this shape: the packages stay independent (no package imports the console script) and heavy
imports (torch, transformers) happen inside handlers, so ``erc-synth --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from erc_synth.dataset_scripts.core.errors import ErcSynthError

from . import __version__

#: Modules that contribute subcommands, in the order they appear in ``--help``.
COMMAND_MODULES: tuple[str, ...] = (
    "erc_synth.dataset_scripts.cli",
    "erc_synth.generation.cli",
    "erc_synth.build_cli",
    "erc_synth.hub_cards.cli",
    "erc_synth.review.cli",
    "erc_synth.evaluate_metrics.cli",
    "erc_synth.classifiers.cli",
    "erc_synth.classifiers.audit.cli",
    "erc_synth.classifiers.todkat.cli",
    "erc_synth.pipeline_cli",
    "erc_synth.quality_cli",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="erc-synth",
        description="Generate, build, publish and evaluate synthetic emotion-labelled dialogues.",
    )
    parser.add_argument("--version", action="version", version=f"erc-synth {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:  # a real missing dependency inside the module: surface it
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the console script; user errors print one line to stderr and exit non-zero.

    A reader that stops early (``erc-synth inspect RUN_DIR | head -1``) closes the pipe; the output is then
    abandoned quietly, as the Python documentation's note on SIGPIPE (``signal`` module) recommends: stdout is
    pointed at ``os.devnull`` so the interpreter's last flush cannot fail again, and the status is 1, the
    documentation's own choice for a process whose output could not be written.
    """
    try:
        try:
            return _run(argv)
        finally:
            sys.stdout.flush()  # inside the handler: a broken pipe here is caught, not reported at exit
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except ErcSynthError as exc:
        print(f"erc-synth {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"erc-synth {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
