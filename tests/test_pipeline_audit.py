"""The run's build stage: a preset's ``audit:`` reaches the build, and the summary shows the label fidelity."""

from __future__ import annotations

import dataclasses

import pytest
import yaml
from helpers.builder_support import make_run_dir

from erc_synth.dataset_scripts.core.errors import ErcSynthError
from erc_synth.pipeline import DatasetOutcome, PipelineReport, _build_all
from erc_synth.preset import load_preset, parse_preset


def _quickstart_with(**changes) -> dict:
    from importlib import resources

    text = resources.files("erc_synth.presets").joinpath("quickstart.yaml").read_text(encoding="utf-8")
    return {**yaml.safe_load(text), **changes}


def test_a_presets_audit_mapping_is_validated_with_the_field_named():
    preset = parse_preset(_quickstart_with(audit={"judge": "train", "label_policy": "agree"}), "mine.yaml")
    assert preset.audit == {"judge": "train", "label_policy": "agree"}
    assert parse_preset(_quickstart_with(audit={"judge": "train"}), "mine.yaml").audit == {
        "judge": "train", "label_policy": "llm"}
    assert load_preset("quickstart").audit is None
    with pytest.raises(ErcSynthError, match=r"mine\.yaml: field 'audit.label_policy' has unknown value 'most'"):
        parse_preset(_quickstart_with(audit={"judge": "train", "label_policy": "most"}), "mine.yaml")
    with pytest.raises(ErcSynthError, match=r"mine\.yaml: unknown key 'audit\.juge'; did you mean 'audit\.judge'\?"):
        parse_preset(_quickstart_with(audit={"juge": "train", "judge": "train"}), "mine.yaml")
    with pytest.raises(ErcSynthError, match=r"mine\.yaml: field 'audit' has value 'train': Input should be a valid "
                                            r"dictionary"):
        parse_preset(_quickstart_with(audit="train"), "mine.yaml")


def test_the_presets_audit_reaches_the_build_of_every_run(tmp_path):
    """The judge spec travels from the preset to the audit module, which refuses a judge that is not there."""
    for mode in ("natural", "balanced"):
        make_run_dir(tmp_path / "runs" / f"meld-synth-{mode}", "meld", mode, n=6, plant_duplicates=False)
    preset = dataclasses.replace(load_preset("quickstart"), audit={"judge": "classifier:./no-such-judge",
                                                                   "label_policy": "llm"})
    outcomes = [DatasetOutcome(name=f"meld-synth-{m}", benchmark="meld", mode=m, run_dir="") for m in
                ("natural", "balanced")]
    with pytest.raises(ErcSynthError, match=r"no model folder at \./no-such-judge"):
        _build_all(preset, tmp_path, outcomes, None, None, lambda _: None)
    assert not (tmp_path / "datasets").exists()  # the audit runs before any folder is written


def test_the_paper_presets_differences_reach_every_card(tmp_path):
    make_run_dir(tmp_path / "runs" / "iemocap-synth-balanced", "iemocap", "balanced", n=6, plant_duplicates=False)
    preset = load_preset("paper")
    assert len(preset.differences) >= 3
    outcome = DatasetOutcome(name="iemocap-synth-balanced", benchmark="iemocap", mode="balanced", run_dir="")
    _build_all(preset, tmp_path, [outcome], None, "someone", lambda _: None)
    card = (tmp_path / "datasets" / "iemocap-synth-balanced" / "README.md").read_text()
    section = card.split("## Differences from the reference study")[1].split("\n## ")[0]
    assert [line[2:] for line in section.splitlines() if line.startswith("- ")] == list(preset.differences)
    assert 'load_dataset("someone/iemocap-synth-balanced")' in card  # --org known at build time: no re-render


def test_summary_gains_kappa_and_the_positional_statistic_when_an_audit_ran():
    audited = DatasetOutcome(name="meld-synth-natural", benchmark="meld", mode="natural", run_dir="r", accepted=3,
                             requested=3, label_counts={"neutral": 2, "joy": 1}, kappa=0.2875,
                             position_label_spearman=0.6419, position_label_spearman_real=0.0214)
    report = PipelineReport(out_dir="out", preset="quickstart", real_data_dir=None, datasets=[audited])
    header, rule, row = report.summary_markdown().splitlines()[2:5]
    assert "| kappa (LLM vs judge) | position/label Spearman (real) |" in header
    assert rule.count("|") == header.count("|")
    assert "| 0.287 | 0.642 (0.021) |" in row
    plain = dataclasses.replace(audited, kappa=None, position_label_spearman=None, position_label_spearman_real=None)
    text = PipelineReport(out_dir="out", preset="quickstart", real_data_dir=None, datasets=[plain]).summary_markdown()
    assert "kappa (LLM vs judge)" not in text
    assert "| n/a (n/a) |" in text  # the quality report's kappa column: no audit, no figure
