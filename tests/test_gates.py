"""Quality gates on plain dialogues: what each gate drops, which copy it keeps, and its evidence."""

from __future__ import annotations

import pytest

from erc_synth.dataset_scripts.gates import GateOptions, apply_gates, normalised_hash

BASE = [
    "Could this coffee be any colder, I asked for it ten minutes ago and nobody listened",
    "We were on a break, and you know that better than anyone else in this apartment",
    "Pivot the couch up the stairs, pivot it now before the neighbours come home",
    "Smelly cat, smelly cat, what are they feeding you in that alley behind the restaurant",
]
OTHER = [
    "The museum asked me to give the lecture on fossils next Thursday at the university",
    "My sister is getting married in London and we are all invited to the wedding",
    "Joey ate the whole turkey again and now he needs to borrow my stretchy pants",
    "The lottery tickets are on the table and the candles are already burning low",
]


def test_exact_duplicate_ignores_case_punctuation_and_spacing_and_keeps_lowest_index():
    shouted = [u.upper() + "!!  " for u in BASE]
    kept, report = apply_gates([(7, shouted), (2, BASE), (3, OTHER)], GateOptions(near_dup_threshold=None))
    assert kept == [2, 3]
    assert report.exact_duplicates == 1 and report.near_duplicates == 0
    assert report.dropped == [{"index": 7, "gate": "exact_duplicate", "duplicate_of": 2}]
    assert normalised_hash(BASE) == normalised_hash(shouted)


def test_utterance_boundaries_matter_for_the_exact_hash():
    assert normalised_hash(["a b", "c"]) != normalised_hash(["a", "b c"])


def test_near_duplicate_one_word_changed_is_dropped_but_distinct_text_is_kept():
    edited = [BASE[0].replace("colder", "warmer"), *BASE[1:]]
    kept, report = apply_gates([(0, BASE), (1, OTHER), (4, edited)])
    assert kept == [0, 1]
    assert report.near_duplicates == 1
    assert report.dropped[0]["duplicate_of"] == 0 and report.dropped[0]["jaccard"] >= 0.8


def test_near_duplicate_threshold_is_an_option():
    mostly = BASE[:3] + OTHER[:1]  # Jaccard of shingles about 0.6
    _, strict = apply_gates([(0, BASE), (1, mostly)], GateOptions(near_dup_threshold=0.9))
    _, loose = apply_gates([(0, BASE), (1, mostly)], GateOptions(near_dup_threshold=0.4))
    assert strict.near_duplicates == 0
    assert loose.near_duplicates == 1


def test_decontamination_drops_dialogues_sharing_long_ngrams_with_the_test_split():
    reference = [["I said: we were on a break, and you know that better than anyone! Right?"]]
    kept, report = apply_gates([(0, BASE), (1, OTHER)], reference_dialogues=reference, reference_name="MELD test")
    assert kept == [1]
    assert report.contaminated == 1 and report.decontaminated_against == "MELD test"
    assert report.dropped[0]["shared_ngrams"] >= 1


def test_decontamination_threshold_tolerates_small_overlap_and_is_skipped_without_reference():
    reference = [["we were on a break, and you know that better than anyone"]]
    kept, report = apply_gates([(0, BASE)], GateOptions(decontam_threshold=0.2), reference_dialogues=reference)
    assert kept == [0] and report.contaminated == 0
    _, no_ref = apply_gates([(0, BASE)])
    assert no_ref.decontaminated_against is None and no_ref.contaminated == 0


def test_gates_are_deterministic_and_independent_of_input_order():
    items = [(i, [f"{w} {i % 3}" for w in BASE]) for i in range(12)] + [(20, OTHER)]
    first = apply_gates(items)
    second = apply_gates(list(reversed(items)))
    assert first[0] == second[0] and first[1].to_dict() == second[1].to_dict()


@pytest.mark.parametrize("kwargs", [{"near_dup_threshold": 1.5}, {"decontam_threshold": 1.0}, {"decontam_ngram": 0}])
def test_invalid_options_are_refused(kwargs):
    with pytest.raises(ValueError):
        GateOptions(**kwargs)
