"""``label_order: shuffled``: the prompt lists the labels in an order drawn from each request's seed, the same
seed always giving the same prompt, and the run records the setting where it records the label format."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

import pytest
from helpers.fake_backend import FakeBackend

from erc_synth.dataset_scripts.core.errors import ErcSynthError, RunDirError
from erc_synth.dataset_scripts.core.registry import BENCHMARKS, get_benchmark
from erc_synth.dataset_scripts.run_store import RunStore
from erc_synth.generation.engine import GenerationConfig, SettingError, generate, run_settings
from erc_synth.generation.prompts import build_messages, label_permutation, render_prompt
from erc_synth.pipeline import generation_config
from erc_synth.preset import parse_preset

FIXTURE = Path(__file__).parent / "fixtures" / "runs_before_label_order"


def _word_list(prompt: str) -> list[str]:
    """The label words of a word-format prompt, in the order the prompt lists them."""
    lines = prompt.splitlines()
    return lines[next(i for i, line in enumerate(lines) if "from this list" in line) + 1].split(", ")


def test_the_permutation_is_pinned_and_a_permutation_for_every_size() -> None:
    assert label_permutation(7, 0) == [3, 6, 1, 2, 5, 4, 0]  # pinned: changing it changes shuffled RUN_DIRs
    for size in (1, 2, 6, 7, 9):
        for seed in range(50):
            assert sorted(label_permutation(size, seed)) == list(range(size))


def test_every_label_leads_the_list_for_some_seeds() -> None:
    """No fixed first entry: over 700 request seeds each of 7 labels comes first between 60 and 140 times."""
    firsts = Counter(label_permutation(7, seed)[0] for seed in range(700))
    assert sorted(firsts) == list(range(7))
    assert all(60 <= count <= 140 for count in firsts.values())


@pytest.mark.parametrize("label_format", ["word", "word_first"])
def test_a_shuffled_word_list_follows_the_request_seed(label_format: str) -> None:
    bench = get_benchmark("meld")
    def prompt(seed: int) -> str:
        return render_prompt(bench, "natural", version="v2", label_format=label_format, label_order="shuffled",
                             seed=seed)
    assert prompt(11) == prompt(11)
    assert _word_list(prompt(11)) == [bench.labels[i] for i in label_permutation(bench.num_labels, 11)]
    assert len({tuple(_word_list(prompt(seed))) for seed in range(20)}) >= 15
    fixed = render_prompt(bench, "natural", version="v2", label_format=label_format)
    assert _word_list(fixed) == list(bench.labels)
    assert prompt(11).replace(", ".join(_word_list(prompt(11))), ", ".join(bench.labels)) == fixed


@pytest.mark.parametrize("benchmark", sorted(BENCHMARKS))
def test_shuffled_numbers_keep_their_labels(benchmark: str) -> None:
    """Only the listing order changes, so the grammar and the parser read the same numbers as before."""
    bench = get_benchmark(benchmark)
    prompt = render_prompt(bench, "balanced", target_label=1, version="v1", label_order="shuffled", seed=5)
    options = [(int(n), word) for n, word in re.findall(r"^(\d+): (\w+)$", prompt, flags=re.MULTILINE)]
    assert [n for n, _ in options] == label_permutation(bench.num_labels, 5)
    assert all(bench.labels[n] == word for n, word in options)


def test_a_shuffled_order_needs_a_seed_and_an_unknown_order_is_refused() -> None:
    meld = get_benchmark("meld")
    with pytest.raises(ValueError, match="seed"):
        render_prompt(meld, "natural", version="v2", label_format="word_first", label_order="shuffled")
    with pytest.raises(ErcSynthError, match="label order 'random'"):
        render_prompt(meld, "natural", label_order="random", seed=1)
    with pytest.raises(SettingError, match=r"^label_order: must be one of fixed, shuffled, got 'random'$"):
        GenerationConfig(benchmark="meld", label_order="random")


def _word_first(request, target) -> str:
    return "Ross (joy): Hello there, friend.\nRachel (sadness): I miss her so much."


def test_each_request_gets_the_prompt_of_its_own_seed_and_the_manifest_says_shuffled(tmp_path: Path) -> None:
    config = GenerationConfig(benchmark="meld", num_dialogues=6, seed=3, out=tmp_path / "run", backend="fake",
                              turns=(2, 4), prompt_version="v2", label_format="word_first", label_order="shuffled")
    backend = FakeBackend(write=_word_first)
    assert generate(config, backend=backend, progress=False).accepted == 6
    meld = get_benchmark("meld")
    for request in backend.requests:
        assert request.messages == build_messages(meld, "natural", turns=(2, 4), version="v2",
                                                  label_format="word_first", label_order="shuffled",
                                                  seed=request.seed)
    assert len({str(request.messages) for request in backend.requests}) == 6
    assert RunStore.open(tmp_path / "run").settings["label_order"] == "shuffled"


def test_an_earlier_fixed_order_run_refuses_to_continue_shuffled(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(FIXTURE / "emorynlp-v2-word_first-natural", run_dir)
    config = GenerationConfig(benchmark="emorynlp", num_dialogues=4, seed=13, out=run_dir, backend="fake",
                              turns=(2, 4), prompt_version="v2", label_format="word_first", label_order="shuffled")
    with pytest.raises(RunDirError, match="label_order"):
        generate(config, backend=FakeBackend("emorynlp"), progress=False)


def test_a_preset_sets_the_order_for_every_run(tmp_path: Path) -> None:
    preset = parse_preset({"backend": "transformers", "model": "embedded", "seed": 1, "prompt_version": "v2",
                           "label_format": "word_first", "label_order": "shuffled",
                           "datasets": [{"benchmark": "iemocap", "mode": "balanced", "num_dialogues": 2}]}, "mine.yaml")
    config = generation_config(preset, preset.datasets[0], tmp_path / "run")
    assert config.label_order == "shuffled"
    assert run_settings(config, get_benchmark("iemocap"))["label_order"] == "shuffled"


def _distinct_lines(request, target) -> str:
    n = request.seed % 100_000
    return f"Ross (joy): Hello there number {n}, friend.\nRachel (sadness): I miss her so much, {n} times."


def test_the_card_lists_the_label_order_beside_the_label_format(tmp_path: Path) -> None:
    from erc_synth.hub_cards import build_folder

    config = GenerationConfig(benchmark="meld", num_dialogues=10, seed=3, out=tmp_path / "run", backend="fake",
                              turns=(2, 4), prompt_version="v2", label_format="word_first", label_order="shuffled")
    generate(config, backend=FakeBackend(write=_distinct_lines), progress=False)
    build_folder(tmp_path / "run", tmp_path / "out")
    card = (tmp_path / "out" / "README.md").read_text()
    assert re.search(r"^\| label_format \| word_first \|$", card, flags=re.MULTILINE)
    assert re.search(r"^\| label_order \| shuffled \|$", card, flags=re.MULTILINE)
