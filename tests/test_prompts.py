"""Prompt templates, derived seeds and balanced targets: pure functions, checked on every benchmark and mode."""

from __future__ import annotations

import re

import pytest

from erc_synth.dataset_scripts.registry import BENCHMARKS, MODES, get_benchmark
from erc_synth.generation.engine import GenerationConfig, run_settings
from erc_synth.generation.prompts import PROMPT_VERSION, build_messages, render_prompt, template_text
from erc_synth.generation.seeds import SEED_LIMIT, cyclic_target, derive_seed, steered_targets


@pytest.mark.parametrize("benchmark", sorted(BENCHMARKS))
@pytest.mark.parametrize("mode", MODES)
def test_each_benchmark_and_mode_has_a_three_part_template(benchmark: str, mode: str) -> None:
    bench = get_benchmark(benchmark)
    target = 2 if mode == "balanced" else None
    prompt = render_prompt(bench, mode, turns=(4, 9), target_label=target)
    assert "$" not in prompt  # every placeholder filled
    assert "4 to 9 turns" in prompt and bench.setting in prompt
    assert all(speaker in prompt for speaker in bench.speakers)
    options = re.findall(r"^(\d+): (\w+)$", prompt, flags=re.MULTILINE)
    assert options == [(str(i), label) for i, label in enumerate(bench.labels)]
    assert "Speaker: utterance (N)" in prompt
    if mode == "balanced":
        assert f"at least one utterance expresses {bench.labels[2]}" in prompt
        assert "turn 1" not in prompt.lower() and "first" not in prompt.lower()  # which turn is not said
    else:
        assert "at least one utterance expresses" not in prompt


def test_balanced_needs_a_target_and_natural_refuses_one() -> None:
    with pytest.raises(ValueError):
        render_prompt(get_benchmark("meld"), "balanced")
    with pytest.raises(ValueError):
        render_prompt(get_benchmark("meld"), "natural", target_label=1)


def test_messages_are_one_user_turn_for_the_backend_to_format() -> None:
    messages = build_messages(get_benchmark("iemocap"), "natural")
    assert [m["role"] for m in messages] == ["user"]


def test_manifest_settings_record_the_template_verbatim() -> None:
    bench = get_benchmark("emorynlp")
    settings = run_settings(GenerationConfig(benchmark="emorynlp", mode="balanced"), bench)
    assert settings["prompt_version"] == PROMPT_VERSION
    assert settings["prompt_templates"] == {"emorynlp_balanced.txt": template_text("emorynlp", "balanced")}
    assert settings["turns"] == list(bench.turns)


def test_derived_seeds_are_stable_distinct_and_in_range() -> None:
    seeds = {derive_seed(13, index, attempt) for index in range(200) for attempt in range(3)}
    assert len(seeds) == 600 and all(0 <= s < SEED_LIMIT for s in seeds)
    assert derive_seed(13, 5, 1) == derive_seed(13, 5, 1) != derive_seed(14, 5, 1)
    assert derive_seed(0, 0, 0) == 5815468879060095320  # pinned: changing the derivation breaks old RUN_DIRs


def test_cyclic_targets_cover_the_label_set_in_turn() -> None:
    assert [cyclic_target(i, 7) for i in range(9)] == [0, 1, 2, 3, 4, 5, 6, 0, 1]


def test_steering_favours_under_represented_labels_deterministically() -> None:
    counts = [50, 3, 10, 10, 0, 10, 10]
    wave = steered_targets(64, 8, counts)
    assert wave == steered_targets(64, 8, counts)
    assert set(wave) == {1, 4} and wave[:3] == [4, 4, 4]  # the rarest first, then the two rarest share
    assert 0 not in wave
    assert sorted(steered_targets(0, 7, [0] * 7)) == list(range(7))  # equal counts: still one of each
