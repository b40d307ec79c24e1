"""``erc-synth tables``: the main and extended tables from a long results CSV, this toolkit's or anyone's.

Why a command apart from ``experiment --tables-only``: published or foreign results (a paper's table typed in,
another group's runs) can be tabulated and tested the same way, without an experiment folder. The CSV is checked
line by line before pandas or the metric module is imported, so a bad file answers at once.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from erc_synth.dataset_scripts.core.errors import ErcSynthError

from .results_long import FRACTION_COLUMN, LONG_COLUMNS

DESIGN_CHOICES = ("pooled", "per_benchmark")


def register(subparsers) -> None:
    tables = subparsers.add_parser(
        "tables", help="build the main and extended tables from a long results CSV",
        description="Build main_table.{md,csv}, extended_table.{md,csv} and the critical-difference plot(s) from "
                    f"a long CSV with the columns {', '.join(LONG_COLUMNS)} (one row per model and test set; "
                    "weighted_f1 as a fraction, as in an experiment's results_long.csv) and optionally "
                    f"{FRACTION_COLUMN} (the share of the real train split; several fractions also write "
                    "fraction_table.{md,csv}, learning_curve.png and one folder of tables per fraction).",
    )
    tables.add_argument("results", type=Path, metavar="RESULTS_LONG.csv", help="the long results CSV")
    tables.add_argument("--design", choices=DESIGN_CHOICES, default="pooled",
                        help="pooled: the study's one Friedman test over every benchmark x test set (default); "
                             "per_benchmark: one test per benchmark over (test set, seed) blocks")
    tables.add_argument("--out", required=True, type=Path, help="folder to write the tables to")
    tables.add_argument("--compare-paper", action="store_true",
                        help="also print (and write paper_comparison.md) the main table beside the study's Table III")
    tables.add_argument("--markdown", type=Path, metavar="PAGE.md",
                        help="also write the tables into this results page, between its '<!-- begin: erc-synth "
                             "tables ...' and '<!-- end: erc-synth tables -->' lines (a new page holds only them)")
    tables.set_defaults(func=run_tables)


def check_out_folder(out: Path) -> None:
    """An output folder must be a folder (or not exist yet): refuse a file before anything is computed."""
    if out.exists() and not out.is_dir():
        raise ErcSynthError(f"--out {out}: is a file, not a folder")


def write_paper_comparison(long, out: Path, architectures=(), regimes=(), benchmarks=()) -> Path:
    """Write and print the comparison with the study's Table III."""
    from .tables import paper_comparison_markdown

    text = paper_comparison_markdown(long, architectures, regimes, benchmarks)
    path = out / "paper_comparison.md"
    path.write_text(text)
    print(text)
    return path


def run_tables(args: argparse.Namespace) -> int:
    from .results_long import read_long_rows

    check_out_folder(args.out)
    if args.markdown is not None and args.markdown.exists() and not args.markdown.is_file():
        raise ErcSynthError(f"--markdown {args.markdown}: is a folder, not a page")
    rows = read_long_rows(args.results)  # before pandas and the metric module are imported
    import pandas as pd

    from .tables import write_tables

    long = pd.DataFrame(rows, columns=[*LONG_COLUMNS, FRACTION_COLUMN])
    written = write_tables(long, args.out, design=args.design)
    if args.compare_paper:
        written["paper_comparison"] = write_paper_comparison(long, args.out)
    if args.markdown is not None:
        written["page"] = _write_page(args, written)
    for name, path in written.items():
        print(f"{name}: {path}")
    return 0


def _write_page(args: argparse.Namespace, written: dict[str, Path]) -> Path:
    """The page's generated block, with the command that regenerates it (paths relative to the page's folder)."""
    import os

    from .results_page import write_results_page

    folder = args.markdown.resolve().parent
    relative = [Path(os.path.relpath(p.resolve(), folder)).as_posix() for p in (args.results, args.markdown)]
    command = " ".join(["erc-synth tables", relative[0], "--design", args.design,
                        *(["--compare-paper"] if args.compare_paper else []), "--out OUT", "--markdown", relative[1]])
    return write_results_page(args.markdown, args.results, written, command)
