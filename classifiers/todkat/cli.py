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
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--max-steps", type=int, default=-1, help="stop after this many steps (-1: epochs decide)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--max-length", type=int, default=64, help="utterance truncation in tokens")
    parser.add_argument("--topic-layer", type=int, default=None, help="insert after this layer (default: middle)")
    parser.add_argument("--topic-dim", type=int, default=50)
    parser.add_argument("--kl-weight", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run_train_topics)


def run_train_topics(args: argparse.Namespace) -> int:
    from erc_synth.classifiers.data import load_real
    from erc_synth.dataset_scripts.errors import ErcSynthError
    from erc_synth.dataset_scripts.registry import get_benchmark

    from .training import TopicTrainingSettings, train_topics

    benchmark = get_benchmark(args.benchmark)
    data = load_real(benchmark, args.data)
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    missing = [s for s in splits if s not in data]
    if missing:
        raise ErcSynthError(f"{args.data}: no split(s) {', '.join(missing)} (available: {', '.join(data)})")
    texts = [u for split in splits for dialogue in data[split]["utterances"] for u in dialogue]
    settings = TopicTrainingSettings(
        epochs=args.epochs, max_steps=args.max_steps, batch_size=args.batch_size, learning_rate=args.learning_rate,
        max_length=args.max_length, topic_layer=args.topic_layer, topic_dim=args.topic_dim,
        kl_weight=args.kl_weight, seed=args.seed,
    )
    metrics = train_topics(args.encoder, texts, args.out, settings)
    print(json.dumps({"out": args.out, "utterances": len(texts), **metrics}, sort_keys=True))
    return 0
