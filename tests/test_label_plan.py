"""Label plans: statistics equal to the real files, plans from the seed alone, and the grammar forcing them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers.servers.tiny_lm import tiny_lm_dir  # noqa: F401  (session fixture)

from erc_synth.cli import main as erc_synth
from erc_synth.dataset_scripts.core.benchmark_statistics import benchmark_statistics
from erc_synth.dataset_scripts.core.errors import ErcSynthError
from erc_synth.dataset_scripts.core.registry import BENCHMARKS, get_benchmark
from erc_synth.dataset_scripts.label_statistics import compute_label_statistics, label_sequence_counts
from erc_synth.dataset_scripts.run_store import RunStore
from erc_synth.generation.backends.base import SamplingParams
from erc_synth.generation.engine import GenerationConfig, SettingError, generate
from erc_synth.generation.grammar import dialogue_regex
from erc_synth.generation.label_plan import benchmark_plan_model, draw_plan, plan_model, sinkhorn
from erc_synth.preset import parse_preset

MELD = get_benchmark("meld")


@pytest.mark.needs_shared_data
@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_the_shipped_statistics_are_the_real_train_splits_counts(name: str, shared_data: Path) -> None:
    assert benchmark_statistics(name) == compute_label_statistics(name, shared_data)


def test_counts_of_label_sequences() -> None:
    counts = label_sequence_counts([[0, 1, 1], [1], [], [2, 0]], 3)
    assert counts == {"dialogues": 3, "start": [1, 1, 1], "transitions": [[0, 1, 0], [0, 1, 0], [1, 0, 0]],
                      "lengths": {"1": 1, "2": 1, "3": 1}}


def test_sinkhorn_balancing_is_doubly_stochastic_so_its_stationary_distribution_is_uniform() -> None:
    counts = benchmark_statistics("meld")["transitions"]
    q = sinkhorn([[c + 1 for c in row] for row in counts])
    assert all(sum(row) == pytest.approx(1, abs=1e-12) for row in q)
    assert all(sum(row[j] for row in q) == pytest.approx(1, abs=1e-6) for j in range(7))
    uniform = [1 / 7] * 7
    after = [sum(uniform[i] * q[i][j] for i in range(7)) for j in range(7)]
    assert after == pytest.approx(uniform, abs=1e-6)


def test_plans_follow_the_seed_alone_and_the_statistics() -> None:
    natural = benchmark_plan_model(MELD, "natural", (4, 6))
    assert draw_plan(natural, 123) == draw_plan(natural, 123)
    plans = [draw_plan(natural, seed) for seed in range(3000)]
    assert len({tuple(p) for p in plans}) > 1000
    assert {len(p) for p in plans} == {4, 5, 6}
    stats = benchmark_statistics("meld")
    start = [s / sum(stats["start"]) for s in stats["start"]]
    first = [sum(p[0] == label for p in plans) / len(plans) for label in range(7)]
    assert first == pytest.approx(start, abs=0.03)
    lengths = {k: v for k, v in stats["lengths"].items() if 4 <= int(k) <= 6}
    assert sum(len(p) == 4 for p in plans) / len(plans) == pytest.approx(lengths["4"] / sum(lengths.values()),
                                                                         abs=0.03)
    balanced = benchmark_plan_model(MELD, "balanced", (4, 6))
    labels = [label for seed in range(3000) for label in draw_plan(balanced, seed)]
    assert [labels.count(k) / len(labels) for k in range(7)] == pytest.approx([1 / 7] * 7, abs=0.03)
    assert all(5 in draw_plan(balanced, seed, target_label=5) for seed in range(200))


def test_an_unseen_length_range_falls_back_to_uniform_lengths() -> None:
    model = plan_model({"start": [1, 0], "transitions": [[0, 1], [1, 0]], "lengths": {"3": 5}}, "natural", (5, 6))
    assert {len(draw_plan(model, seed)) for seed in range(50)} == {5, 6}
    assert draw_plan(model, 1)[:3] == [0, 1, 0]


def test_the_planned_grammar_allows_exactly_the_plan() -> None:
    regex = re.compile(dialogue_regex(["Ross", "Rachel"], 7, 2, 4, label_format="word_first",
                                      label_names=MELD.labels, planned_labels=[1, 0, 2]))
    assert regex.fullmatch("Ross (joy): Hi.\nRachel (neutral): Oh.\nRoss (surprise): Wow!")
    assert not regex.fullmatch("Ross (joy): Hi.\nRachel (anger): Oh.\nRoss (surprise): Wow!")
    assert not regex.fullmatch("Ross (joy): Hi.\nRachel (neutral): Oh.")
    with pytest.raises(ValueError, match="outside"):
        dialogue_regex(["Ross"], 7, 2, 4, label_format="word_first", label_names=MELD.labels, planned_labels=[1])


@pytest.mark.parametrize("mode", ["natural", "balanced"])
def test_a_planned_dialogue_has_its_plans_labels_on_a_real_model(mode, tiny_lm_dir, tmp_path) -> None:  # noqa: F811
    config = GenerationConfig(benchmark="meld", mode=mode, num_dialogues=4, seed=5, out=tmp_path / "run",
                              backend="transformers", model=str(tiny_lm_dir), turns=(2, 4), prompt_version="v2",
                              label_format="word_first", label_plan="benchmark", max_utterance_chars=40,
                              sampling=SamplingParams(max_new_tokens=200), backend_options={"device": "cpu"})
    report = generate(config, progress=False)
    assert report.accepted == 4
    store = RunStore.open(tmp_path / "run")
    model = benchmark_plan_model(MELD, mode, (2, 4))
    for record in store.records():
        assert record.is_accepted
        plan = draw_plan(model, record.seed, record.target_emotion)
        assert list(record.emotions) == plan == record.extra["label_plan"]
    settings = json.loads((tmp_path / "run" / "manifest.json").read_text())["settings"]
    assert settings["label_plan"]["source"] == "benchmark" and settings["label_plan"]["dialogues"] == 1038


def test_bad_label_plans_are_refused(tmp_path: Path, capsys) -> None:
    base = ["generate", "--benchmark", "meld", "--num-dialogues", "2", "--out", str(tmp_path / "run")]
    with pytest.raises(SystemExit) as exit_info:
        erc_synth([*base, "--label-plan", "markov"])
    assert exit_info.value.code == 2
    assert erc_synth([*base, "--label-plan", "benchmark"]) == 2  # the default label format is "number"
    assert "--label-plan benchmark" in capsys.readouterr().err
    with pytest.raises(SettingError, match="label_plan"):
        GenerationConfig(benchmark="meld", label_plan="benchmark", prompt_version="v2", label_format="word_first",
                         grammar=False)
    data = {"backend": "transformers", "model": "embedded", "seed": 1, "label_plan": "markov",
            "datasets": [{"benchmark": "meld", "mode": "natural", "num_dialogues": 2}]}
    with pytest.raises(ErcSynthError, match=r"p.yaml: field 'label_plan' has unknown value 'markov'"):
        parse_preset(data, "p.yaml")
