"""Presets: the study's generation in ``paper``, the label variant of ``quickstart`` and ``cpu-study``, and
field errors that name the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from erc_synth.dataset_scripts.core.errors import ErcSynthError
from erc_synth.dataset_scripts.core.registry import get_benchmark
from erc_synth.generation.engine import run_settings
from erc_synth.pipeline import generation_config
from erc_synth.preset import BUILTIN_PRESETS, load_preset, parse_preset

TABLE_II = {"temperature": 0.7, "top_p": 1.0, "top_k": 10000, "repetition_penalty": 1.0, "typical_p": 0.995}


def test_paper_preset_generates_as_the_study_did(tmp_path: Path) -> None:
    paper = load_preset("paper")
    assert not paper.grammar
    assert paper.generation == {"prompt_version": "paper", "label_format": "number", "target_policy": "prompt"}
    assert {key: paper.sampling[key] for key in TABLE_II} == TABLE_II
    for spec in paper.datasets:
        config = generation_config(paper, spec, tmp_path / spec.name)
        benchmark = get_benchmark(spec.benchmark)
        assert config.turns == benchmark.real_lengths.typical_range
        settings = run_settings(config, benchmark)
        assert (settings["grammar"], settings["prompt_version"]) == (False, "paper")
        assert settings.get("target_policy") == ("prompt" if spec.mode == "balanced" else None)
    assert len(paper.differences) >= 5 and any("text-generation-webui" in d for d in paper.differences)


def test_every_builtin_preset_loads() -> None:
    assert {load_preset(name).name for name in BUILTIN_PRESETS} == set(BUILTIN_PRESETS)


def test_quickstart_and_cpu_study_share_the_label_variant_and_cpu_study_is_audited_at_size() -> None:
    quick, study = load_preset("quickstart"), load_preset("cpu-study")
    assert (quick.generation, quick.with_real_data) == (study.generation, study.with_real_data)
    assert quick.generation.get("label_format", "number") != "number"
    assert all(spec.num_dialogues >= 200 for spec in study.datasets) and len(study.datasets) == 6
    assert study.audit == {"judge": "train", "label_policy": "llm"}
    assert (study.backend, study.model, study.turns, study.sampling) == (quick.backend, quick.model, quick.turns,
                                                                        quick.sampling)


def _preset(**changes) -> dict:
    data = {"backend": "transformers", "model": "embedded", "seed": 1,
            "datasets": [{"benchmark": "meld", "mode": "natural", "num_dialogues": 2}]}
    return {**data, **changes}


@pytest.mark.parametrize(("changes", "message"), [
    ({"prompt_version": "v7"}, "field 'prompt_version' has unknown value 'v7'"),
    ({"label_format": "emoji"}, "field 'label_format' has unknown value 'emoji'"),
    ({"target_policy": "hope"}, "field 'target_policy' has unknown value 'hope'"),
    ({"label_order": "random"}, "field 'label_order' has unknown value 'random'; known: fixed, shuffled"),
    ({"prompt_version": "paper", "label_format": "word"}, "fields 'prompt_version' and 'label_format'"),
    ({"turns": "real"}, "field 'turns'"),
    ({"differences": "none"}, "field 'differences'"),
])
def test_bad_generation_fields_name_the_file_and_the_field(changes, message) -> None:
    with pytest.raises(ErcSynthError, match=message) as caught:
        parse_preset(_preset(**changes), "mine.yaml")
    assert str(caught.value).startswith("mine.yaml: ")


def test_with_real_data_is_merged_only_when_real_data_is_found_and_its_keys_are_checked() -> None:
    preset = parse_preset(_preset(label_plan="benchmark", with_real_data={"few_shot": 2}), "p.yaml")
    assert preset.generation == {"label_plan": "benchmark"}
    assert preset.for_real_data(False) == preset
    applied = preset.for_real_data(True)
    assert applied.generation == {"label_plan": "benchmark", "few_shot": 2} and applied.with_real_data == {}
    with pytest.raises(ErcSynthError, match=r"p.yaml: unknown key 'with_real_data.few_shots'; did you mean "
                                            r"'with_real_data.few_shot'\?"):
        parse_preset(_preset(with_real_data={"few_shots": 2}), "p.yaml")
    with pytest.raises(ErcSynthError, match=r"p.yaml: field 'with_real_data.few_shot' must be an integer in \[0, 64\]"):
        parse_preset(_preset(with_real_data={"few_shot": -1}), "p.yaml")
