"""``erc-synth quality DATASET --benchmark B --real-data DIR --out DIR``: the data-quality report of a built set.

Why a top-level command: it reads a folder ``erc-synth build`` wrote (``hub_cards``) and measures it with
``classifiers.quality``; only this layer may import both. The label-fidelity figures come from the build's own
audit (the folder's ``quality.json`` or its build report); nothing here trains or runs a judge.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from erc_synth.dataset_scripts.core.errors import ErcSynthError, SettingError


def _stored_kappa(folder: Path, payload: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """The audit's kappa pair as the build stored it, or why there is none."""
    stored = folder / "quality.json"
    if stored.is_file():
        try:
            kappa = json.loads(stored.read_text(encoding="utf-8")).get("kappa") or {}
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            kappa = {}
        if kappa.get("synthetic") is not None:
            return kappa, None
    fidelity = (payload.get("card") or {}).get("label_fidelity") or {}
    if fidelity.get("kappa") is not None:
        return {"synthetic": fidelity["kappa"], "real": None}, "the build did not run the judge on the real test labels"
    return None, "no label audit was run when the set was built (erc-synth build ... --audit JUDGE)"


def folder_quality(folder: str | Path, benchmark_name: str, *, real_data: str | Path | None = None,
                   out_dir: str | Path | None = None, c2st: bool = True, seed: int = 0) -> dict[str, Any]:
    """Measure a built folder against the real benchmark; with ``out_dir``, write json, markdown and plots."""
    import pyarrow.parquet as pq

    from erc_synth.classifiers.quality import (
        QUALITY_PNG,
        QualitySettings,
        from_columns,
        quality_report,
        save_plots,
        write_report,
    )
    from erc_synth.classifiers.settings import check_seed
    from erc_synth.dataset_scripts.core.registry import get_benchmark
    from erc_synth.dataset_scripts.gates import GateOptions
    from erc_synth.hub_cards.folder import read_build_report

    check_seed(seed)  # before the set or the real benchmark is read
    folder = Path(folder)
    benchmark = get_benchmark(benchmark_name)
    if not folder.is_dir():
        raise ErcSynthError(f"DATASET {folder}: no such folder (expected a folder erc-synth build wrote)")
    payload = read_build_report(folder)
    card = payload.get("card") or {}
    if card.get("benchmark") != benchmark.name:
        raise ErcSynthError(f"--benchmark {benchmark.name}: {folder} is a {card.get('benchmark')} set "
                            f"({(card.get('report') or {}).get('config_name')})")
    files = sorted((folder / "data" / "dialogues").glob("*.parquet"))
    if not files:
        raise ErcSynthError(f"DATASET {folder}: no data/dialogues/*.parquet; rebuild it from its RUN_DIR")
    tables = [pq.read_table(f, columns=["utterances", "emotions"]).to_pydict() for f in files]
    corpus = [d for t in tables for d in from_columns(t["utterances"], t["emotions"])]
    if not any(d.utterances for d in corpus):
        raise ErcSynthError(f"DATASET {folder}: the set holds no utterance to measure")
    train = test = description = None
    if real_data is not None:
        from erc_synth.classifiers.data import load_real

        real = load_real(benchmark, real_data)
        if "test" not in real:
            raise ErcSynthError(f"--real-data {real_data}: {benchmark.name} has no test split there")
        test = from_columns(real["test"]["utterances"], real["test"]["emotions"])
        train = from_columns(real["train"]["utterances"], real["train"]["emotions"]) if "train" in real else None
        description = f"{benchmark.display_name} from {real_data}"
    kappa, kappa_missing = _stored_kappa(folder, payload)
    gate_options = (card.get("report") or {}).get("gates", {}).get("options") or {}
    known = GateOptions.__dataclass_fields__
    gates = GateOptions(**{k: v for k, v in gate_options.items() if k in known})
    report = quality_report(corpus, benchmark, real_train=train, real_test=test, real_description=description,
                            kappa=kappa, kappa_missing=kappa_missing, gates=gates,
                            settings=QualitySettings(seed=seed, c2st=c2st), dataset=str(folder))
    if out_dir is not None:
        written = write_report(report, out_dir)
        save_plots(corpus, test, train, benchmark.labels, Path(out_dir) / QUALITY_PNG)
        assert all(path.is_file() for path in written.values())
    return report


def _quality(args: argparse.Namespace) -> int:
    if args.real_data is not None and not Path(args.real_data).is_dir():
        raise ErcSynthError(f"--real-data {args.real_data}: no such folder")
    try:
        report = folder_quality(args.dataset, args.benchmark, real_data=args.real_data, out_dir=args.out,
                                c2st=not args.no_c2st, seed=args.seed)
    except SettingError as exc:
        if exc.setting != "seed":
            raise
        raise ErcSynthError(f"--seed {exc.problem}") from exc
    from erc_synth.classifiers.quality import render_markdown

    print(render_markdown(report), end="")
    print(f"wrote quality.json, quality.md and quality.png to {args.out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "quality", help="data-quality report of a built set, side by side with the real benchmark",
        description="Measure a built set (text, realism, diversity, labels) and the real benchmark the same way; "
                    "write quality.json, quality.md and quality.png to --out.")
    parser.add_argument("dataset", metavar="DATASET", help="a folder erc-synth build wrote")
    parser.add_argument("--benchmark", required=True, help="meld, emorynlp or iemocap (must match the set)")
    parser.add_argument("--real-data", metavar="DIR", help="folder with the benchmark's original files (meld/...); "
                        "without it only the synthetic figures are given")
    parser.add_argument("--out", required=True, metavar="DIR")
    parser.add_argument("--no-c2st", action="store_true", help="skip the two-sample test (MiniLM embeddings)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the samples and the cross-validation")
    parser.set_defaults(func=_quality)
