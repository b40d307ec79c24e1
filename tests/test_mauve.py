"""MAUVE on embeddings: known answers on synthetic clusters, and on real text against made-up words."""

from __future__ import annotations

import random

import numpy as np
import pytest

from erc_synth.classifiers.quality import metrics as m
from erc_synth.classifiers.quality.embeddings import embed_texts
from erc_synth.classifiers.quality.mauve import mauve_score


def _clusters(rng: np.random.Generator, centres: np.ndarray, n: int) -> np.ndarray:
    return centres[rng.integers(len(centres), size=n)] + 0.05 * rng.standard_normal((n, centres.shape[1]))


def test_two_samples_of_one_distribution_cover_each_other_and_disjoint_ones_do_not():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((8, 16))
    same = mauve_score(_clusters(rng, centres, 400), _clusters(rng, centres, 400), seed=0)
    other = mauve_score(_clusters(rng, centres, 400), _clusters(rng, rng.standard_normal((8, 16)), 400), seed=0)
    half = mauve_score(_clusters(rng, centres, 400), _clusters(rng, centres[:4], 400), seed=0)  # half the modes
    assert same > 0.9 and other < 0.05 and other < half < same, (same, half, other)
    assert mauve_score(_clusters(rng, centres, 400), _clusters(rng, centres, 400), seed=0) == pytest.approx(
        same, abs=0.05)


def test_mauve_is_reproducible_and_refuses_tiny_samples():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((60, 8)), rng.standard_normal((60, 8))
    assert mauve_score(a, b, seed=3) == mauve_score(a, b, seed=3)
    with pytest.raises(ValueError, match="at least 20"):
        mauve_score(a[:19], b)


@pytest.mark.needs_shared_data
def test_real_halves_score_far_above_real_against_made_up_words(shared_data):
    from erc_synth.dataset_scripts.readers import load_reference

    texts = [u for utterances in load_reference("meld", shared_data)["train"]["utterances"] for u in utterances]
    a, b = m.sample(texts[::2], 300, seed=1), m.sample(texts[1::2], 300, seed=2)
    rng = random.Random(0)
    words = ["".join(rng.choice("bcdfghjklmnprstvz") + rng.choice("aeiou") for _ in range(4)) for _ in range(900)]
    nonsense = [" ".join(rng.sample(words, rng.randint(3, 7))).capitalize() + "!" for _ in range(300)]
    real = mauve_score(embed_texts(a), embed_texts(b), seed=0)
    fake = mauve_score(embed_texts(a), embed_texts(nonsense), seed=0)
    assert real > 0.8 and fake < 0.2, (real, fake)
