"""The reference study's published numbers (Table III and Table IV), for side-by-side comparison and tests.

Kaplan, De Castro Carneiro and Wermter (2025) released no code or data, so their printed tables are the only
reference. Why a Python module and not a data file: the numbers are small, they must ship inside the wheel, and a
module needs no package-data entry. Weighted F1 is stored x100, exactly as printed; the study's "EmoOne"
(EmoOne-RoBERTa) is mapped to this project's ``emoberta`` (EmoBERTa-style) architecture.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from erc_synth.dataset_scripts.core.reference_study import BIBTEX, CITATION

__all__ = ["BIBTEX", "CITATION", "TABLE_III", "TABLE_IV", "TABLE_IV_SYSTEMS"]

#: The study's column names -> this project's architecture names.
ARCHITECTURE_NAMES: Mapping[str, str] = MappingProxyType({"CoMPM": "compm", "EmoOne": "emoberta",
                                                          "TODKAT": "todkat"})

#: Table III: test weighted F1 (x100) on the real test splits; (benchmark, regime, architecture) -> score.
TABLE_III: Mapping[tuple[str, str, str], float] = MappingProxyType({
    (benchmark, regime, architecture): score
    for benchmark, rows in {
        "meld": {"org": (65.43, 65.46, 63.47), "nat": (65.52, 66.50, 64.20), "bal": (66.16, 67.27, 64.27)},
        "emorynlp": {"org": (37.25, 35.93, 35.38), "nat": (39.50, 38.79, 36.77), "bal": (38.93, 39.05, 37.40)},
        "iemocap": {"org": (65.21, 67.19, 54.63), "nat": (68.06, 69.28, 55.96), "bal": (67.87, 67.81, 53.39)},
    }.items()
    for regime, scores in rows.items()
    for architecture, score in zip(("compm", "emoberta", "todkat"), scores, strict=True)
})

#: Table IV's score matrix: (benchmark, test set) -> the nine systems' weighted F1 (x100) in TABLE_IV_SYSTEMS order.
TABLE_IV_SYSTEMS: tuple[tuple[str, str], ...] = tuple(
    (architecture, regime) for architecture in ("compm", "emoberta", "todkat") for regime in ("org", "nat", "bal")
)
TABLE_IV: Mapping[tuple[str, str], tuple[float, ...]] = MappingProxyType({
    ("meld", "real"): (65.43, 65.52, 66.16, 65.46, 66.50, 67.27, 63.47, 64.20, 64.27),
    ("meld", "synthetic_natural"): (48.07, 50.96, 50.29, 49.18, 50.95, 49.24, 46.52, 49.37, 47.86),
    ("meld", "synthetic_balanced"): (58.66, 60.77, 65.99, 61.17, 61.20, 66.10, 57.34, 60.46, 62.30),
    ("emorynlp", "real"): (37.25, 39.50, 38.93, 35.93, 38.79, 39.05, 35.38, 36.77, 37.40),
    ("emorynlp", "synthetic_natural"): (31.66, 35.89, 34.00, 28.85, 34.06, 34.73, 28.37, 37.14, 31.12),
    ("emorynlp", "synthetic_balanced"): (47.67, 53.39, 60.86, 46.91, 50.51, 60.92, 38.15, 49.71, 56.95),
    ("iemocap", "real"): (65.21, 68.06, 67.87, 67.19, 69.28, 67.81, 54.63, 55.96, 53.39),
    ("iemocap", "synthetic_natural"): (16.76, 37.58, 27.08, 19.84, 35.85, 27.89, 26.02, 30.86, 30.27),
    ("iemocap", "synthetic_balanced"): (34.05, 53.89, 59.62, 33.20, 50.26, 60.35, 40.23, 41.94, 47.64),
})
#: Table IV's printed summary rows: rank sums, rank-sum difference from the own architecture's org, and the
#: Bonferroni-corrected (x6) exact p-values, truncated (not rounded) to four decimals by the study.
TABLE_IV_RANK_SUMS: tuple[int, ...] = (63, 24, 29, 62, 28, 23, 76, 49, 51)
TABLE_IV_P_BONFERRONI: Mapping[tuple[str, str], float] = MappingProxyType({
    ("compm", "nat"): 0.0034, ("compm", "bal"): 0.0186, ("emoberta", "nat"): 0.0186,
    ("emoberta", "bal"): 0.0034, ("todkat", "nat"): 0.1273, ("todkat", "bal"): 0.2025,
})


def compare_main_table(measured: Mapping[tuple[str, str, str], float]) -> list[dict[str, object]]:
    """Rows (benchmark, regime, architecture, measured, study, difference) for every measured Table III cell.

    ``measured`` maps (benchmark, regime, architecture) to a weighted F1 x100; cells the study did not report
    (e.g. regime ``syn``) get ``study`` and ``difference`` None, so nothing measured is hidden.
    """
    rows = []
    for (benchmark, regime, architecture), value in measured.items():
        study = TABLE_III.get((benchmark, regime, architecture))
        rows.append({"benchmark": benchmark, "regime": regime, "architecture": architecture, "measured": value,
                     "study": study, "difference": None if study is None else value - study})
    return rows


def compare_markdown(rows: list[dict[str, object]]) -> str:
    """The comparison as a Markdown table, with the citation underneath."""
    lines = ["| benchmark | regime | architecture | measured | study (Table III) | measured − study |",
             "|---|---|---|---:|---:|---:|"]
    for row in rows:
        study = "–" if row["study"] is None else f"{row['study']:.2f}"
        difference = "–" if row["difference"] is None else f"{row['difference']:+.2f}"
        lines.append(f"| {row['benchmark']} | {row['regime']} | {row['architecture']} | {row['measured']:.2f} | "
                     f"{study} | {difference} |")
    lines += ["", f"Weighted F1 x100 on the real test split (measured: mean over seeds). Study: {CITATION}."]
    return "\n".join(lines) + "\n"
