"""``erc-synth train-topics``: pre-train TODKAT's topic layer by masked LM on one dataset's utterances.

The output folder is a checkpoint that ``erc-synth train --arch todkat --encoder OUT`` accepts.
"""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train-topics",
        help="pre-train the TODKAT topic layer (masked LM + KL) on a dataset's utterances",
        description="Pre-train the TODKAT topic layer inside an encoder by masked LM on one dataset's utterances.",
    )
    parser.add_argument("--encoder", required=True, help="Hub id or folder of the encoder (e.g. roberta-large)")
    parser.add_argument("--benchmark", required=True, help="meld, emorynlp or iemocap")
    parser.add_argument("--data", required=True,
                        help="real benchmark files folder (e.g. ../shared/data), a built dataset folder or a Hub id")
    parser.add_argument("--splits", default="train", help="comma-separated splits whose utterances are used")
    parser.add_argument("--out", required=True, help="folder to write the checkpoint to")
    from erc_synth.classifiers.settings import add_arguments

    from .settings import TopicTrainingSettings

    add_arguments(parser.add_argument_group("topic pre-training settings"), TopicTrainingSettings)
    parser.set_defaults(func=run_train_topics)


def run_train_topics(args: argparse.Namespace) -> int:
    from erc_synth.classifiers.data import load_real
    from erc_synth.classifiers.settings import given_arguments
    from erc_synth.dataset_scripts.core.errors import ErcSynthError
    from erc_synth.dataset_scripts.core.registry import get_benchmark

    from .training import TopicTrainingSettings, train_topics

    settings = TopicTrainingSettings.from_mapping(given_arguments(args, TopicTrainingSettings), where="--")
    benchmark = get_benchmark(args.benchmark)
    data = load_real(benchmark, args.data)
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    missing = [s for s in splits if s not in data]
    if missing:
        raise ErcSynthError(f"{args.data}: no split(s) {', '.join(missing)} (available: {', '.join(data)})")
    texts = [u for split in splits for dialogue in data[split]["utterances"] for u in dialogue]
    metrics = train_topics(args.encoder, texts, args.out, settings)
    print(json.dumps({"out": args.out, "utterances": len(texts), **metrics}, sort_keys=True))
    return 0
