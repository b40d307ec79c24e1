"""The real-train fraction axis of the experiment grid: the subsample, the config keys, the cells, the curve.

A tiny grid (the smoke config on the tiny random encoder, EmoBERTa-style, org and nat) runs for real at two
fractions in this process; the tables it writes are then rebuilt from its long CSV by ``erc-synth tables``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from datasets import DatasetDict
from helpers.experiment_configs import smoke_ci_config
from helpers.tiny_encoders import toy_dialogues

from erc_synth.classifiers.data import subsample_train
from erc_synth.classifiers.experiment import Cell, Experiment, ExperimentConfig
from erc_synth.classifiers.fraction_table import fraction_table
from erc_synth.classifiers.workers import run_in_process
from erc_synth.cli import main
from erc_synth.dataset_scripts.core.errors import ErcSynthError
from erc_synth.dataset_scripts.core.registry import get_benchmark

REPO = Path(__file__).resolve().parents[1]
MELD = get_benchmark("meld")


def toy_splits() -> DatasetDict:
    return DatasetDict(train=toy_dialogues(MELD, 40, 1), validation=toy_dialogues(MELD, 6, 2),
                       test=toy_dialogues(MELD, 7, 3))


def test_the_subsample_is_seeded_nested_ordered_and_only_of_train():
    data = toy_splits()
    ids = data["train"]["dialogue_id"]
    quarter = subsample_train(data, 0.25, seed=3)
    assert quarter["train"]["dialogue_id"] == subsample_train(data, 0.25, seed=3)["train"]["dialogue_id"]
    assert len(quarter["train"]) == 10
    assert quarter["train"]["dialogue_id"] != subsample_train(data, 0.25, seed=4)["train"]["dialogue_id"]
    tenth = subsample_train(data, 0.1, seed=3)["train"]["dialogue_id"]
    assert len(tenth) == 4 and set(tenth) <= set(quarter["train"]["dialogue_id"])  # nested within a seed
    positions = [ids.index(i) for i in quarter["train"]["dialogue_id"]]
    assert positions == sorted(positions)  # the split's own order
    for split in ("validation", "test"):
        assert quarter[split]["dialogue_id"] == data[split]["dialogue_id"]
    assert subsample_train(data, 1.0, seed=3) is data
    assert len(subsample_train(data, 0.001, seed=0)["train"]) == 1  # never an empty train split


def base_config(**changes) -> dict:
    return {"encoder": "minilm", "architectures": ["emoberta"], "regimes": ["org"], "seeds": [0, 1],
            "benchmarks": {"meld": {"real_data": "/nowhere"}}, **changes}


def load(tmp_path: Path, raw: dict) -> ExperimentConfig:
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(raw))
    return ExperimentConfig.load(path)


def test_fractions_and_their_seeds_make_the_cells(tmp_path):
    config = load(tmp_path, base_config(real_fractions=[1.0, 0.1], seeds_by_fraction={1.0: [7]}))
    assert [c.key for c in config.cells()] == ["meld/emoberta/org/frac0.1/seed0", "meld/emoberta/org/frac0.1/seed1",
                                               "meld/emoberta/org/seed7"]
    plain = load(tmp_path, base_config())
    whole = Cell("emoberta", "org", "meld", 0, 1.0)
    with_axis = load(tmp_path, base_config(real_fractions=[0.5, 1.0]))
    # The whole split keeps the key and fingerprint of a grid without the axis: older grids still resume.
    assert whole.key == "meld/emoberta/org/seed0"
    assert with_axis.fingerprint(whole) == plain.fingerprint(whole)
    assert with_axis.fingerprint(Cell("emoberta", "org", "meld", 0, 0.5)) != plain.fingerprint(whole)


def test_fraction_training_overrides_only_its_fractions_cells(tmp_path):
    config = load(tmp_path, base_config(real_fractions=[0.1, 1.0], training={"epochs": 2, "learning_rate": 1e-4},
                                        fraction_training={0.1: {"epochs": 20}}))
    small, whole = Cell("emoberta", "org", "meld", 0, 0.1), Cell("emoberta", "org", "meld", 0, 1.0)
    assert (config.settings(small).epochs, config.settings(small).learning_rate) == (20, 1e-4)
    assert config.settings(whole).epochs == 2 and config.pretrain_settings(small).epochs == 2
    plain = load(tmp_path, base_config(real_fractions=[0.1, 1.0], training={"epochs": 2, "learning_rate": 1e-4}))
    assert config.fingerprint(whole) == plain.fingerprint(whole)
    assert config.fingerprint(small) != plain.fingerprint(small)


@pytest.mark.parametrize("changes, message", [
    ({"real_fractions": [0.1, 0.1]}, r"real_fractions: 0\.1 is listed more than once"),
    ({"real_fractions": [0]}, r"field 'real_fractions\[0\]' has value 0: Input should be greater than 0"),
    ({"real_fractions": [1.5]}, r"field 'real_fractions\[0\]' has value 1\.5: Input should be less than or equal"),
    ({"real_fractions": []}, r"field 'real_fractions' has value \[\]"),
    ({"real_fractions": ["half"]}, r"field 'real_fractions\[0\]' has value 'half'"),
    ({"real_fraction": [0.5]}, r"unknown key 'real_fraction'; did you mean 'real_fractions'\?"),
    ({"real_fractions": [0.5], "seeds_by_fraction": {0.25: [0]}},
     r"seeds_by_fraction\.0\.25: not one of real_fractions \(0\.5\)"),
    ({"seeds_by_fraction": {1.0: []}}, r"field 'seeds_by_fraction\.1\.0' has value \[\]"),
    ({"real_fractions": [0.5], "fraction_training": {0.25: {"epochs": 3}}},
     r"fraction_training\.0\.25: not one of real_fractions \(0\.5\)"),
    ({"real_fractions": [0.5], "fraction_training": {0.5: {"epoch": 3}}},
     r"unknown key 'fraction_training\.0\.5\.epoch'; did you mean 'fraction_training\.0\.5\.epochs'\?"),
])
def test_bad_fraction_keys_are_one_line_naming_the_key(tmp_path, changes, message):
    with pytest.raises(ErcSynthError, match=message):
        load(tmp_path, base_config(**changes))


def test_the_paired_difference_and_its_t_test_on_known_scores():
    rows = []
    for seed, (org, nat) in enumerate(((0.50, 0.51), (0.40, 0.42), (0.45, 0.48))):  # deltas 1, 2, 3 points
        for regime, score in (("org", org), ("nat", nat)):
            rows.append({"architecture": "emoberta", "regime": regime, "benchmark": "meld", "seed": seed,
                         "test_set": "real", "weighted_f1": score, "real_fraction": 0.1})
    table = fraction_table(pd.DataFrame(rows)).set_index("regime")
    assert table.loc["nat", "delta_vs_org"] == pytest.approx(2.0)
    assert table.loc["nat", "delta_std"] == pytest.approx(1.0)
    # t = 2 / (1 / sqrt 3) with 2 degrees of freedom, where the two-sided p is 1 - t / sqrt(t^2 + 2).
    t = 2 * math.sqrt(3)
    assert table.loc["nat", "p_paired_t"] == pytest.approx(1 - t / math.sqrt(t * t + 2))
    assert math.isnan(table.loc["org", "delta_vs_org"]) and table.loc["org", "seeds"] == 3


@pytest.fixture(scope="module")
def fraction_grid(tmp_path_factory) -> tuple[Path, Path]:
    """A real two-fraction grid: org and nat, two seeds at half the real train split, one at all of it."""
    root = tmp_path_factory.mktemp("fractions")
    config = smoke_ci_config(root, regimes=["org", "nat"], seeds=[0, 1], architectures=["emoberta"],
                             options={"emoberta": {"max_length": 32, "context": "past_future"}},
                             architecture_training={}, real_fractions=[0.5, 1.0], seeds_by_fraction={1.0: [0]},
                             friedman_design="pooled")
    out = root / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_in_process(Experiment(ExperimentConfig.load(config), out), progress=False)
    finally:
        torch.set_num_threads(threads)
    return config, out


def test_a_grid_at_two_fractions_trains_on_the_subsample_and_writes_the_curve(fraction_grid):
    _config, out = fraction_grid
    half = json.loads((out / "cells/meld/emoberta/org/frac0.5/seed1.json").read_text())
    whole = json.loads((out / "cells/meld/emoberta/nat/seed0.json").read_text())
    # Of the 8 real train dialogues the smoke config's limit keeps.
    assert (half["real_fraction"], half["real_train_dialogues"]) == (0.5, 4)
    assert (whole["real_fraction"], whole["real_train_dialogues"]) == (1.0, 8)
    long = pd.read_csv(out / "results_long.csv")
    assert sorted(set(long["real_fraction"])) == [0.5, 1.0] and len(long[long["test_set"] == "real"]) == 6
    for fraction in ("0.5", "1"):
        assert "| meld | org |" in (out / f"real-fraction-{fraction}" / "main_table.md").read_text()
        assert (out / f"real-fraction-{fraction}" / "extended_table.csv").is_file()
    curve = pd.read_csv(out / "fraction_table.csv")
    nat_half = curve[(curve["regime"] == "nat") & (curve["real_fraction"] == 0.5)].iloc[0]
    real = long[long["test_set"] == "real"].set_index(["regime", "real_fraction", "seed"])["weighted_f1"]
    deltas = [(real["nat", 0.5, s] - real["org", 0.5, s]) * 100 for s in (0, 1)]
    assert nat_half["paired_seeds"] == 2
    assert nat_half["delta_vs_org"] == pytest.approx(sum(deltas) / 2, abs=1e-4)
    assert (out / "learning_curve.png").stat().st_size > 0
    assert "| meld | emoberta | 0.5 | nat |" in (out / "fraction_table.md").read_text()


def test_the_tables_command_rebuilds_the_curve_from_the_long_csv(fraction_grid, tmp_path, capsys):
    _config, out = fraction_grid
    assert main(["tables", str(out / "results_long.csv"), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "fraction_table.csv").read_bytes() == (out / "fraction_table.csv").read_bytes()
    assert (tmp_path / "real-fraction-0.5" / "main_table.md").read_bytes() == (
        out / "real-fraction-0.5" / "main_table.md").read_bytes()


def test_a_bad_fraction_in_a_long_csv_names_the_line(fraction_grid, tmp_path, capsys):
    _config, out = fraction_grid
    lines = (out / "results_long.csv").read_text().splitlines()
    header = lines[0].split(",")
    row = lines[3].split(",")
    row[header.index("real_fraction")] = "1.5"
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([lines[0], *lines[1:3], ",".join(row), *lines[4:]]) + "\n")
    assert main(["tables", str(bad), "--out", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:4" in err and "real_fraction" in err and "(0, 1]" in err and "Traceback" not in err


def test_the_shipped_v2_config_has_the_curve(monkeypatch, tmp_path):
    for name in ("ERC_SYNTH_REAL_DATA", "ERC_SYNTH_STUDY_SYNTHETIC"):
        monkeypatch.setenv(name, str(tmp_path))
    study = ExperimentConfig.load(REPO / "classifiers" / "configs" / "cpu-study-v2.yaml")
    cells = list(study.cells())
    assert len(cells) == 3 * (4 * 1 + 3 * 3 + 3 * 3)  # syn never reads the real train split: whole split only
    assert {c.real_fraction for c in cells} == {0.1, 0.25, 1.0}
    assert {c.real_fraction for c in cells if c.regime == "syn"} == {1.0}
    assert {c.seed for c in cells if c.real_fraction == 1.0} == {0}
    assert {c.seed for c in cells if c.real_fraction == 0.1} == {0, 1, 2}
    small = next(c for c in cells if c.real_fraction == 0.1)
    assert study.settings(small).epochs == 10 and study.pretrain_settings(small).epochs == 2
    first = ExperimentConfig.load(REPO / "classifiers" / "configs" / "cpu-study.yaml")
    assert vars(study.training) == vars(first.training) and study.options == first.options


def test_the_shipped_pilot_config_is_the_one_its_page_ran(monkeypatch, tmp_path):
    for name in ("ERC_SYNTH_REAL_DATA", "ERC_SYNTH_PILOT_SET"):
        monkeypatch.setenv(name, str(tmp_path))
    pilot = ExperimentConfig.load(REPO / "classifiers" / "configs" / "pilot-low-resource.yaml")
    cells = list(pilot.cells())
    assert [c.key for c in cells] == [f"meld/emoberta/{r}/frac0.1/seed{s}" for s in (0, 1, 2) for r in ("org", "nat")]
    assert pilot.settings(cells[0]).epochs == 10 and pilot.pretrain_settings(cells[1]).epochs == 2
    page = (REPO / "docs" / "results-pilot-low-resource.md").read_text(encoding="utf-8")
    assert "classifiers/configs/pilot-low-resource.yaml" in page
