"""tune-generator on a tiny random Llama with the SmolLM2 tokenizer and real train dialogues: the loss falls, a
SIGKILL mid-training resumes to the same adapter, a rerun is a no-op, generate records the tuned generator,
and push refuses a set from an IEMOCAP-tuned generator without --i-hold-iemocap-rights."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers.builder_support import make_run_dir, settings_for
from helpers.hub_support import LocalHub, start_local_hub
from helpers.torch_threads import one_thread  # noqa: F401
from safetensors.torch import load_file

from erc_synth.cli import main as erc_synth
from erc_synth.dataset_scripts.core.registry import get_benchmark
from erc_synth.dataset_scripts.run_store import RunStore
from erc_synth.generation.tuned_model import TUNE_MANIFEST, tuning_provenance

pytestmark = pytest.mark.slow

#: Few steps, checkpoints every 2, a learning rate a random tiny model moves at.
TUNE_ARGS = ["--max-dialogues", "8", "--max-steps", "6", "--save-steps", "2", "--batch-size", "2",
             "--learning-rate", "1e-2", "--lora-dropout", "0.1", "--device", "cpu", "--seed", "5"]


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory) -> Path:
    """A 2-layer random LlamaForCausalLM (from_config) with the embedded SmolLM2's tokenizer and chat template."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from erc_synth.generation.backends.embedded import EmbeddedModelMissing, dequantised_model_folder

    try:
        source = dequantised_model_folder()
    except EmbeddedModelMissing as exc:
        pytest.skip(f"needs the SmolLM2 tokenizer: {exc}")
    tokenizer = AutoTokenizer.from_pretrained(source)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    folder = tmp_path_factory.mktemp("tiny-base")
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _tune_cli(base: Path, real: Path, out: Path, benchmark: str = "meld", extra: list[str] | None = None) -> list[str]:
    return [sys.executable, "-m", "erc_synth.cli", "tune-generator", "--benchmark", benchmark, "--real-data",
            str(real), "--out", str(out), "--base-model", str(base), *TUNE_ARGS, *(extra or [])]


@pytest.fixture(scope="module")
def tuned(tiny_base, shared_data, tmp_path_factory) -> Path:
    """An uninterrupted run: the reference the resumed run must match."""
    out = tmp_path_factory.mktemp("tuned") / "gen"
    done = subprocess.run(_tune_cli(tiny_base, shared_data, out), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return out


def _mean_loss(folder: Path, shared_data: Path) -> float:
    """The mean answer loss of a model on the tuning examples, tokenised as training tokenised them."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from erc_synth.generation.chat_format import resolve_chat_format
    from erc_synth.generation.tuning import tokenise
    from erc_synth.generation.tuning_data import load_tune_set

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    tune_set = load_tune_set(get_benchmark("meld"), shared_data, max_dialogues=8)
    rows, _ = tokenise(tune_set, tokenizer, resolve_chat_format("auto", str(folder), tokenizer), 512)
    with torch.no_grad():
        losses = [model(input_ids=torch.tensor([r["input_ids"]]), labels=torch.tensor([r["labels"]])).loss.item()
                  for r in rows]
    return sum(losses) / len(losses)


def test_tuning_lowers_the_loss_and_writes_a_manifest_without_real_text(tuned, tiny_base, shared_data):
    manifest = json.loads((tuned / TUNE_MANIFEST).read_text())
    assert manifest["benchmark"] == "meld" and manifest["train_split"] == "train"
    assert manifest["data"]["examples"] == 8 and manifest["training"]["steps"] == 6
    assert manifest["training"]["last_loss"] < manifest["training"]["first_loss"]
    assert "MELD" in manifest["licence"] and len(manifest["base_model_sha256"]) == 64
    assert _mean_loss(tuned, shared_data) < _mean_loss(tiny_base, shared_data) - 0.01
    # no training text anywhere in GEN_DIR outside the weights, and no work folder left behind
    from erc_synth.dataset_scripts.readers.loader import read_dialogues

    lines = [u for d in read_dialogues("meld", shared_data, splits=("train",))["train"] for u in d.utterances
             if len(u) > 30]
    for path in tuned.rglob("*"):
        if path.is_file() and path.suffix != ".safetensors":
            text = path.read_text(encoding="utf-8", errors="replace")
            assert not any(line in text for line in lines), path
    assert not (tuned.parent / f"{tuned.name}.tune-work").exists()


def test_rerun_with_the_same_inputs_is_a_no_op_that_says_so(tuned, tiny_base, shared_data):
    before = (tuned / "model.safetensors").stat().st_mtime_ns
    done = subprocess.run(_tune_cli(tiny_base, shared_data, tuned), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "is up to date" in done.stdout and "nothing to do" in done.stdout
    assert (tuned / "model.safetensors").stat().st_mtime_ns == before


def test_sigkill_mid_training_then_rerun_gives_the_same_adapter(tuned, tiny_base, shared_data, tmp_path):
    out = tmp_path / "gen"
    process = subprocess.Popen(_tune_cli(tiny_base, shared_data, out), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 600
    work = tmp_path / "gen.tune-work"
    while not list(work.glob("*/checkpoints/checkpoint-2/trainer_state.json")):
        assert process.poll() is None, "training ended before its first checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not out.exists()
    done = subprocess.run(_tune_cli(tiny_base, shared_data, out), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resuming from checkpoint-" in done.stderr
    assert json.loads((out / TUNE_MANIFEST).read_text())["training"]["resumed_from_step"] >= 2
    for name in ("adapter/adapter_model.safetensors", "model.safetensors"):
        resumed, reference = load_file(out / name), load_file(tuned / name)
        assert resumed.keys() == reference.keys()
        for key in reference:
            torch.testing.assert_close(resumed[key], reference[key], rtol=0, atol=1e-6, msg=f"{name} {key}")


def test_generate_with_the_tuned_model_records_it_in_the_run_manifest(tuned, tmp_path):
    run = tmp_path / "run"
    status = erc_synth(["generate", "--benchmark", "meld", "--num-dialogues", "1", "--model", str(tuned),
                        "--out", str(run), "--prompt-version", "v2", "--label-format", "word_first",
                        "--max-attempts", "1", "--max-new-tokens", "48", "--no-progress", "--seed", "3"])
    assert status in (0, 1)  # a random tiny model may write a rejected dialogue; the run itself completes
    provenance = json.loads((run / "manifest.json").read_text())["provenance"]
    tuning = provenance["generator_tuning"]
    assert tuning == tuning_provenance(str(tuned))
    assert tuning["tuned"] is True and tuning["benchmark"] == "meld" and tuning["train_split"] == "train"
    import hashlib

    assert tuning["tune_manifest_sha256"] == hashlib.sha256((tuned / TUNE_MANIFEST).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def local_hub(tmp_path_factory) -> LocalHub:
    yield from start_local_hub(tmp_path_factory)


def test_push_refuses_an_iemocap_tuned_generators_set_without_the_rights_flag(tiny_base, shared_data, tmp_path,
                                                                             local_hub):
    gen = tmp_path / "gen-iemocap"
    done = subprocess.run(_tune_cli(tiny_base, shared_data, gen, "iemocap", ["--max-dialogues", "2",
                                                                             "--max-steps", "1"]),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    run = make_run_dir(tmp_path / "run", "iemocap", "natural", n=24)
    store = RunStore.create_or_open(run, settings_for("iemocap", "natural", 24))
    store.update_provenance(generator_tuning=tuning_provenance(str(gen)))  # what generate records
    built = tmp_path / "iemocap-synth-natural"
    assert erc_synth(["build", str(run), "--out", str(built)]) == 0
    card = (built / "README.md").read_text()
    assert "fine-tuned on the iemocap train split" in card and "do not redistribute its text" in card

    refused = local_hub.cli("push", str(built), "--repo", "org/iemocap-synth-natural", cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip().count("\n") == 0 and "--i-hold-iemocap-rights" in refused.stderr
    assert local_hub.stats().get("commits", 0) == 0
    allowed = local_hub.cli("push", str(built), "--repo", "org/iemocap-synth-natural", "--i-hold-iemocap-rights",
                            cwd=tmp_path)
    assert allowed.returncode == 0, allowed.stderr
    assert "new commit" in allowed.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--benchmark", "nope"], "--benchmark 'nope': unknown"),
    (["--real-data", "/nonexistent/folder"], "--real-data /nonexistent/folder: no such folder"),
    (["--lora-r", "0"], "--lora-r must be an integer in [1, 4096], got 0"),
    (["--learning-rate", "-1"], "--learning-rate must be a number in (0, 10], got -1.0"),
    (["--max-dialogues", "0"], "--max-dialogues must be an integer in [1, 10000000], got 0"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, shared_data, tmp_path, capsys):
    base = ["tune-generator", "--benchmark", "meld", "--real-data", str(shared_data), "--out", str(tmp_path / "g")]
    assert erc_synth(base + args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_base_model_that_is_not_a_causal_lm_is_refused(shared_data, tmp_path, capsys):
    from transformers import BertConfig, BertForSequenceClassification, CLIPVisionConfig

    BertForSequenceClassification(BertConfig(vocab_size=10, hidden_size=8, num_hidden_layers=1, num_attention_heads=1,
                                             intermediate_size=8)).save_pretrained(tmp_path / "bert")
    CLIPVisionConfig(hidden_size=8, intermediate_size=8, num_hidden_layers=1,
                     num_attention_heads=1).save_pretrained(tmp_path / "vision")
    capsys.readouterr()  # the save's progress bar
    for folder, message in ((tmp_path / "bert", "its weights are a BertForSequenceClassification, not a causal LM"),
                            (tmp_path / "vision", "model type 'clip_vision_model' is not a causal LM"),
                            (tmp_path, "not a model folder (no config.json)")):
        status = erc_synth(["tune-generator", "--benchmark", "meld", "--real-data", str(shared_data), "--out",
                            str(tmp_path / "g"), "--base-model", str(folder), "--max-dialogues", "1"])
        err = capsys.readouterr().err
        assert status == 2 and message in err and err.count("\n") == 1


def test_the_embedded_smollm2_tunes_and_its_gen_dir_loads_as_a_plain_model(shared_data, tmp_path):
    """The default base: the dequantised GGUF cache, whose config still names the GGUF quantisation."""
    from transformers import AutoModelForCausalLM

    from erc_synth.generation.backends.embedded import EmbeddedModelMissing, embedded_model_path, file_sha256

    try:
        gguf_sha = file_sha256(embedded_model_path())
    except EmbeddedModelMissing as exc:
        pytest.skip(str(exc))
    out = tmp_path / "gen"
    status = erc_synth(["tune-generator", "--benchmark", "meld", "--real-data", str(shared_data), "--out", str(out),
                        "--max-dialogues", "2", "--max-steps", "1", "--batch-size", "1", "--device", "cpu"])
    assert status == 0
    manifest = json.loads((out / TUNE_MANIFEST).read_text())
    assert manifest["base_model"] == "embedded:smollm2-135m-instruct" and manifest["base_model_sha256"] == gguf_sha
    assert "quantization_config" not in json.loads((out / "config.json").read_text())
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.num_hidden_layers == 30 and not getattr(model, "is_quantized", False)
