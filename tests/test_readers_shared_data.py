"""Exact counts on the real benchmark copies in ../shared/data, through ``load_reference`` and ``erc-synth stats``.

Expected numbers are the counts that the data folder's README.md gives for these copies.
Skipped, with the reason, where the licensed copies are absent.
"""

from __future__ import annotations

import json

import pytest

from erc_synth.cli import main
from erc_synth.dataset_scripts.readers import load_reference
from erc_synth.dataset_scripts.reference import reference_label_counts, reference_label_distribution
from erc_synth.dataset_scripts.stats import corpus_stats

pytestmark = pytest.mark.needs_shared_data

COUNTS = {  # benchmark -> (dialogues, utterances) per split, default variant
    "meld": ((1038, 114, 280), (9989, 1109, 2610)),
    "emorynlp": ((713, 99, 85), (9934, 1344, 1328)),
    "iemocap": ((108, 12, 31), (5163, 647, 1623)),
}

LABELS = {  # benchmark -> split -> counts in the README's spelling
    "meld": {
        "train": {"anger": 1109, "disgust": 271, "fear": 268, "joy": 1743, "neutral": 4710, "sadness": 683,
                  "surprise": 1205},
        "validation": {"anger": 153, "disgust": 22, "fear": 40, "joy": 163, "neutral": 470, "sadness": 111,
                       "surprise": 150},
        "test": {"anger": 345, "disgust": 68, "fear": 50, "joy": 402, "neutral": 1256, "sadness": 208,
                 "surprise": 281},
    },
    "emorynlp": {
        "train": {"Joyful": 2184, "Mad": 1076, "Neutral": 3034, "Peaceful": 900, "Powerful": 784, "Sad": 671,
                  "Scared": 1285},
        "validation": {"Joyful": 289, "Mad": 143, "Neutral": 393, "Peaceful": 132, "Powerful": 134, "Sad": 75,
                       "Scared": 178},
        "test": {"Joyful": 282, "Mad": 113, "Neutral": 349, "Peaceful": 159, "Powerful": 145, "Sad": 98,
                 "Scared": 182},
    },
    "iemocap": {
        "train": {"ang": 831, "exc": 593, "fru": 1296, "hap": 451, "neu": 1221, "sad": 771},
        "validation": {"ang": 102, "exc": 149, "fru": 172, "hap": 53, "neu": 103, "sad": 68},
        "test": {"ang": 170, "exc": 299, "fru": 381, "hap": 144, "neu": 384, "sad": 245},
    },
}

COSMIC_VALIDATION_IDS = [  # listed in the data README; the files themselves do not name them
    "Ses01M_impro01", "Ses01M_script03_1", "Ses02F_impro02", "Ses02F_impro07", "Ses02M_script01_2",
    "Ses03F_impro01", "Ses03M_impro02", "Ses03M_impro08a", "Ses03M_script02_2", "Ses03M_script03_2",
    "Ses04F_impro07", "Ses04F_script02_1",
]


def _canonical(benchmark_name: str, counts: dict[str, int]) -> dict[str, int]:
    from erc_synth.dataset_scripts.core.registry import get_benchmark

    benchmark = get_benchmark(benchmark_name)
    return {benchmark.spellings[spelling]: n for spelling, n in counts.items()}


@pytest.fixture(scope="module")
def reference(shared_data):
    return {name: load_reference(name, shared_data) for name in COUNTS}


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_counts_through_load_reference(reference, name):
    stats = corpus_stats(reference[name])
    assert [s.split for s in stats] == ["train", "validation", "test"]
    assert tuple(s.dialogues for s in stats) == COUNTS[name][0]
    assert tuple(s.utterances for s in stats) == COUNTS[name][1]
    for s in stats:
        assert s.label_counts == _canonical(name, LABELS[name][s.split])
        assert s.unlabelled == 0


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_counts_through_erc_synth_stats(shared_data, capsys, name):
    assert main(["stats", name, "--data-dir", str(shared_data), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["dialogues"], r["utterances"]) for r in rows] == list(zip(*COUNTS[name], strict=True))
    assert rows[0]["label_counts"] == _canonical(name, LABELS[name]["train"])


def test_iemocap_dialogxl_keeps_unlabelled_context(shared_data):
    stats = corpus_stats(load_reference("iemocap", shared_data, variant="dialogxl"))
    assert [(s.dialogues, s.utterances, s.unlabelled) for s in stats] == [
        (100, 6490, 1712), (20, 1401, 421), (31, 2196, 574)
    ]
    assert stats[0].label_counts == _canonical("iemocap", {
        "ang": 711, "exc": 620, "fru": 1149, "hap": 392, "neu": 1167, "sad": 739,
    })


def test_iemocap_compm_ids_are_cosmics_split_in_sorted_order(reference):
    ids = {split: list(ds["dialogue_id"]) for split, ds in reference["iemocap"].items()}
    assert ids["validation"] == COSMIC_VALIDATION_IDS
    assert all(i.startswith("Ses05") for i in ids["test"]) and len(set(ids["test"])) == 31
    assert all(ids[split] == sorted(ids[split]) for split in ids)
    assert not set(ids["train"]) & set(ids["validation"])
    assert all(not i.startswith("Ses05") for i in ids["train"])


def test_emorynlp_variants_agree_and_carry_scene_ids(shared_data, reference):
    original = load_reference("emorynlp", shared_data, variant="original")
    dialogxl = load_reference("emorynlp", shared_data, variant="dialogxl")
    assert list(original) == ["validation", "test"]
    compm = reference["emorynlp"]
    for split in ("validation", "test"):
        assert compm[split]["dialogue_id"][:] == original[split]["dialogue_id"][:]
        assert compm[split]["utterances"][:] == original[split]["utterances"][:] == dialogxl[split]["utterances"][:]
        assert compm[split]["emotions"][:] == original[split]["emotions"][:]
    assert dialogxl["train"]["emotions"][:] == compm["train"]["emotions"][:]
    assert compm["train"][0]["dialogue_id"] == "train_0000"  # no id-carrying train file exists
    multi = [s for speakers in original["test"]["speakers"] for s in speakers if " & " in s]
    assert len(multi) == 10


def test_meld_dialogue_ids_follow_the_files(reference):
    train_ids = reference["meld"]["train"]["dialogue_id"][:]
    assert train_ids[0] == "train_dia0" and "train_dia60" not in train_ids and train_ids[-1] == "train_dia1038"


def test_reference_distribution_is_computed_from_the_files(shared_data):
    counts = reference_label_counts("meld", shared_data)
    assert counts == _canonical("meld", LABELS["meld"]["train"])
    assert list(counts) == ["neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear"]
    distribution = reference_label_distribution("meld", shared_data)
    assert distribution["neutral"] == pytest.approx(4710 / 9989)
    assert sum(distribution.values()) == pytest.approx(1.0)
    dialogxl = reference_label_counts("iemocap", shared_data, variant="dialogxl", split="test")
    assert sum(dialogxl.values()) == 1622  # labelled only; the 574 context utterances are left out
