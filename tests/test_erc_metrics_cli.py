"""``erc-synth friedman SCORES.csv``: the table it prints, its JSON and plot, and errors for malformed CSVs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from erc_synth.cli import main
from erc_synth.evaluate_metrics.erc_metrics import friedman_test

GOOD_CSV = """test_set,base,synth,other
meld_seed1,0.651,0.663,0.640
emorynlp_seed1,0.381,0.390,0.376
iemocap_seed1,0.612,0.661,0.600
meld_seed2,0.500,0.600,0.550
"""
ROWS = [[0.651, 0.663, 0.640], [0.381, 0.390, 0.376], [0.612, 0.661, 0.600], [0.500, 0.600, 0.550]]


def write(tmp_path: Path, text: str, name: str = "scores.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_prints_rank_sums_differences_and_pvalues(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv_path = write(tmp_path, GOOD_CSV)
    assert main(["friedman", str(csv_path), "--compare", "synth:base", "--compare", "other:base"]) == 0
    out = capsys.readouterr().out
    expected = friedman_test(ROWS, ["base", "synth", "other"], comparisons=[("synth", "base"), ("other", "base")])
    assert "3 systems, 4 test sets" in out
    table = out.split("\n\n")[1].splitlines()  # the rank-sum table is the second paragraph
    rows = {line.split()[0]: line.split()[1:] for line in table[1:]}
    assert rows == {"base": ["9.0", "2.250"], "synth": ["4.0", "1.000"], "other": ["11.0", "2.750"]}
    first = expected["pairwise"][0]
    assert f"{first['p_value']:.4g}" in out and f"{first['p_value_corrected']:.4g}" in out
    assert "synth vs base       -5.0" in out
    assert "bonferroni over 2 comparison(s)" in out
    assert f"{expected['critical_differences'][0.05]} at alpha 0.05" in out


def test_json_plot_holm_and_lower_is_better(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv_path = write(tmp_path, GOOD_CSV)
    plot = tmp_path / "cd.png"
    argv = ["friedman", str(csv_path), "--correction", "holm", "--lower-is-better", "--json", "--plot", str(plot)]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    expected = friedman_test(ROWS, ["base", "synth", "other"], correction="holm", higher_is_better=False)
    assert printed["pairwise"] == expected["pairwise"]
    assert printed["rank_sums"] == {"base": 7.0, "synth": 12.0, "other": 5.0}
    assert printed["block_names"] == ["meld_seed1", "emorynlp_seed1", "iemocap_seed1", "meld_seed2"]
    assert plot.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    "text",
    ["b,x,y,z\n1,3,2,1\n2,3,2,1\n", "b,x,y,z\n1,0.5,0.5,0.5\n2,1,1,1\n"],
    ids=["perfect-agreement-infinite-F", "all-ties-undefined"],
)
def test_json_is_strict_when_statistics_are_not_finite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    assert main(["friedman", str(write(tmp_path, text)), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out, parse_constant=lambda token: pytest.fail(f"non-JSON {token}"))
    assert printed["iman_davenport_f"] is None
    assert printed["friedman_df"] == 2 and printed["iman_davenport_df"] == [2, 2]


def test_system_names_with_colons_are_split_where_both_sides_are_known(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_path = write(tmp_path, "block,org:model,base\nx,1,2\ny,3,1\nz,2,1\n")
    assert main(["friedman", str(csv_path), "--compare", "org:model:base"]) == 0
    assert "org:model vs base" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "argv_extra", "message"),
    [
        ("", [], "scores.csv: empty file"),
        ("test_set,base\nx,1\ny,2\n", [], "scores.csv:1: the header needs a block column and at least 2 system"),
        ("test_set;base;synth\nx;1;2\n", [], "(the file must be comma-separated)"),
        ("test_set,base,base\nx,1,2\ny,2,1\n", [], "scores.csv:1: duplicate system name in header (value 'base')"),
        ("test_set,base,\nx,1,2\ny,2,1\n", [], "scores.csv:1: empty system name in header column 3"),
        ("test_set,base,synth\nx,1,2\n\ny,2\n", [], "scores.csv:4: expected 3 cells (block name + 2 scores), got 2"),
        ("test_set,base,synth\nx,1,2\ny,0.5,abc\n", [], "scores.csv:3: score is not a finite number (field 'synth'"),
        ("test_set,base,synth\nx,1,2\ny,nan,1\n", [], "scores.csv:3: score is not a finite number (field 'base'"),
        (
            "test_set,base,synth\nx,1,2\ny,,1\n",
            [],
            "scores.csv:3: score is not a finite number (field 'base', value '')",
        ),
        ("test_set,base,synth\nx,1,2\nx,2,1\n", [], "scores.csv:3: duplicate block name (value 'x')"),
        ("test_set,base,synth\n,1,2\ny,2,1\n", [], "scores.csv:2: empty block (test set) name"),
        ("test_set,base,synth\nx,1,2\n", [], "at least 2 blocks (data lines), found 1"),
        ('test_set,base,synth\n"x,1,2\n', [], "scores.csv"),
        (GOOD_CSV, ["--compare", "synth-base"], "expected two system names separated by ':'"),
        (GOOD_CSV, ["--compare", "synth:bert"], "unknown system name(s) ['bert']"),
        (GOOD_CSV, ["--compare", "synth:synth"], "compares 'synth' with itself"),
        (GOOD_CSV, ["--compare", "synth:base", "--compare", "base:synth"], "repeats the pair"),
    ],
)
def test_malformed_input_exits_2_with_a_one_line_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, argv_extra: list[str], message: str
) -> None:
    csv_path = write(tmp_path, text)
    assert main(["friedman", str(csv_path), *argv_extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("erc-synth friedman: error: ")
    assert message in err
    assert "\n" not in err


def test_missing_file_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["friedman", str(tmp_path / "absent.csv")]) == 2
    assert "absent.csv: cannot open the scores file" in capsys.readouterr().err


@pytest.mark.parametrize("argv_extra", [[], ["--compare", "synth:bert"]])
def test_bad_input_is_refused_before_evaluate_and_transformers_are_imported(tmp_path: Path,
                                                                            argv_extra: list[str]) -> None:
    """The CSV and the pairs are checked first, so a typo answers without the seconds of importing transformers."""
    import subprocess
    import sys

    csv_path = write(tmp_path, GOOD_CSV.replace("0.663", "O.663") if not argv_extra else GOOD_CSV)
    probe = (
        "import sys\n"
        "from erc_synth.cli import main\n"
        f"status = main(['friedman', {str(csv_path)!r}, *{argv_extra!r}])\n"
        "print(status, sorted(m for m in ('evaluate', 'transformers', 'datasets') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "2 []", done.stderr
    assert done.stderr.count("\n") == 1 and "erc-synth friedman: error: " in done.stderr
