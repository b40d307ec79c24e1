"""``erc-synth friedman``: Friedman rank sums and exact pairwise p-values from a CSV of scores.

SCORES.csv layout (comma-separated, UTF-8, one header line):

    test_set,baseline,synthetic_pretrained,other
    meld_seed1,0.6512,0.6633,0.6401
    emorynlp_seed1,0.3810,0.3902,0.3755

The first column names the block (test set); every other header cell names a system. Each following line is
one block with one score per system. Why this layout: it is what a spreadsheet of "model x test set" results
looks like when exported, and it keeps one block per line so errors can point at the line.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

from erc_synth.dataset_scripts.core.errors import DataFormatError, ErcSynthError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``friedman`` subcommand."""
    parser = subparsers.add_parser(
        "friedman",
        help="Friedman rank sums and exact pairwise p-values (Eisinga et al. 2017) from a CSV of scores",
        description=(
            "Rank k systems within each of n test sets (rows of SCORES.csv: first column the test set,\n"
            "one column per system), then test the requested pairs with exact p-values for the difference\n"
            "of rank sums (Eisinga et al. 2017)."
        ),
        epilog=(
            "SCORES.csv example:\n  test_set,baseline,synth\n  meld_seed1,0.651,0.663\n  emorynlp_seed1,0.381,0.390\n"
            "Scores must be finite numbers on any common scale (fractions or percentages)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("scores", type=Path, metavar="SCORES.csv", help="header: block name, then system names")
    parser.add_argument(
        "--compare",
        action="append",
        metavar="A:B",
        help="a pair of system names to test (repeatable; default: every pair)",
    )
    parser.add_argument(
        "--correction",
        choices=("bonferroni", "holm", "none"),
        default="bonferroni",
        help="multiple-comparison correction over the requested pairs (default: bonferroni)",
    )
    parser.add_argument(
        "--lower-is-better",
        action="store_true",
        help="rank the lowest score first (for losses or error rates)",
    )
    parser.add_argument("--plot", type=Path, metavar="PNG", help="also write a critical-difference diagram")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the full result as JSON instead of tables (an undefined or infinite statistic is null)",
    )
    parser.set_defaults(func=run_friedman)


def read_scores_csv(path: Path) -> tuple[list[str], list[str], list[list[float]]]:
    """Read SCORES.csv into (block names, system names, score rows), with errors that name line and column."""
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise DataFormatError(path, f"cannot open the scores file: {exc.strerror}") from exc
    with handle:
        reader = csv.reader(handle)
        try:
            header = next((row for row in reader if any(cell.strip() for cell in row)), None)
            if header is None:
                raise DataFormatError(path, "empty file: expected a header line 'block,system_a,system_b,...'")
            header_line = reader.line_num
            systems = [cell.strip() for cell in header[1:]]
            if len(systems) < 2:
                hint = " (the file must be comma-separated)" if any(c in header[0] for c in ";\t") else ""
                raise DataFormatError(
                    path, f"the header needs a block column and at least 2 system columns{hint}", line=header_line
                )
            for column, name in enumerate(systems, start=2):
                if not name:
                    raise DataFormatError(path, f"empty system name in header column {column}", line=header_line)
                if systems.count(name) > 1:
                    raise DataFormatError(path, "duplicate system name in header", line=header_line, value=name)
            blocks: list[str] = []
            rows: list[list[float]] = []
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                line = reader.line_num
                if len(row) != len(systems) + 1:
                    raise DataFormatError(
                        path,
                        f"expected {len(systems) + 1} cells (block name + {len(systems)} scores), got {len(row)}",
                        line=line,
                    )
                block = row[0].strip()
                if not block:
                    raise DataFormatError(path, "empty block (test set) name in the first column", line=line)
                if block in blocks:
                    raise DataFormatError(path, "duplicate block name", line=line, value=block)
                values = []
                for system, cell in zip(systems, row[1:], strict=True):
                    try:
                        value = float(cell)
                    except ValueError:
                        value = math.nan
                    if not math.isfinite(value):
                        raise DataFormatError(
                            path, "score is not a finite number", line=line, field=system, value=cell.strip()
                        )
                    values.append(value)
                blocks.append(block)
                rows.append(values)
        except csv.Error as exc:
            raise DataFormatError(path, f"malformed CSV: {exc}", line=reader.line_num) from exc
        except UnicodeDecodeError as exc:
            raise DataFormatError(path, f"not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
    if len(rows) < 2:
        raise DataFormatError(path, f"the Friedman test needs at least 2 blocks (data lines), found {len(rows)}")
    return blocks, systems, rows


def parse_comparison(spec: str, systems: list[str]) -> tuple[str, str]:
    """Split ``A:B`` at the one colon that leaves two known system names (names may contain colons)."""
    splits = [(spec[:i], spec[i + 1 :]) for i, char in enumerate(spec) if char == ":"]
    if not splits:
        raise ErcSynthError(f"--compare {spec!r}: expected two system names separated by ':'")
    known = [(a, b) for a, b in splits if a in systems and b in systems]
    if len(known) == 1:
        return known[0]
    if len(known) > 1:
        raise ErcSynthError(f"--compare {spec!r} is ambiguous: it splits into several pairs of known systems")
    unknown = sorted({name for pair in splits for name in pair if name not in systems})
    raise ErcSynthError(f"--compare {spec!r}: unknown system name(s) {unknown}; the CSV has {systems}")


def _format_p(value: float) -> str:
    return f"{value:.4g}" if value >= 1e-4 else f"{value:.3e}"


def format_report(result: dict) -> str:
    """Tables of rank sums, pairwise differences and p-values, and the critical differences."""
    direction = "higher is better" if result["higher_is_better"] else "lower is better"
    k, n = result["num_systems"], result["num_blocks"]
    lines = [f"Friedman test: {k} systems, {n} test sets ({direction}; rank 1 = best)"]
    if math.isnan(result["friedman_statistic"]):
        lines.append("  omnibus statistic undefined: every test set ties all systems")
    else:
        lines.append(
            f"  chi-square = {result['friedman_statistic']:.4f} (df {k - 1}),"
            f" p = {_format_p(result['friedman_p_value'])}"
            f"; Iman-Davenport F = {result['iman_davenport_f']:.4f} (df {k - 1}, {(k - 1) * (n - 1)}),"
            f" p = {_format_p(result['iman_davenport_p_value'])}"
        )
    if result["blocks_with_ties"]:
        lines.append(f"  {result['blocks_with_ties']} test set(s) had ties (average ranks)")
    width = max(len("system"), *(len(name) for name in result["system_names"]))
    lines += ["", f"{'system':<{width}}  {'rank sum':>9}  {'mean rank':>9}"]
    for name in result["system_names"]:
        lines.append(f"{name:<{width}}  {result['rank_sums'][name]:>9.1f}  {result['mean_ranks'][name]:>9.3f}")

    correction = result["correction"]
    m = result["num_comparisons"]
    lines += ["", f"Exact pairwise tests (Eisinga et al. 2017), correction: {correction} over {m} comparison(s)"]
    pair_width = max(len("A vs B"), *(len(f"{p['system_a']} vs {p['system_b']}") for p in result["pairwise"]))
    lines.append(f"{'A vs B':<{pair_width}}  {'R_A - R_B':>9}  {'p':>10}  {'p corrected':>11}  better")
    for pair in result["pairwise"]:
        label = f"{pair['system_a']} vs {pair['system_b']}"
        lines.append(
            f"{label:<{pair_width}}  {pair['rank_sum_diff']:>9.1f}  {_format_p(pair['p_value']):>10}"
            f"  {_format_p(pair['p_value_corrected']):>11}  {pair['better'] or '-'}"
        )
    differences = ", ".join(
        f"{'none reachable' if d is None else d} at alpha {alpha}"
        for alpha, d in result["critical_differences"].items()
    )
    lines += ["", f"Exact critical rank-sum difference for {m} comparison(s): {differences}"]
    return "\n".join(lines)


def run_friedman(args: argparse.Namespace) -> int:
    """Handler of ``erc-synth friedman``.

    The input is checked before the metric module is imported: it imports ``evaluate``, which imports
    transformers, and that costs seconds that a user with a typo in the CSV should not wait.
    """
    blocks, systems, rows = read_scores_csv(args.scores)
    comparisons = [parse_comparison(spec, systems) for spec in args.compare] if args.compare else None
    if args.plot and not args.plot.parent.is_dir():
        raise ErcSynthError(f"--plot {args.plot}: folder {args.plot.parent} does not exist")
    from erc_synth.evaluate_metrics.erc_metrics import critical_difference_plot, friedman_test
    try:
        result = friedman_test(
            rows,
            systems,
            comparisons=comparisons,
            correction=args.correction,
            higher_is_better=not args.lower_is_better,
        )
    except ValueError as exc:
        raise ErcSynthError(f"{args.scores}: {exc}") from exc
    result["block_names"] = blocks
    if args.plot:
        try:
            critical_difference_plot(result, args.plot)
        except OSError as exc:
            raise ErcSynthError(f"cannot write the plot to {args.plot}: {exc.strerror}") from exc
    if args.json:
        printable = dict(result, critical_differences={str(a): d for a, d in result["critical_differences"].items()})
        for key, value in printable.items():  # strict JSON has no NaN or Infinity: such statistics become null
            if isinstance(value, float) and not math.isfinite(value):
                printable[key] = None
        print(json.dumps(printable, indent=2, allow_nan=False))
    else:
        print(format_report(result))
        if args.plot:
            print(f"\nCritical-difference diagram written to {args.plot}")
    return 0
