"""Prompt templates, derived seeds and balanced targets: pure functions, checked on every benchmark and mode."""

from __future__ import annotations

import re

import pytest
from helpers.fake_backend import FakeBackend

from erc_synth.dataset_scripts.core.errors import ErcSynthError
from erc_synth.dataset_scripts.core.registry import BENCHMARKS, MODES, get_benchmark
from erc_synth.dataset_scripts.run_store import RunStore
from erc_synth.generation.engine import GenerationConfig, SettingError, generate, run_settings
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


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


@pytest.mark.parametrize("benchmark", sorted(BENCHMARKS))
@pytest.mark.parametrize("mode", MODES)
def test_paper_template_is_the_studys_three_sentences(benchmark: str, mode: str) -> None:
    """Task (the balanced clause ending it), the numbered labels with "provide one of them for each
    utterance", and the output structure: Kaplan et al. 2025, section III-B."""
    bench = get_benchmark(benchmark)
    target = bench.num_labels - 1 if mode == "balanced" else None
    prompt = render_prompt(bench, mode, turns=(5, 9), target_label=target, version="paper")
    task, labels, structure = _sentences(prompt)
    assert "5 to 9 utterances" in task and bench.setting in task
    assert all(speaker in task for speaker in bench.speakers)
    assert task.endswith(f"in which the emotion {bench.labels[-1]} is expressed.") == (mode == "balanced")
    assert re.findall(r"(\d+): (\w+)", labels) == [(str(i), label) for i, label in enumerate(bench.labels)]
    assert labels.endswith("provide one of them for each utterance.")
    assert "Speaker: utterance (N)" in structure and "(N)" not in task + labels


@pytest.mark.parametrize("label_format", ["word", "word_first"])
def test_word_formats_list_the_labels_without_numbers(label_format: str) -> None:
    bench = get_benchmark("emorynlp")
    prompt = render_prompt(bench, "natural", version="v2", label_format=label_format)
    assert ", ".join(bench.labels) in prompt
    assert not re.search(r"^\d+: ", prompt, flags=re.MULTILINE)
    form = "Speaker (emotion): utterance" if label_format == "word_first" else "Speaker: utterance (emotion)"
    assert form in prompt


def test_versions_refuse_label_formats_they_cannot_ask_for() -> None:
    with pytest.raises(ErcSynthError, match="v2"):
        render_prompt(get_benchmark("meld"), "natural", version="paper", label_format="word")
    with pytest.raises(SettingError, match="prompt_version"):
        GenerationConfig(benchmark="meld", prompt_version="v9")
    with pytest.raises(ErcSynthError, match="'v1'"):
        GenerationConfig(benchmark="meld", label_format="word_first")


def _always_neutral(request, target) -> str:
    """A model that ignores the target it is asked for: every utterance neutral (label 0)."""
    return "Ross: Hi there, how are you. (0)\nRachel: Fine, thanks for asking. (0)"


@pytest.mark.parametrize(("policy", "accepted"), [("prompt", 7), ("check", 1), ("force", 1)])
def test_target_policy_decides_whether_a_dialogue_without_its_target_is_kept(tmp_path, policy, accepted) -> None:
    config = GenerationConfig(benchmark="meld", mode="balanced", num_dialogues=7, seed=3, out=tmp_path / "run",
                              backend="fake", turns=(2, 4), max_attempts=1, target_policy=policy)
    report = generate(config, backend=FakeBackend(mode="balanced", write=_always_neutral), progress=False)
    records = RunStore.open(tmp_path / "run").raw_records()
    assert report.accepted == accepted
    kept = [r for r in records if r["status"] == "accepted"]
    assert [r["target_emotion"] for r in kept] == list(range(accepted))
    assert [r["target_present"] for r in kept] == [True] + [False] * (accepted - 1)
    rejected = [r["reason"] for r in records if r["status"] == "rejected"]
    assert rejected == ["target_absent"] * (7 - accepted)
    assert ("target_policy" in run_settings(config, get_benchmark("meld"))) == (policy != "force")


def test_natural_records_carry_no_target_presence(tmp_path) -> None:
    config = GenerationConfig(benchmark="meld", num_dialogues=2, out=tmp_path / "run", backend="fake", turns=(2, 4))
    generate(config, backend=FakeBackend(write=_always_neutral), progress=False)
    assert [r["target_present"] for r in RunStore.open(tmp_path / "run").raw_records()] == [None, None]
