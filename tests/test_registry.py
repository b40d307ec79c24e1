"""The benchmark registry: canonical label order, original spellings, and refusing unknown spellings."""

from __future__ import annotations

import pytest

from erc_synth.dataset_scripts.core.errors import ErcSynthError, UnknownLabelError
from erc_synth.dataset_scripts.core.registry import BENCHMARKS, SPLITS, dialogue_lengths, get_benchmark
from erc_synth.dataset_scripts.readers import READERS

CANONICAL_LABELS = {
    "meld": ("neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear"),
    "emorynlp": ("neutral", "joyful", "peaceful", "powerful", "scared", "mad", "sad"),
    "iemocap": ("neutral", "happy", "sad", "angry", "excited", "frustrated"),
}


@pytest.mark.parametrize("name", sorted(CANONICAL_LABELS))
def test_labels_in_the_canonical_order(name):
    assert get_benchmark(name).labels == CANONICAL_LABELS[name]


def test_registry_holds_exactly_the_three_benchmarks():
    assert set(BENCHMARKS) == set(CANONICAL_LABELS)


@pytest.mark.parametrize(
    ("name", "spelling", "label"),
    [
        ("meld", "joy", "joy"),
        ("emorynlp", "Joyful", "joyful"),
        ("emorynlp", "Mad", "mad"),
        ("emorynlp", "mad", "mad"),
        ("iemocap", "neu", "neutral"),
        ("iemocap", "hap", "happy"),
        ("iemocap", "ang", "angry"),
        ("iemocap", "exc", "excited"),
        ("iemocap", "fru", "frustrated"),
        ("iemocap", "sad", "sad"),
    ],
)
def test_original_spellings_map_to_canonical_labels(name, spelling, label):
    benchmark = get_benchmark(name)
    assert benchmark.labels[benchmark.label_index(spelling)] == label


@pytest.mark.parametrize(("name", "spelling"), [("meld", "Joy"), ("meld", "happy"), ("iemocap", "xxx"),
                                                ("iemocap", "Neutral"), ("emorynlp", "joy")])
def test_unknown_spelling_raises_instead_of_guessing(name, spelling):
    with pytest.raises(UnknownLabelError, match=repr(spelling)):
        get_benchmark(name).label_index(spelling)


def test_iemocap_speakers_are_m_and_f_as_in_the_files():
    assert get_benchmark("iemocap").speakers == ("M", "F")


@pytest.mark.parametrize("name", sorted(CANONICAL_LABELS))
def test_every_variant_names_a_reader_and_known_splits(name):
    benchmark = get_benchmark(name)
    assert benchmark.default_variant in benchmark.variants
    for variant in benchmark.variants.values():
        assert variant.format in READERS
        assert set(variant.files) <= set(SPLITS)


def test_unknown_benchmark_and_variant_are_user_errors():
    with pytest.raises(ErcSynthError, match="known: meld, emorynlp, iemocap"):
        get_benchmark("friends")
    with pytest.raises(ErcSynthError, match="compm, dialogxl"):
        get_benchmark("iemocap").variant("original")


@pytest.mark.needs_shared_data
@pytest.mark.parametrize("name", sorted(CANONICAL_LABELS))
def test_stored_dialogue_lengths_are_those_of_the_real_train_split(name, shared_data):
    from erc_synth.dataset_scripts.readers import read_dialogues

    train = read_dialogues(name, shared_data, splits=("train",))["train"]
    assert get_benchmark(name).real_lengths == dialogue_lengths([len(d.utterances) for d in train])


def test_dialogue_lengths_and_the_typical_range_on_known_counts():
    lengths = dialogue_lengths([2, 4, 4, 6, 8, 10, 30])
    assert (lengths.dialogues, lengths.mean, lengths.median, lengths.min, lengths.max) == (7, 9.14, 6.0, 2, 30)
    assert (lengths.q1, lengths.q3) == (4.0, 9.0) and lengths.typical_range == (4, 9)
    assert get_benchmark("iemocap").real_lengths.typical_range == (37, 57)  # far longer than MELD's (5, 14)
