"""The study's extended table: one pooled Friedman test over every benchmark and test set (Table IV's design).

Blocks are (benchmark, test set) pairs: the real test split and each synthetic test split of every benchmark.
Systems are architecture x regime. Each (system, block) cell is ONE score, the mean over seeds, so a block is a
test set and not a training run: that is how the study ranked nine systems on nine test sets. The comparisons
are exactly each non-``org`` system against its own architecture's ``org`` system, Bonferroni-corrected over
that many comparisons, with exact p-values (Eisinga et al. 2017) from the project's ``friedman_test``.

Why every cell must be present: a Friedman block ranks all systems at once, so a block missing one system
cannot be ranked fairly and dropping it would silently change the study's design; the missing cells are
listed instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from erc_synth.dataset_scripts.core.errors import ErcSynthError
from erc_synth.dataset_scripts.core.registry import BENCHMARKS

from .scoring import metric_functions
from .training import REGIMES

REAL_TEST = "real"
TEST_SET_ORDER = (REAL_TEST, "synthetic_natural", "synthetic_balanced")


def ordered(values: Sequence[str], preferred: Sequence[str]) -> list[str]:
    """The distinct ``values``: those in ``preferred`` first, in its order, then the rest sorted."""
    present = list(dict.fromkeys(values))
    return [v for v in preferred if v in present] + sorted(v for v in present if v not in preferred)


def system_name(architecture: str, regime: str) -> str:
    return f"{architecture}-{regime}"


def pooled_matrix(long: pd.DataFrame, architectures: Sequence[str] = (), regimes: Sequence[str] = (),
                  benchmarks: Sequence[str] = ()) -> pd.DataFrame:
    """Blocks (benchmark, test set) x systems, each cell the mean weighted F1 over seeds (a fraction).

    Raises a user error listing every missing (benchmark, test set, system) cell.
    """
    archs = ordered(long["architecture"], architectures)
    regs = ordered(long["regime"], regimes or REGIMES)
    systems = [system_name(a, r) for a in archs for r in regs
               if not long[(long["architecture"] == a) & (long["regime"] == r)].empty]
    blocks = [(b, t) for b in ordered(long["benchmark"], benchmarks or tuple(BENCHMARKS))
              for t in ordered(long[long["benchmark"] == b]["test_set"], TEST_SET_ORDER)]
    named = long.assign(system=[system_name(a, r) for a, r in zip(long["architecture"], long["regime"],
                                                                    strict=True)])
    matrix = named.pivot_table(index=["benchmark", "test_set"], columns="system", values="weighted_f1",
                               aggfunc="mean").reindex(index=pd.MultiIndex.from_tuples(blocks), columns=systems)
    missing = [f"{b}/{t}/{s}" for (b, t), row in matrix.iterrows() for s in systems if pd.isna(row[s])]
    if missing:
        raise ErcSynthError(f"pooled design: {len(missing)} missing (benchmark/test set/system) cell(s): "
                            f"{', '.join(missing)}; every system needs a score on every test set")
    return matrix


def org_comparisons(systems: Sequence[str]) -> list[tuple[str, str]]:
    """Each non-org system against its own architecture's org system, when both are present."""
    pairs = []
    for system in systems:
        architecture, _, regime = system.rpartition("-")
        org = system_name(architecture, "org")
        if regime != "org" and org in systems:
            pairs.append((system, org))
    return pairs


def pooled_table(long: pd.DataFrame, architectures: Sequence[str] = (), regimes: Sequence[str] = (),
                 benchmarks: Sequence[str] = ()) -> tuple[pd.DataFrame, dict[str, Any] | None, pd.DataFrame]:
    """(one row per system, the Friedman result or None, the block x system matrix x100)."""
    matrix = pooled_matrix(long, architectures, regimes, benchmarks)  # checked before the metric is imported
    systems = list(matrix.columns)
    table = pd.DataFrame({"system": systems, "architecture": [s.rpartition("-")[0] for s in systems],
                          "regime": [s.rpartition("-")[2] for s in systems]})
    for (benchmark, test_set), row in matrix.iterrows():
        table[f"wf1_{benchmark}_{test_set}"] = [float(row[s]) * 100 for s in systems]
    if len(systems) < 2 or len(matrix) < 2:
        return table, None, matrix * 100
    comparisons = org_comparisons(systems)
    _, friedman_test, _ = metric_functions()
    result = friedman_test(matrix.to_numpy().tolist(), systems, comparisons=comparisons or None,
                           correction="bonferroni")
    table["rank_sum"] = [result["rank_sums"][s] for s in systems]
    table["mean_rank"] = [result["mean_ranks"][s] for s in systems]
    by_system = {p["system_a"]: p for p in result["pairwise"]} if comparisons else {}
    table["vs_org_rank_sum_diff"] = [by_system[s]["rank_sum_diff"] if s in by_system else math.nan for s in systems]
    table["p_value"] = [by_system[s]["p_value"] if s in by_system else math.nan for s in systems]
    table["p_value_bonferroni"] = [by_system[s]["p_value_corrected"] if s in by_system else math.nan
                                   for s in systems]
    result["block_names"] = [f"{b} {t}" for b, t in matrix.index]
    return table, result, matrix * 100


def _number(value: float, fmt: str) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, fmt)


def pooled_table_markdown(table: pd.DataFrame, result: dict[str, Any] | None, matrix: pd.DataFrame) -> str:
    """Table IV's layout: test-set rows with ranks in parentheses, then rank sums, org − system, corrected p."""
    systems = list(matrix.columns)
    lines = ["| test set | " + " | ".join(systems) + " |", "|---|" + "---:|" * len(systems)]
    ranks = result["ranks"] if result else None
    for position, ((benchmark, test_set), row) in enumerate(matrix.iterrows()):
        cells = [f"{row[s]:.2f}" + (f" ({ranks[position][i]:g})" if ranks else "") for i, s in enumerate(systems)]
        lines.append(f"| {benchmark} {test_set} | " + " | ".join(cells) + " |")
    if result is None:
        return "Too few systems or blocks for the Friedman test.\n\n" + "\n".join(lines) + "\n"
    indexed = table.set_index("system")
    gain = [-indexed.loc[s, "vs_org_rank_sum_diff"] for s in systems]
    lines.append("| **rank sum** | " + " | ".join(f"{indexed.loc[s, 'rank_sum']:g}" for s in systems) + " |")
    lines.append("| **diff. vs org** | " + " | ".join(_number(g, "g") for g in gain) + " |")
    lines.append("| **p (Bonferroni)** | " + " | ".join(_number(indexed.loc[s, "p_value_bonferroni"], ".4g")
                                                      for s in systems) + " |")
    intro = (f"One pooled Friedman test: {result['num_systems']} systems ranked on {result['num_blocks']} blocks "
             "(benchmark x test set, each cell the mean weighted F1 x100 over seeds; rank 1 = best, in "
             "parentheses). diff. vs org = org's rank sum minus the system's (positive: better than org). "
             f"Exact p-values (Eisinga et al. 2017), Bonferroni over the {result['num_comparisons']} "
             f"comparison(s) with the own architecture's org; Friedman p = {result['friedman_p_value']:.4g}.")
    return intro + "\n\n" + "\n".join(lines) + "\n"
