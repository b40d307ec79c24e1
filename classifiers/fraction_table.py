"""The low-resource curve: real-test weighted F1 against the share of the real train split, per regime.

Why a table of its own: the study's tables compare regimes at one amount of real data, while synthetic data is
reported to help most where real data is scarce. Here each (benchmark, architecture, real fraction) row gives
every regime's mean and seed spread, and each pre-trained regime's difference from ``org`` at the same fraction
and seed (the same real dialogues, so the pre-training is the only difference), with a paired test over seeds.

Why a paired t-test rather than the signed-rank test: with three seeds the exact signed-rank test cannot go below
p = 0.25, so it could never report an effect; the t-test can, at the price of assuming the seed-to-seed
differences are roughly normal. Its p-value is a two-sided one, uncorrected; the per-fraction Friedman tables
carry the multiple-comparison correction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .pooled_table import REAL_TEST
from .pooled_table import ordered as _ordered
from .results_long import FRACTION_COLUMN

FRACTION_TABLE_COLUMNS = ("benchmark", "architecture", FRACTION_COLUMN, "regime", "mean", "std", "seeds",
                          "delta_vs_org", "delta_std", "paired_seeds", "p_paired_t")


def _paired_t(deltas: pd.Series) -> float:
    """Two-sided p of the paired t-test on per-seed differences (NaN under two seeds or with no spread)."""
    from scipy.stats import ttest_1samp

    if len(deltas) < 2 or float(deltas.std(ddof=1)) == 0.0:
        return math.nan
    return float(ttest_1samp(deltas.to_numpy(), 0.0).pvalue)


def fraction_table(long: pd.DataFrame, architectures: Sequence[str] = (), regimes: Sequence[str] = (),
                   benchmarks: Sequence[str] = ()) -> pd.DataFrame:
    """One row per (benchmark, architecture, real fraction, regime); scores x100 on the real test split."""
    real = long[long["test_set"] == REAL_TEST]
    rows = []
    for benchmark in _ordered(real["benchmark"], benchmarks):
        for architecture in _ordered(real["architecture"], architectures):
            group = real[(real["benchmark"] == benchmark) & (real["architecture"] == architecture)]
            for fraction in sorted(group[FRACTION_COLUMN].unique()):
                at = group[group[FRACTION_COLUMN] == fraction]
                org = at[at["regime"] == "org"].set_index("seed")["weighted_f1"]
                for regime in _ordered(at["regime"], regimes):
                    scores = at[at["regime"] == regime].set_index("seed")["weighted_f1"]
                    if scores.empty:
                        continue
                    deltas = (scores - org).dropna() * 100 if regime != "org" else pd.Series(dtype=float)
                    rows.append({
                        "benchmark": benchmark, "architecture": architecture, FRACTION_COLUMN: float(fraction),
                        "regime": regime, "mean": float(scores.mean()) * 100,
                        "std": float(scores.std(ddof=1)) * 100 if len(scores) > 1 else 0.0, "seeds": len(scores),
                        "delta_vs_org": float(deltas.mean()) if len(deltas) else math.nan,
                        "delta_std": float(deltas.std(ddof=1)) if len(deltas) > 1 else math.nan,
                        "paired_seeds": len(deltas), "p_paired_t": _paired_t(deltas),
                    })
    return pd.DataFrame(rows, columns=list(FRACTION_TABLE_COLUMNS))


def fraction_table_markdown(table: pd.DataFrame) -> str:
    """The curve as a table: per benchmark and fraction, each regime's score and its difference from org."""

    def number(value: float, fmt: str) -> str:
        return "–" if math.isnan(value) else format(value, fmt)

    lines = ["| benchmark | architecture | real fraction | regime | wF1 (mean ± std) | seeds | Δ vs org "
             "(mean ± std) | p (paired t) |", "|---|---|---:|---|---:|---:|---:|---:|"]
    for _, row in table.iterrows():
        delta = "–" if math.isnan(row["delta_vs_org"]) else (
            f"{row['delta_vs_org']:+.2f} ± {number(row['delta_std'], '.2f')}")
        lines.append(f"| {row['benchmark']} | {row['architecture']} | {row[FRACTION_COLUMN]:g} | {row['regime']} | "
                     f"{row['mean']:.2f} ± {row['std']:.2f} | {row['seeds']} | {delta} | "
                     f"{number(row['p_paired_t'], '.3g')} |")
    return "\n".join(lines) + "\n"


def learning_curve_plot(table: pd.DataFrame, path: Path) -> Path:
    """Weighted F1 against real fraction, a line per architecture and regime, seed spread as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    benchmarks = list(dict.fromkeys(table["benchmark"]))
    figure, axes = plt.subplots(1, len(benchmarks), figsize=(4.2 * len(benchmarks), 3.6), squeeze=False)
    for axis, benchmark in zip(axes[0], benchmarks, strict=True):
        rows = table[table["benchmark"] == benchmark]
        for (architecture, regime), line in rows.groupby(["architecture", "regime"], sort=False):
            line = line.sort_values(FRACTION_COLUMN)
            axis.errorbar(line[FRACTION_COLUMN], line["mean"], yerr=line["std"], marker="o", capsize=3,
                          label=regime if rows["architecture"].nunique() == 1 else f"{architecture}-{regime}")
        axis.set_xscale("log")
        fractions = sorted(rows[FRACTION_COLUMN].unique())
        axis.set_xticks(fractions, [f"{f:g}" for f in fractions])
        axis.minorticks_off()
        axis.set_title(benchmark)
        axis.set_xlabel("real train fraction")
        axis.set_ylabel("weighted F1 (x100), real test")
        axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120, metadata={"Software": None})
    plt.close(figure)
    return path


def write_fraction_tables(long: pd.DataFrame, out_dir: Path, architectures: Sequence[str] = (),
                          regimes: Sequence[str] = (), benchmarks: Sequence[str] = ()) -> dict[str, Path]:
    """``fraction_table.{csv,md}`` and ``learning_curve.png`` in ``out_dir``."""
    table = fraction_table(long, architectures, regimes, benchmarks)
    table.to_csv(out_dir / "fraction_table.csv", index=False, float_format="%.6g")
    (out_dir / "fraction_table.md").write_text(
        "Weighted F1 (x100) on the real test split against the share of the real train dialogues fine-tuned on; "
        "Δ vs org is per seed, on the same real dialogues, then averaged; p from a paired t-test over seeds "
        "(two-sided, uncorrected).\n\n" + fraction_table_markdown(table))
    return {"fraction_csv": out_dir / "fraction_table.csv", "fraction_md": out_dir / "fraction_table.md",
            "learning_curve": learning_curve_plot(table, out_dir / "learning_curve.png")}
