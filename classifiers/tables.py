"""The study's two result tables and the critical-difference plot, from the experiment's long results.

Main table: rows benchmark x regime, columns architectures, weighted F1 on the REAL test split as mean ± sample
standard deviation over seeds (x100); the best cell of each benchmark is marked.

Extended table, one per benchmark: the systems are architecture x regime (nine with three architectures).
Blocks for the Friedman test are (test set, seed) pairs: every seed's score on every test set (real test and
each synthetic test split) is one block in which the systems are ranked (rank 1 = highest weighted F1). Why
seeds as blocks rather than seed means: a seed is an independent training run, so each is a fair repeated
measurement, and the exact test then accounts for the number of runs actually made. Only blocks where every
system has a score enter the test. The comparisons are exactly each pre-trained system against its own ``org``
counterpart (``arch-nat`` vs ``arch-org``, ``arch-bal`` vs ``arch-org``), Bonferroni-corrected over those
comparisons, with exact p-values from the project's ``friedman_test``. This is the ``per_benchmark`` design.

The ``pooled`` design (the study's Table IV, :mod:`.pooled_table`) runs one test over every benchmark instead;
``write_tables(design=...)`` and the experiment config's ``friedman_design:`` choose.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from erc_synth.dataset_scripts.core.errors import ErcSynthError
from erc_synth.dataset_scripts.core.registry import BENCHMARKS

from .pooled_table import REAL_TEST, TEST_SET_ORDER, pooled_table, pooled_table_markdown, system_name
from .pooled_table import ordered as _ordered
from .results_long import FRACTION_COLUMN, LONG_COLUMNS
from .scoring import metric_functions
from .training import REGIMES

#: Extended-table designs: the study's one pooled test, or one test per benchmark with (test set, seed) blocks.
DESIGNS: tuple[str, ...] = ("pooled", "per_benchmark")


def main_table(long: pd.DataFrame, architectures: Sequence[str] = (), regimes: Sequence[str] = (),
               benchmarks: Sequence[str] = ()) -> pd.DataFrame:
    """One row per (benchmark, regime, architecture) with mean, std (ddof=1; 0 for one seed), seeds, best."""
    real = long[long["test_set"] == REAL_TEST]
    rows = []
    for benchmark in _ordered(real["benchmark"], benchmarks):
        for regime in _ordered(real["regime"], regimes):
            for architecture in _ordered(real["architecture"], architectures):
                cell = real[(real["benchmark"] == benchmark) & (real["regime"] == regime)
                            & (real["architecture"] == architecture)]["weighted_f1"]
                if cell.empty:
                    continue
                rows.append({"benchmark": benchmark, "regime": regime, "architecture": architecture,
                             "mean": float(cell.mean()) * 100,
                             "std": float(cell.std(ddof=1)) * 100 if len(cell) > 1 else 0.0,
                             "seeds": len(cell)})
    table = pd.DataFrame(rows, columns=["benchmark", "regime", "architecture", "mean", "std", "seeds"])
    table["best"] = False
    for _benchmark, group in table.groupby("benchmark", sort=False):
        table.loc[group["mean"].idxmax(), "best"] = True
    return table


def main_table_markdown(table: pd.DataFrame) -> str:
    """Rows benchmark x regime, columns architectures, ``mean ± std``; the best per benchmark in bold."""
    architectures = list(dict.fromkeys(table["architecture"]))
    lines = ["| benchmark | regime | " + " | ".join(architectures) + " |",
             "|---|---|" + "---:|" * len(architectures)]
    for (benchmark, regime), group in table.groupby(["benchmark", "regime"], sort=False):
        cells = []
        for architecture in architectures:
            row = group[group["architecture"] == architecture]
            if row.empty:
                cells.append("–")
                continue
            row = row.iloc[0]
            text = f"{row['mean']:.2f} ± {row['std']:.2f}"
            cells.append(f"**{text}**" if row["best"] else text)
        lines.append(f"| {benchmark} | {regime} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def extended_table(long: pd.DataFrame, benchmark: str, architectures: Sequence[str] = (),
                   regimes: Sequence[str] = ()) -> tuple[pd.DataFrame, dict[str, Any] | None]:
    """Per-system rank sums over (test set, seed) blocks, mean weighted F1 per test set, and the tests
    of each pretrained system against its ``org`` counterpart. Returns (table, friedman result or None)."""
    _, friedman_test, _ = metric_functions()
    data = long[long["benchmark"] == benchmark]
    archs = _ordered(data["architecture"], architectures)
    regs = _ordered(data["regime"], regimes)
    systems = [system_name(a, r) for a in archs for r in regs
               if not data[(data["architecture"] == a) & (data["regime"] == r)].empty]
    pivot = data.assign(system=[system_name(a, r) for a, r in zip(data["architecture"], data["regime"],
                                                                    strict=True)])
    pivot = pivot.pivot_table(index=["test_set", "seed"], columns="system", values="weighted_f1", aggfunc="first")
    pivot = pivot.reindex(columns=systems).dropna()  # complete blocks only
    test_sets = _ordered(pivot.index.get_level_values("test_set"), TEST_SET_ORDER)
    pivot = pivot.reindex([b for t in test_sets for b in pivot.index if b[0] == t])
    rows = []
    for system in systems:
        architecture, _, regime = system.rpartition("-")
        row = {"system": system, "architecture": architecture, "regime": regime}
        for test_set in test_sets:
            row[f"wf1_{test_set}"] = float(pivot.loc[test_set, system].mean()) * 100 if not pivot.empty else math.nan
        rows.append(row)
    table = pd.DataFrame(rows)
    if len(systems) < 2 or len(pivot) < 2:
        return table, None
    comparisons = [(system_name(a, r), system_name(a, "org")) for a in archs for r in regs
                   if r != "org" and system_name(a, r) in systems and system_name(a, "org") in systems]
    result = friedman_test(pivot.to_numpy().tolist(), systems, comparisons=comparisons or None,
                           correction="bonferroni")
    ranks = pd.DataFrame(result["ranks"], index=pivot.index, columns=systems)
    table["rank_sum"] = [result["rank_sums"][s] for s in systems]
    table["mean_rank"] = [result["mean_ranks"][s] for s in systems]
    for test_set in test_sets:
        table[f"rank_sum_{test_set}"] = [float(ranks.loc[test_set, s].sum()) for s in systems]
    by_pair = {(p["system_a"], p["system_b"]): p for p in result["pairwise"]}
    table["vs_org_rank_sum_diff"] = math.nan
    table["p_value"] = math.nan
    table["p_value_bonferroni"] = math.nan
    for index, system in enumerate(systems):
        architecture, _, _regime = system.rpartition("-")
        pair = by_pair.get((system, system_name(architecture, "org"))) if comparisons else None
        if pair:
            table.loc[index, "vs_org_rank_sum_diff"] = pair["rank_sum_diff"]
            table.loc[index, "p_value"] = pair["p_value"]
            table.loc[index, "p_value_bonferroni"] = pair["p_value_corrected"]
    table.attrs["blocks"] = len(pivot)
    return table, result


def extended_table_markdown(benchmark: str, table: pd.DataFrame, result: dict[str, Any] | None) -> str:
    """One benchmark's extended table; negative rank-sum differences mean the system ranks better than org."""
    test_columns = [c for c in table.columns if c.startswith("wf1_")]
    header = ["system", *(c.removeprefix("wf1_") + " wF1" for c in test_columns)]
    if result is None:
        lines = [f"### {benchmark}", "", "Too few systems or complete blocks for the Friedman test.", "",
                 "| " + " | ".join(header) + " |", "|---|" + "---:|" * len(test_columns)]
        for _, row in table.iterrows():
            lines.append("| " + " | ".join([row["system"], *(f"{row[c]:.2f}" for c in test_columns)]) + " |")
        return "\n".join(lines) + "\n"
    header += ["rank sum", "Δ rank sum vs org", "p", "p (Bonferroni)"]
    lines = [f"### {benchmark}", "",
             f"{result['num_blocks']} blocks (test set x seed), {result['num_systems']} systems, "
             f"{result['num_comparisons']} comparisons; Friedman p = {result['friedman_p_value']:.4g}.", "",
             "| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]

    def number(value: float, fmt: str) -> str:
        return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, fmt)

    for _, row in table.iterrows():
        cells = [row["system"], *(f"{row[c]:.2f}" for c in test_columns), f"{row['rank_sum']:g}",
                 number(row["vs_org_rank_sum_diff"], "+g"), number(row["p_value"], ".4g"),
                 number(row["p_value_bonferroni"], ".4g")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _write_main(long: pd.DataFrame, out_dir: Path, architectures, regimes, benchmarks) -> dict[str, Path]:
    main = main_table(long, architectures, regimes, benchmarks)
    main.to_csv(out_dir / "main_table.csv", index=False, float_format="%.4f")
    (out_dir / "main_table.md").write_text(
        "Weighted F1 (x100) on the real test split, mean ± std over seeds; best per benchmark in bold.\n\n"
        + main_table_markdown(main))
    return {"main_csv": out_dir / "main_table.csv", "main_md": out_dir / "main_table.md"}


def _write_per_benchmark(long: pd.DataFrame, out_dir: Path, architectures, regimes,
                         benchmarks) -> dict[str, Path]:
    _, _, critical_difference_plot = metric_functions()
    written: dict[str, Path] = {}
    sections = ["Extended results: systems ranked on every (test set, seed) block; Δ rank sum is the "
                "pre-trained system's rank sum minus its org counterpart's (negative: better); exact p-values "
                "(Eisinga et al. 2017), Bonferroni-corrected over the comparisons made.\n"]
    frames = []
    for benchmark in _ordered(long["benchmark"], benchmarks):
        table, result = extended_table(long, benchmark, architectures, regimes)
        frames.append(table.assign(benchmark=benchmark))
        sections.append(extended_table_markdown(benchmark, table, result))
        if result is not None:
            plot = out_dir / f"critical_difference_{benchmark}.png"
            critical_difference_plot(result, plot)
            written[f"cd_{benchmark}"] = plot
    extended = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if not extended.empty:
        extended = extended[["benchmark", *(c for c in extended.columns if c != "benchmark")]]
    extended.to_csv(out_dir / "extended_table.csv", index=False, float_format="%.6g")
    (out_dir / "extended_table.md").write_text("\n".join(sections))
    return written


def _write_pooled(long: pd.DataFrame, out_dir: Path, architectures, regimes, benchmarks) -> dict[str, Path]:
    _, _, critical_difference_plot = metric_functions()
    table, result, matrix = pooled_table(long, architectures, regimes, benchmarks)
    table.to_csv(out_dir / "extended_table.csv", index=False, float_format="%.6g")
    (out_dir / "extended_table.md").write_text(pooled_table_markdown(table, result, matrix))
    if result is None:
        return {}
    plot = out_dir / "critical_difference_pooled.png"
    critical_difference_plot(result, plot)
    return {"cd_pooled": plot}


def paper_comparison_markdown(long: pd.DataFrame, architectures: Sequence[str] = (), regimes: Sequence[str] = (),
                              benchmarks: Sequence[str] = ()) -> str:
    """The main table's cells beside the study's Table III, with the difference per cell.

    Only models fine-tuned on the whole real train split are compared: the study used nothing less.
    """
    from .paper_reference import compare_main_table, compare_markdown

    if FRACTION_COLUMN in long.columns:
        long = long[long[FRACTION_COLUMN] == 1.0]

    main = main_table(long, architectures, regimes, benchmarks)
    measured = {(r["benchmark"], r["regime"], r["architecture"]): float(r["mean"]) for _, r in main.iterrows()}
    return compare_markdown(compare_main_table(measured))


def fraction_folder(out_dir: Path, fraction: float) -> Path:
    """Where one real-train fraction's main and extended tables go when a grid has several fractions."""
    return out_dir / f"real-fraction-{fraction:g}"


def _write_study_tables(long: pd.DataFrame, out_dir: Path, architectures, regimes, benchmarks,
                        design: str) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = _write_main(long, out_dir, architectures, regimes, benchmarks)
    writer = _write_pooled if design == "pooled" else _write_per_benchmark
    written.update(writer(long, out_dir, architectures, regimes, benchmarks))
    written["extended_csv"], written["extended_md"] = out_dir / "extended_table.csv", out_dir / "extended_table.md"
    return written


def write_tables(long: pd.DataFrame, out_dir: str | Path, architectures: Sequence[str] = (),
                 regimes: Sequence[str] = (), benchmarks: Sequence[str] = (),
                 design: str = "per_benchmark") -> dict[str, Path]:
    """Write the long CSV, the main table and the extended table of ``design`` (Markdown + CSV) with its
    critical-difference plot(s).

    Results at several real-train fractions get those tables once per fraction (``real-fraction-F/``: a Friedman
    test compares systems trained on the same real data), and the curve across fractions beside them
    (:mod:`.fraction_table`).
    """
    if design not in DESIGNS:
        raise ErcSynthError(f"unknown Friedman design {design!r}; choose one of: {', '.join(DESIGNS)}")
    regimes, benchmarks = regimes or REGIMES, benchmarks or tuple(BENCHMARKS)  # the study's order by default
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if FRACTION_COLUMN not in long.columns:
        long = long.assign(**{FRACTION_COLUMN: 1.0})
    long = long.sort_values([FRACTION_COLUMN, "benchmark", "architecture", "regime", "seed", "test_set"]
                            ).reset_index(drop=True)
    fractions = sorted(float(f) for f in long[FRACTION_COLUMN].unique())
    columns = list(LONG_COLUMNS) + ([FRACTION_COLUMN] if fractions not in ([], [1.0]) else [])
    long.to_csv(out_dir / "results_long.csv", index=False, columns=columns, float_format="%.6f")
    written = {"long": out_dir / "results_long.csv"}
    if fractions in ([], [1.0]):
        return {**written, **_write_study_tables(long, out_dir, architectures, regimes, benchmarks, design)}
    from .fraction_table import write_fraction_tables

    for fraction in fractions:
        at = long[long[FRACTION_COLUMN] == fraction]
        tables = _write_study_tables(at, fraction_folder(out_dir, fraction), architectures, regimes, benchmarks,
                                     design)
        written.update({f"{name}@{fraction:g}": path for name, path in tables.items()})
    written.update(write_fraction_tables(long, out_dir, architectures, regimes, benchmarks))
    return written
