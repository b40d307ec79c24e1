"""The review's pieces that need no server: the labelling config, the task HTML, the seeded sample, the figures."""

from __future__ import annotations

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from erc_synth.dataset_scripts.core.errors import ErcSynthError
from erc_synth.dataset_scripts.core.registry import BENCHMARKS, get_benchmark
from erc_synth.review.agreement import alpha_with_ci, kappa_with_ci
from erc_synth.review.label_config import config_labels, label_config
from erc_synth.review.tasks import ReviewItem, dialogue_html, draw_sample


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_the_config_lists_the_benchmark_labels_in_canonical_order(name: str) -> None:
    benchmark = get_benchmark(name)
    assert config_labels(label_config(benchmark)) == list(benchmark.labels)
    assert config_labels("<View><Choices name='other' toName='x'><Choice value='a'/></Choices></View>") is None
    assert config_labels("not xml") is None


def test_the_dialogue_html_escapes_text_and_marks_only_the_reviewed_turn() -> None:
    text = dialogue_html(["Ross", "Rachel", "Joey"], ["<b>hi</b>", "We were on a break & so?", "How you doin'"], 1)
    assert text.count("<mark>") == 1 and "<b>Rachel:</b> We were on a break &amp; so?</mark>" in text
    assert "&lt;b&gt;hi&lt;/b&gt;" in text and text.index("Ross") < text.index("<mark>") < text.index("Joey")


def _items(n: int, suspects: dict[int, int]) -> list[ReviewItem]:
    return [ReviewItem(split="train", dialogue_id=f"d{i // 4}", turn=i % 4, speakers=("A",) * 4,
                       utterances=("x",) * 4, label=i % 7, suspect_rank=suspects.get(i)) for i in range(n)]


def test_the_sample_is_seeded_suspects_come_first_and_the_record_says_so() -> None:
    items = _items(40, {7: 1, 3: 0, 20: 2})
    first = draw_sample(items, 10, 4, suspects_first=True)
    assert [i.key for i in first.items[:3]] == [items[3].key, items[7].key, items[20].key]
    assert first.drawn_as == ["suspect"] * 3 + ["random"] * 7 and len({i.key for i in first.items}) == 10
    assert [i.key for i in draw_sample(items, 10, 4, suspects_first=True).items] == [i.key for i in first.items]
    other = draw_sample(items, 10, 5, suspects_first=False)
    assert other.record["suspects"] == 0 and [i.key for i in other.items] != [i.key for i in first.items]
    assert first.record["population"] == 40 and "cleanlab suspects first" in first.record["method"]
    with pytest.raises(ErcSynthError, match="--sample 0"):
        draw_sample(items, 0, 0, suspects_first=False)


def test_kappa_and_alpha_match_their_libraries_with_intervals_around_them() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, 60)
    human = np.where(rng.random(60) < 0.7, truth, rng.integers(0, 4, 60))
    figure = kappa_with_ci([[(int(h), int(t))] for h, t in zip(human, truth, strict=True)], 4, seed=1)
    assert figure["value"] == round(cohen_kappa_score(human, truth, labels=range(4)), 4) and figure["n"] == 60
    assert figure["ci"][0] < figure["value"] < figure["ci"][1]
    assert kappa_with_ci([[(int(h), int(t))] for h, t in zip(human, truth, strict=True)], 4, seed=1) == figure
    second = np.where(rng.random(60) < 0.8, human, rng.integers(0, 4, 60))
    alpha = alpha_with_ci([{"a": int(x), "b": int(y)} for x, y in zip(human, second, strict=True)], seed=1)
    expected = krippendorff.alpha(reliability_data=np.vstack([human, second]).astype(float),
                                  level_of_measurement="nominal")
    assert alpha["value"] == round(expected, 4) and alpha["n"] == 60 and alpha["annotators"] == 2
    assert alpha_with_ci([{"a": 1}, {"b": 2}]) is None  # no task was labelled by two people
