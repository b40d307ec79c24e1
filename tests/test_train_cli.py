"""``erc-synth train`` end to end on tiny models, its user errors, and ``push_to_hub`` against a local Hub process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from datasets import DatasetDict
from helpers.hub_support import LocalHub, start_local_hub
from helpers.tiny_encoders import TOY_WORDS, build_encoder, toy_dialogues, write_built_folder
from helpers.torch_threads import one_thread  # noqa: F401

from erc_synth.cli import main
from erc_synth.dataset_scripts.core.registry import get_benchmark

TESTS_DIR = Path(__file__).resolve().parent
REPO = TESTS_DIR.parent
MELD = get_benchmark("meld")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_cli")
    encoder = build_encoder(root / "encoder", TOY_WORDS, "bert")
    real = write_built_folder(DatasetDict(train=toy_dialogues(MELD, 12, 1), validation=toy_dialogues(MELD, 4, 2),
                                          test=toy_dialogues(MELD, 4, 3)), root / "real")
    synthetic = write_built_folder(DatasetDict(train=toy_dialogues(MELD, 10, 4), test=toy_dialogues(MELD, 4, 5)),
                                   root / "synthetic")
    return {"encoder": str(encoder), "real": str(real), "synthetic": str(synthetic)}


def test_train_compm_with_pretraining(folders, tmp_path, capsys):
    status = main(["train", "--arch", "compm", "--encoder", folders["encoder"], "--benchmark", "meld",
                   "--real-data", folders["real"], "--pretrain", folders["synthetic"], "--regime", "bal",
                   "--synthetic-test", f"synthetic_balanced={folders['synthetic']}", "--out", str(tmp_path / "out"),
                   "--epochs", "1", "--batch-size", "8", "--max-length", "32",
                   "--option", "max_memory_utterances=2", "--option", "max_memory_length=8"])
    assert status == 0
    out = capsys.readouterr().out.splitlines()  # Trainer log lines first, then the scores as one JSON line
    scores = json.loads(next(line for line in out if line.startswith('{"')))
    assert set(scores) == {"real", "synthetic_balanced"}
    record = json.loads((tmp_path / "out" / "model" / "erc_synth_training.json").read_text())
    assert record["regime"] == "bal" and record["architecture"] == "compm"
    assert record["training"]["options"]["max_memory_utterances"] == 2
    assert (tmp_path / "out" / "model" / "README.md").is_file()


@pytest.mark.parametrize(("arguments", "message"), [
    (["--real-data", "/nonexistent/real"], "real data folder /nonexistent/real not found"),
    (["--regime", "nat"], "--regime nat needs --pretrain"),
    (["--arch", "todkat-x"], "unknown architecture 'todkat-x'"),
    (["--benchmark", "friends"], "unknown benchmark 'friends'"),
    (["--pretrain", "WRONG_LABELS"], "field 'emotions' has labels"),
    (["--encoder", "/nonexistent/encoder"], "--encoder /nonexistent/encoder: no such folder"),
    (["--option", "max_lenght=8"], "unknown emoberta option 'max_lenght'; did you mean 'max_length'?"),
    (["--epochs", "0"], "--epochs must be in 0 < value <= 10000.0, got 0.0"),
    (["--batch-size", str(10**30)], f"--batch-size must be in 1 <= value <= 65536, got {10**30}"),
    (["--regime", "syn"], "--regime syn needs --pretrain"),
])
def test_user_errors_exit_2_with_one_line(arguments, message, folders, tmp_path, capsys):
    if "WRONG_LABELS" in arguments:
        iemocap = get_benchmark("iemocap")
        wrong = write_built_folder(DatasetDict(train=toy_dialogues(iemocap, 2, 1)), tmp_path / "iemocap")
        arguments = ["--pretrain", str(wrong)]
    base = {"--arch": "emoberta", "--encoder": folders["encoder"], "--benchmark": "meld",
            "--real-data": folders["real"], "--out": str(tmp_path / "out")}
    for flag, value in zip(arguments[::2], arguments[1::2], strict=True):
        base[flag] = value
    argv = ["train", *(item for pair in base.items() for item in pair)]
    assert main(argv) == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]  # earlier lines: the fixture's progress bars
    assert last_line.startswith("erc-synth train: error: ") and message in last_line
    assert not (tmp_path / "out").exists()  # a refused run leaves no folder behind


def test_an_encoder_folder_without_a_tokenizer_leaves_no_output_folder(folders, tmp_path, capsys):
    (tmp_path / "empty-encoder").mkdir()
    argv = ["train", "--arch", "emoberta", "--encoder", str(tmp_path / "empty-encoder"), "--benchmark", "meld",
            "--real-data", folders["real"], "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"encoder '{tmp_path / 'empty-encoder'}' cannot be loaded" in last_line
    assert not (tmp_path / "out").exists()


def test_real_data_of_another_benchmark_names_both(shared_data, folders, tmp_path, capsys):
    argv = ["train", "--arch", "emoberta", "--encoder", folders["encoder"], "--benchmark", "meld",
            "--real-data", str(shared_data / "emorynlp"), "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"real data folder {shared_data / 'emorynlp'} holds emorynlp files, not meld's" in last_line


@pytest.fixture(scope="module")
def local_hub(tmp_path_factory) -> Iterator[LocalHub]:
    """The project's local Hub server (tests/servers/hub_server.py) as a real process."""
    yield from start_local_hub(tmp_path_factory, startup_s=30)


PUSH_AND_RELOAD = """
import json, sys, torch
from erc_synth.classifiers.model_card import push_model
from huggingface_hub import ModelCard, hf_hub_download
from transformers import AutoModelForSequenceClassification
model_dir, repo = sys.argv[1], sys.argv[2]
push_model(model_dir, repo)
card = ModelCard.load(repo)
remote = AutoModelForSequenceClassification.from_pretrained(repo)
local = AutoModelForSequenceClassification.from_pretrained(model_dir)
same = all(torch.equal(a, b) for a, b in zip(remote.state_dict().values(), local.state_dict().values()))
record = json.load(open(hf_hub_download(repo, "erc_synth_training.json")))
print(json.dumps({"tags": card.data.tags, "results": card.data.eval_results[0].metric_value, "same": same,
                  "regime": record["regime"], "real": record["scores"]["real"]["weighted_f1"]}))
"""


def test_push_to_hub_uploads_model_card_and_weights(folders, local_hub, tmp_path):
    assert main(["train", "--arch", "emoberta", "--encoder", folders["encoder"], "--benchmark", "meld",
                 "--real-data", folders["real"], "--out", str(tmp_path / "out"), "--epochs", "1",
                 "--max-length", "32"]) == 0
    env = {**local_hub.env(), "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), str(REPO)])}
    result = subprocess.run([sys.executable, "-c", PUSH_AND_RELOAD, str(tmp_path / "out" / "model"),
                             "org/erc-emoberta-meld-org"], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    pushed = json.loads(result.stdout.strip().splitlines()[-1])
    record = json.loads((tmp_path / "out" / "model" / "erc_synth_training.json").read_text())
    assert pushed["same"] is True
    assert "regime-org" in pushed["tags"] and "emoberta" in pushed["tags"]
    assert pushed["regime"] == "org" and pushed["real"] == record["scores"]["real"]["weighted_f1"]
    assert pushed["results"] == round(record["scores"]["real"]["weighted_f1"] * 100, 2)


def test_push_to_hub_with_a_refused_token_fails_before_training(folders, local_hub, tmp_path):
    done = local_hub.cli("train", "--arch", "compm", "--encoder", folders["encoder"], "--benchmark", "meld",
                         "--real-data", folders["real"], "--out", str(tmp_path / "out"), "--push-to-hub",
                         "org/erc-compm-meld", cwd=tmp_path, token="hf_not_the_hubs_token")
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr
    assert lines == [f"erc-synth train: error: --push-to-hub org/erc-compm-meld: the Hub at {local_hub.endpoint} "
                     "refuses the token (HTTP 401); check HF_TOKEN (nothing was trained)"]
    assert not (tmp_path / "out").exists()


def test_push_target_check_accepts_the_hubs_own_token(local_hub, tmp_path):
    done = local_hub.run([sys.executable, "-c", "from erc_synth.classifiers.model_card import check_push_target; "
                          "check_push_target('org/erc-compm-meld'); print('accepted')"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "accepted"
