"""Every reader on small hand-written fixtures, through ``load_reference`` and directly."""

from __future__ import annotations

import shutil

import pytest
from datasets import ClassLabel

from erc_synth.dataset_scripts.core.errors import ErcSynthError
from erc_synth.dataset_scripts.core.registry import get_benchmark
from erc_synth.dataset_scripts.readers import READERS, DialogueIdWarning, SplitSource, load_reference
from erc_synth.dataset_scripts.schema import UNLABELLED


def _labels(dataset, benchmark):
    names = get_benchmark(benchmark).labels
    return [[names[e] if e != UNLABELLED else None for e in emotions] for emotions in dataset["emotions"]]


def test_meld_csv_orders_by_utterance_id_and_keeps_split_in_ids(fixtures_dir):
    data = load_reference("meld", fixtures_dir)
    assert list(data) == ["train", "validation", "test"]
    train = data["train"]
    assert train["dialogue_id"][:] == ["train_dia0", "train_dia2", "train_dia3"]
    # rows of dia2 are listed 0, 3, 1 in the file; Utterance_ID decides the order, gaps are kept as they are
    assert train[1]["utterances"] == ["Guess who got the job?", "No way!", "I start on Monday."]
    assert train[1]["speakers"] == ["Rachel", "Ross", "Rachel"]
    assert _labels(train, "meld")[1] == ["joy", "surprise", "joy"]
    assert train[0]["utterances"][:2] == ["Okay, who left the milk out?", "Wasn’t me. I only drink juice…"]
    assert data["validation"]["dialogue_id"][:] == ["validation_dia0"]
    assert isinstance(train.features["emotions"].feature, ClassLabel)


def test_benchmark_folder_or_its_parent_both_work(fixtures_dir):
    a = load_reference("meld", fixtures_dir)
    b = load_reference("meld", fixtures_dir / "meld")
    assert a["test"].to_list() == b["test"].to_list()


def test_emorynlp_compm_ids_come_from_the_original_json_and_train_is_positional(fixtures_dir):
    data = load_reference("emorynlp", fixtures_dir)  # default variant: CoMPM tsv
    assert data["train"]["dialogue_id"][:] == ["train_0000", "train_0001"]
    # c03 and c04 are identical scenes: they take their ids in file order
    assert data["validation"]["dialogue_id"][:] == ["s01_e02_c01", "s01_e02_c03", "s01_e02_c04"]
    assert data["test"]["dialogue_id"][:] == ["s02_e01_c02"]
    assert data["validation"][0]["speakers"] == ["Rachel Green", "Chandler Bing", "Rachel Green"]
    assert _labels(data["validation"], "emorynlp")[0] == ["neutral", "joyful", "mad"]


def test_emorynlp_original_json_joins_speakers_and_has_no_train(fixtures_dir):
    data = load_reference("emorynlp", fixtures_dir, variant="original")
    assert list(data) == ["validation", "test"]
    assert data["validation"][0]["speakers"][1] == "Chandler Bing & Joey Tribbiani"
    assert data["validation"]["dialogue_id"][:] == ["s01_e02_c01", "s01_e02_c03", "s01_e02_c04"]


def test_emorynlp_dialogxl_keeps_space_joined_speakers(fixtures_dir):
    data = load_reference("emorynlp", fixtures_dir, variant="dialogxl")
    assert data["train"][1]["speakers"][1] == "Ross Geller Chandler Bing"
    assert data["validation"]["dialogue_id"][:] == ["s01_e02_c01", "s01_e02_c03", "s01_e02_c04"]
    compm = load_reference("emorynlp", fixtures_dir)
    assert data["test"]["utterances"][:] == compm["test"]["utterances"][:]
    assert data["test"]["emotions"][:] == compm["test"]["emotions"][:]


def test_iemocap_dialogxl_reads_ids_from_speakers_and_keeps_unlabelled_context(fixtures_dir):
    data = load_reference("iemocap", fixtures_dir, variant="dialogxl")
    train = data["train"]
    assert train["dialogue_id"][:] == ["Ses01F_impro01", "Ses01F_script01_1", "Ses01M_impro02"]
    assert train[0]["speakers"] == ["F", "M", "F", "M"]
    assert _labels(train, "iemocap")[0] == ["angry", "frustrated", None, "frustrated"]
    assert train[0]["utterances"][1] == "Hi, I need an ID."  # DialogXL collapsed the double space


def test_iemocap_compm_ids_recovered_from_the_dialogxl_files(fixtures_dir):
    data = load_reference("iemocap", fixtures_dir)
    assert data["train"]["dialogue_id"][:] == ["Ses01F_impro01", "Ses01M_impro02", "Ses02F_impro01"]
    assert data["validation"]["dialogue_id"][:] == ["Ses01F_script01_1"]
    assert data["test"]["dialogue_id"][:] == ["Ses05F_impro01", "Ses05M_script01_1"]
    assert data["train"][0]["utterances"][1] == "Hi, I  need an ID."  # CoMPM keeps the original spacing
    assert _labels(data["train"], "iemocap")[2] == ["excited", "excited"]


def test_iemocap_compm_without_sibling_json_falls_back_to_positional_ids(fixtures_dir, tmp_path):
    for name in ("iemocap_train.txt", "iemocap_dev.txt", "iemocap_test.txt"):
        shutil.copy(fixtures_dir / "iemocap" / name, tmp_path / name)
    data = load_reference("iemocap", tmp_path)
    assert data["train"]["dialogue_id"][:] == ["train_0000", "train_0001", "train_0002"]
    assert data["test"]["dialogue_id"][:] == ["test_0000", "test_0001"]


def test_a_broken_sibling_read_only_for_ids_costs_only_those_ids_with_a_warning_naming_it(fixtures_dir, tmp_path):
    shutil.copytree(fixtures_dir / "iemocap", tmp_path / "iemocap", ignore=shutil.ignore_patterns("bad"))
    (tmp_path / "iemocap" / "dev_data.json").write_text('[[{"text": "We won!", "speaker"', encoding="utf-8")
    with pytest.warns(DialogueIdWarning) as caught:
        data = load_reference("iemocap", tmp_path)
    intact = load_reference("iemocap", fixtures_dir)
    assert data["test"]["dialogue_id"] == intact["test"]["dialogue_id"] == ["Ses05F_impro01", "Ses05M_script01_1"]
    assert data["validation"]["dialogue_id"] == intact["validation"]["dialogue_id"]
    # the third train dialogue's id lived in the broken file: the train split falls back as a whole
    assert data["train"]["dialogue_id"] == ["train_0000", "train_0001", "train_0002"]
    assert data["train"]["utterances"] == intact["train"]["utterances"]
    [warning] = caught
    message = str(warning.message)
    assert "iemocap_train.txt: the train split gets positional dialogue ids" in message
    assert "dev_data.json" in message and "read only to recover its ids" in message
    with pytest.raises(ErcSynthError, match=r"dev_data\.json.*invalid JSON"):
        load_reference("iemocap", tmp_path, variant="dialogxl")  # asked for: still an error


def test_utterances_config(fixtures_dir):
    data = load_reference("iemocap", fixtures_dir, variant="dialogxl", config="utterances")
    test = data["test"]
    assert test.column_names == ["dialogue_id", "turn", "speaker", "utterance", "emotion"]
    assert len(test) == 5
    assert test["emotion"][:] == [3, 0, 5, 0, UNLABELLED]
    assert test["turn"][:] == [0, 1, 0, 1, 2]


def test_unknown_config_is_a_user_error(fixtures_dir):
    with pytest.raises(ErcSynthError, match="unknown config"):
        load_reference("meld", fixtures_dir, config="scenes")


@pytest.mark.parametrize(
    ("fmt", "benchmark", "relative", "dialogues", "utterances"),
    [
        ("meld_csv", "meld", "meld/train_sent_emo.csv", 3, 8),
        ("tsv_dialogues", "emorynlp", "emorynlp/EMORY_dev.txt", 3, 7),
        ("tsv_dialogues", "iemocap", "iemocap/iemocap_train.txt", 3, 7),
        ("dialogxl_json", "iemocap", "iemocap/train_data.json", 3, 9),
        ("dialogxl_json", "emorynlp", "emorynlp/test_data.json", 1, 3),
        ("emorynlp_json", "emorynlp", "emorynlp/emotion-detection-dev.json", 3, 7),
    ],
)
def test_each_reader_directly(fixtures_dir, fmt, benchmark, relative, dialogues, utterances):
    parsed = READERS[fmt](SplitSource(get_benchmark(benchmark), "train", fixtures_dir / relative))
    assert len(parsed) == dialogues
    assert sum(len(d.utterances) for d in parsed) == utterances
    for d in parsed:
        assert len(d.speakers) == len(d.utterances) == len(d.emotions) > 0
