"""Bad input: each case names the file, the line or JSON path, the field and the value; the CLI exits non-zero.

Every case reads a small committed fixture under ``tests/fixtures/<benchmark>/bad/<case>/``.
"""

from __future__ import annotations

import re

import pytest

from erc_synth.cli import main
from erc_synth.dataset_scripts.core.errors import DataFormatError
from erc_synth.dataset_scripts.readers import load_reference


def _load_error(benchmark, folder, variant=None) -> DataFormatError:
    with pytest.raises(DataFormatError) as info:
        load_reference(benchmark, folder, variant=variant)
    return info.value


def test_missing_file_names_the_expected_path(fixtures_dir):
    folder = fixtures_dir / "emorynlp" / "bad" / "missing_file"
    error = _load_error("emorynlp", folder)
    assert error.path == str(folder / "EMORY_dev.txt")
    assert "file not found" in str(error) and "'validation'" in str(error)


def test_missing_column(fixtures_dir):
    folder = fixtures_dir / "meld" / "bad" / "missing_column"
    error = _load_error("meld", folder)
    assert (error.path, error.line, error.field) == (str(folder / "train_sent_emo.csv"), 1, "Emotion")
    assert "missing column" in str(error)


def test_unknown_label_spelling_in_csv(fixtures_dir):
    error = _load_error("meld", fixtures_dir / "meld" / "bad" / "unknown_label")
    assert (error.line, error.field, error.value) == (3, "Emotion", "happpy")
    assert "unknown meld label" in str(error) and "train_sent_emo.csv:3" in str(error)


def test_unknown_label_spelling_in_json(fixtures_dir):
    error = _load_error("iemocap", fixtures_dir / "iemocap" / "bad" / "unknown_label_json", variant="dialogxl")
    assert (error.json_path, error.field, error.value) == ("$[0][1].label", "label", "joy")


def test_truncated_csv_row(fixtures_dir):
    error = _load_error("meld", fixtures_dir / "meld" / "bad" / "truncated_row")
    assert error.line == 3
    assert "3 fields, the header has 11" in str(error)
    assert error.value == "2,Hi, Ross!,Rachel"


def test_truncated_json(fixtures_dir):
    folder = fixtures_dir / "emorynlp" / "bad" / "truncated_json"
    error = _load_error("emorynlp", folder, variant="dialogxl")
    assert error.path == str(folder / "train_data.json")
    assert error.line == 2
    assert "invalid JSON" in str(error)


def test_wrong_encoding_names_line_and_bytes(fixtures_dir):
    error = _load_error("meld", fixtures_dir / "meld" / "bad" / "wrong_encoding")
    assert error.line == 3
    assert b"\x92" in error.value
    assert "not valid UTF-8" in str(error) and "cp1252" in str(error)


def test_cp1252_punctuation_stored_as_control_characters(fixtures_dir):
    error = _load_error("meld", fixtures_dir / "meld" / "bad" / "c1_controls")
    assert (error.line, error.field) == (2, "Utterance")
    assert "U+0092" in str(error)


def test_empty_dialogue_in_tsv(fixtures_dir):
    error = _load_error("iemocap", fixtures_dir / "iemocap" / "bad" / "empty_dialogue")
    assert error.line == 3  # lines 3 and 4 are both blank
    assert "empty dialogue" in str(error)


def test_empty_dialogue_in_json(fixtures_dir):
    error = _load_error("emorynlp", fixtures_dir / "emorynlp" / "bad" / "empty_dialogue_json", variant="dialogxl")
    assert error.json_path == "$[1]"
    assert "empty dialogue" in str(error)


def test_tsv_line_with_a_missing_field(fixtures_dir):
    error = _load_error("iemocap", fixtures_dir / "iemocap" / "bad" / "missing_field")
    assert (error.line, error.value) == (2, "M\tHi there.")


def test_json_utterance_without_speaker(fixtures_dir):
    error = _load_error("emorynlp", fixtures_dir / "emorynlp" / "bad" / "missing_key", variant="dialogxl")
    assert (error.json_path, error.field) == ("$[0][1]", "speaker")


@pytest.mark.parametrize(
    ("benchmark", "case", "variant", "where"),
    [
        ("meld", "meld/bad/unknown_label", None, r"train_sent_emo\.csv:3: .*'happpy'"),
        ("meld", "meld/bad/wrong_encoding", None, r"train_sent_emo\.csv:3: not valid UTF-8"),
        ("emorynlp", "emorynlp/bad/truncated_json", "dialogxl", r"train_data\.json:2: invalid JSON"),
        ("emorynlp", "emorynlp/bad/missing_file", None, r"EMORY_dev\.txt: file not found"),
    ],
)
def test_cli_prints_one_line_and_exits_non_zero(fixtures_dir, capsys, benchmark, case, variant, where):
    argv = ["stats", benchmark, "--data-dir", str(fixtures_dir / case)] + (["--variant", variant] if variant else [])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert re.search(where, err)


def test_csv_ending_inside_a_quoted_field(fixtures_dir):
    error = _load_error("meld", fixtures_dir / "meld" / "bad" / "unclosed_quote")
    assert error.line == 3
    assert "malformed csv record" in str(error)


def test_repeated_dialogue_id(fixtures_dir):
    error = _load_error("emorynlp", fixtures_dir / "emorynlp" / "bad" / "duplicate_scene", variant="original")
    assert error.path.endswith("emotion-detection-dev.json")
    assert error.value == "s01_e01_c01"
