"""``erc-synth tables``: the study's Table IV reproduced from a long CSV, the pooled design, and bad input.

``fixtures/paper_table_iv_long.csv`` is Table IV of Kaplan et al. (2025) typed in as a long CSV (one seed; the
scores /100, as in an experiment's results_long.csv). The study prints Bonferroni-corrected p-values truncated
to four decimals, so the test truncates too.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from erc_synth.classifiers.paper_reference import TABLE_III, TABLE_IV, TABLE_IV_SYSTEMS
from erc_synth.classifiers.pooled_table import pooled_table
from erc_synth.cli import main
from erc_synth.dataset_scripts.core.errors import ErcSynthError
from erc_synth.evaluate_metrics.erc_metrics import friedman_test

SYSTEMS = [f"{a}-{r}" for a, r in TABLE_IV_SYSTEMS]


@pytest.fixture
def table_iv(fixtures_dir: Path) -> Path:
    return fixtures_dir / "paper_table_iv_long.csv"


def truncate4(value: float) -> float:
    return math.floor(value * 10_000) / 10_000


def test_table_iv_gives_back_the_studys_rank_sums_and_p_values(table_iv, tmp_path, capsys):
    assert main(["tables", str(table_iv), "--design", "pooled", "--out", str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "extended_table.csv").set_index("system")
    assert list(table.index) == SYSTEMS
    assert [int(table.loc[s, "rank_sum"]) for s in SYSTEMS] == [63, 24, 29, 62, 28, 23, 76, 49, 51]
    org_minus_system = {s: -table.loc[s, "vs_org_rank_sum_diff"] for s in SYSTEMS if not s.endswith("-org")}
    assert org_minus_system == {"compm-nat": 39, "compm-bal": 34, "emoberta-nat": 34, "emoberta-bal": 39,
                                "todkat-nat": 27, "todkat-bal": 25}
    printed = {"compm-nat": 0.0034, "compm-bal": 0.0186, "emoberta-nat": 0.0186, "emoberta-bal": 0.0034,
               "todkat-nat": 0.1273, "todkat-bal": 0.2025}
    assert {s: truncate4(table.loc[s, "p_value_bonferroni"]) for s in printed} == printed
    assert table["p_value_bonferroni"].isna().sum() == 3  # the org systems are not compared with themselves
    markdown = (tmp_path / "extended_table.md").read_text()
    assert "| meld real | 65.43 (6) | 65.52 (4) | 66.16 (3) |" in markdown
    assert "| **rank sum** | 63 | 24 | 29 | 62 | 28 | 23 | 76 | 49 | 51 |" in markdown
    assert "| **diff. vs org** | – | 39 | 34 | – | 34 | 39 | – | 27 | 25 |" in markdown
    assert (tmp_path / "critical_difference_pooled.png").stat().st_size > 0
    assert "extended_md:" in capsys.readouterr().out


def test_the_fixture_and_the_shipped_reference_hold_the_same_numbers(table_iv):
    long = pd.read_csv(table_iv)
    for (benchmark, test_set), scores in TABLE_IV.items():
        for (architecture, regime), score in zip(TABLE_IV_SYSTEMS, scores, strict=True):
            cell = long[(long["benchmark"] == benchmark) & (long["test_set"] == test_set)
                        & (long["architecture"] == architecture) & (long["regime"] == regime)]
            assert cell["weighted_f1"].tolist() == [pytest.approx(score / 100)]
            if test_set == "real":
                assert TABLE_III[(benchmark, regime, architecture)] == score


def test_pooled_design_equals_friedman_test_on_a_known_matrix():
    # Two seeds per cell: the pooled design averages them, so a block is a test set.
    rows = []
    matrix = {}
    for b, benchmark in enumerate(("meld", "iemocap")):
        for t, test_set in enumerate(("real", "synthetic_natural")):
            block = []
            for s, (architecture, regime) in enumerate((("emoberta", "org"), ("emoberta", "nat"), ("compm", "org"),
                                                         ("compm", "bal"))):
                base = 0.3 + 0.1 * ((s * 7 + b * 3 + t * 5) % 4)
                for seed, jitter in ((0, -0.01), (1, 0.01)):
                    rows.append({"architecture": architecture, "regime": regime, "benchmark": benchmark,
                                 "seed": seed, "test_set": test_set, "weighted_f1": base + jitter})
                block.append(base)
            matrix[(benchmark, test_set)] = block
    long = pd.DataFrame(rows)
    table, result, _ = pooled_table(long, ["emoberta", "compm"], ["org", "nat", "bal"], ["meld", "iemocap"])
    systems = ["emoberta-org", "emoberta-nat", "compm-org", "compm-bal"]
    direct = friedman_test([matrix[k] for k in (("meld", "real"), ("meld", "synthetic_natural"),
                                                 ("iemocap", "real"), ("iemocap", "synthetic_natural"))],
                           systems, comparisons=[("emoberta-nat", "emoberta-org"), ("compm-bal", "compm-org")])
    assert result["rank_sums"] == direct["rank_sums"]
    assert result["num_blocks"] == 4 and result["num_comparisons"] == 2
    indexed = table.set_index("system")
    for pair in direct["pairwise"]:
        assert indexed.loc[pair["system_a"], "p_value_bonferroni"] == pytest.approx(pair["p_value_corrected"])
        assert indexed.loc[pair["system_a"], "vs_org_rank_sum_diff"] == pair["rank_sum_diff"]


def test_a_missing_cell_is_listed(table_iv, tmp_path, capsys):
    long = pd.read_csv(table_iv)
    holes = ((long["benchmark"] == "meld") & (long["test_set"] == "real") & (long["regime"] == "nat")
             & (long["architecture"] == "compm"))
    holes |= ((long["benchmark"] == "iemocap") & (long["test_set"] == "synthetic_balanced")
              & (long["architecture"] == "todkat") & (long["regime"] == "bal"))
    path = tmp_path / "holes.csv"
    long[~holes].to_csv(path, index=False)
    assert main(["tables", str(path), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip()
    assert "2 missing (benchmark/test set/system) cell(s): meld/real/compm-nat, " \
           "iemocap/synthetic_balanced/todkat-bal" in error
    with pytest.raises(ErcSynthError, match="meld/real/compm-nat"):
        pooled_table(long[~holes])
    # The per-benchmark design keeps only complete blocks, as before; it still runs.
    assert main(["tables", str(path), "--design", "per_benchmark", "--out", str(tmp_path / "pb")]) == 0
    per_benchmark = pd.read_csv(tmp_path / "pb" / "extended_table.csv")
    assert set(per_benchmark["benchmark"]) == {"meld", "emorynlp", "iemocap"}


@pytest.mark.parametrize(("edit", "fragment"), [
    (lambda text: text.replace("weighted_f1", "wf1", 1), ":1: missing column(s) weighted_f1"),
    (lambda text: text.replace("0.6552", "high", 1), ":3: not a number (field 'weighted_f1', value 'high')"),
    (lambda text: text.replace(",0,real,0.6552", ",zero,real,0.6552", 1), ":3: not an integer (field 'seed'"),
    (lambda text: text.replace("0.6552", "nan", 1), ":3: not a finite number (field 'weighted_f1'"),
    (lambda text: text.replace("0.6552", "65.52", 1), ":3: weighted F1 must be a fraction in [0, 1]"),
])
def test_bad_csv_names_the_line_and_column(edit, fragment, table_iv, tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text(edit(table_iv.read_text()))
    assert main(["tables", str(path), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("erc-synth tables: error: ") and f"{path}{fragment}" in error
    assert not (tmp_path / "out").exists()  # nothing is written before the input is checked


def test_compare_paper_prints_the_difference_per_cell(table_iv, tmp_path, capsys):
    long = pd.read_csv(table_iv)
    bumped = (long["benchmark"] == "meld") & (long["regime"] == "bal") & (long["architecture"] == "emoberta")
    long.loc[bumped & (long["test_set"] == "real"), "weighted_f1"] = 0.6927
    path = tmp_path / "bumped.csv"
    long.to_csv(path, index=False)
    assert main(["tables", str(path), "--out", str(tmp_path / "out"), "--compare-paper"]) == 0
    out = capsys.readouterr().out
    assert "| meld | bal | emoberta | 69.27 | 67.27 | +2.00 |" in out
    assert "| iemocap | nat | compm | 68.06 | 68.06 | +0.00 |" in out
    assert "arXiv:2508.05474" in out
    assert (tmp_path / "out" / "paper_comparison.md").read_text().count("\n| ") == 9 * 3  # one row per cell


def test_a_bad_csv_is_refused_before_the_metric_and_transformers_are_imported(table_iv, tmp_path):
    """The check runs first: the error is raised while evaluate and transformers are still unimported."""
    bad = tmp_path / "bad.csv"
    bad.write_text(table_iv.read_text().replace("0.6552", "high", 1))
    probe = (
        "import sys\n"
        "from erc_synth.cli import main\n"
        f"status = main(['tables', {str(bad)!r}, '--out', {str(tmp_path / 'out')!r}])\n"
        "print(status, sorted(m for m in ('evaluate', 'transformers', 'torch', 'pandas') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "2 []", done.stderr
