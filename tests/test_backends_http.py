"""The tgi and openai clients against a real TGI/OpenAI-protocol server process: wire format, seeds, faults."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter

import httpx2
import pytest
from helpers.servers import process
from helpers.servers.process import free_port, tgi_server

from erc_synth.dataset_scripts.core.registry import get_benchmark
from erc_synth.dataset_scripts.run_store import RunStore
from erc_synth.generation.backends.base import GenerationRequest, Grammar, SamplingParams
from erc_synth.generation.backends.openai_compat import OpenAICompatBackend
from erc_synth.generation.backends.tgi import TgiBackend
from erc_synth.generation.engine import GenerationConfig, generate
from erc_synth.generation.grammar import dialogue_json_schema, dialogue_regex
from erc_synth.generation.parsing import ParsedDialogue, parse_dialogue
from erc_synth.generation.prompts import build_messages

pytestmark = pytest.mark.slow
tiny_lm_dir, tgi_url = process.tiny_lm_dir, process.tgi_url  # session fixtures, shared with other modules
MELD = get_benchmark("meld")
PARAMS = SamplingParams(max_new_tokens=120)
MESSAGES = build_messages(MELD, "natural", turns=(2, 4))


def _run(coro):
    return asyncio.run(coro)


async def _generate(backend, requests):
    try:
        return await backend.generate_batch(requests)
    finally:
        await backend.aclose()


def test_tgi_same_seed_same_raw_text_and_grammar_holds(tgi_url: str) -> None:
    grammar = Grammar("regex", dialogue_regex(list(MELD.speakers), MELD.num_labels, 2, 4, max_utterance_chars=60))
    requests = [GenerationRequest(MESSAGES, seed=seed, params=PARAMS, grammar=grammar) for seed in (7, 7, 8)]
    backend = TgiBackend([tgi_url], chat_format="chatml")
    info = _run(backend.info())
    assert info.model_id == "erc-synth/tiny-lm" and info.server_version and len(info.model_sha) == 64
    first, again, other = _run(_generate(backend, requests))
    assert first.text == again.text != other.text
    assert first.finish_reason in ("eos_token", "length") and first.generated_tokens > 0
    line = rf"({'|'.join(MELD.speakers)}): [^\n()]+ \([0-6]\)"
    for result in (first, other):
        # A clean stop is a whole grammar-valid dialogue; a cut-off one is a valid dialogue's prefix.
        complete = result.finish_reason == "eos_token"
        lines = result.text.split("\n") if complete else result.text.split("\n")[:-1]
        assert all(re.fullmatch(line, text) for text in lines), result.text
        assert not complete or isinstance(parse_dialogue(result.text, MELD, min_turns=2, max_turns=4), ParsedDialogue)


def test_tgi_wire_format_generate_stream_and_info(tgi_url: str) -> None:
    from huggingface_hub import InferenceClient

    body = {"inputs": "Joey:", "parameters": {"seed": 3, "max_new_tokens": 12, "details": True, "do_sample": True,
                                              "temperature": 0.7}}
    native = httpx2.post(f"{tgi_url}/generate", json=body, timeout=60).json()
    assert set(native["details"]) >= {"finish_reason", "generated_tokens", "seed"} and native["details"]["seed"] == 3
    client = InferenceClient(model=tgi_url)
    events = list(client.text_generation("Joey:", seed=3, max_new_tokens=12, temperature=0.7, stream=True,
                                         details=True))
    assert "".join(e.token.text for e in events) == native["generated_text"] == events[-1].generated_text
    assert events[-1].details.finish_reason == native["details"]["finish_reason"]
    invalid = httpx2.post(f"{tgi_url}/generate", json={"inputs": "x", "parameters": {"top_p": 1.0}}, timeout=30)
    assert invalid.status_code == 422 and invalid.json()["error_type"] == "validation"


def test_openai_backend_seeded_json_schema_dialogues(tgi_url: str) -> None:
    schema = dialogue_json_schema(list(MELD.speakers), MELD.num_labels, 2, 3, max_utterance_chars=8)
    requests = [GenerationRequest(MESSAGES, seed=seed, params=SamplingParams(max_new_tokens=400),
                                  grammar=Grammar("json_schema", schema)) for seed in (11, 11)]
    backend = OpenAICompatBackend([tgi_url])
    assert _run(backend.info()).model_id == "erc-synth/tiny-lm"
    assert backend.server_kind == "tgi" and backend.grammar_kind == "json_schema"  # detected from /info
    assert backend.applied().record(True)["sampling"] == {
        "seed": True, "temperature": True, "top_p": True, "max_new_tokens": True, "stop": True,
        "top_k": False, "typical_p": False, "repetition_penalty": False, "min_p": False}  # TGI's Messages API has none
    first, again = _run(_generate(backend, requests))
    assert first.text == again.text and first.finish_reason == "stop"
    data = json.loads(first.text)
    assert 2 <= len(data["turns"]) <= 3 and all(t["speaker"] in MELD.speakers for t in data["turns"])


def _config(out, url, **overrides) -> GenerationConfig:
    values = dict(benchmark="meld", mode="balanced", num_dialogues=120, seed=5, out=out, backend="tgi",
                  endpoints=[url], chat_format="raw", concurrency=8, retry_base_delay=0.01, retry_max_delay=0.05,
                  max_retries=12, request_timeout=0.5, sampling=PARAMS)
    values.update(overrides)
    return GenerationConfig(**values)


def test_faults_at_20_percent_the_run_completes_with_every_index_once(tmp_path) -> None:
    server = tgi_server(None, "--instant", "--fault-rate", "0.2", "--fault-seed", "4", "--fault-delay-s", "1.5",
                        log_path=tmp_path / "server.log")
    with server:
        report = generate(_config(tmp_path / "run", server.url), progress=False)
        injected = httpx2.get(f"{server.url}/faults", timeout=10).json()
    assert set(injected) == {"reset", "delay", "500", "429"}, injected
    assert report.status == "complete" and report.accepted == 120 and report.retried >= sum(injected.values()) - 8
    records = RunStore.open(tmp_path / "run").records()
    assert Counter(r["index"] for r in records) == Counter(range(120))  # every index exactly once
    assert all(r["status"] == "accepted" for r in records)


def test_non_retryable_server_error_stops_the_run_and_keeps_nothing_half_done(tmp_path) -> None:
    with tgi_server(None, "--instant", "--reject-field", "seed") as server:  # every request refused with a 400
        config = _config(tmp_path / "run", server.url, backend="openai", chat_format="auto", grammar=False,
                         num_dialogues=5)
        report = generate(config, progress=False)
    assert report.status == "stopped" and "HTTP 400" in report.error and report.retried == 0
    assert RunStore.open(tmp_path / "run").records() == []


def test_refused_connections_stop_cleanly_and_the_rerun_resumes(tmp_path) -> None:
    port = free_port()
    server = tgi_server(None, "--instant", "--instant-latency-s", "0.01", port=port).start()
    out = tmp_path / "run"
    config = _config(out, server.url, num_dialogues=300, concurrency=2, max_retries=3)
    reports = []
    runner = threading.Thread(target=lambda: reports.append(generate(config, progress=False)))
    runner.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len((out / "records.jsonl").read_bytes().splitlines()
                                                 if (out / "records.jsonl").exists() else []) < 30:
        time.sleep(0.02)
    server.proc.kill()  # the port now refuses connections
    server.proc.wait()
    runner.join(60)
    stopped = reports[0]
    assert stopped.status == "stopped" and 30 <= stopped.accepted < 300
    assert "consecutive server faults" in stopped.error
    with tgi_server(None, "--instant", port=port) as again:
        resumed = generate(_config(out, again.url, num_dialogues=300, concurrency=2, max_retries=3), progress=False)
    assert resumed.status == "complete" and resumed.finished_now == 300 - stopped.accepted
    assert Counter(r["index"] for r in RunStore.open(out).records()) == Counter(range(300))


def test_a_server_refusing_the_structured_output_field_is_one_line_naming_server_and_field(tmp_path) -> None:
    with tgi_server(None, "--instant", "--reject-field", "structured_outputs") as server:
        done = subprocess.run(
            [sys.executable, "-m", "erc_synth.cli", "generate", "--benchmark", "meld", "--num-dialogues", "2",
             "--backend", "openai", "--server", "vllm", "--endpoint", server.url, "--out", str(tmp_path / "run"),
             "--no-progress"],
            capture_output=True, text=True, timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"vllm server at {server.url}" in lines[0] and "'structured_outputs'" in lines[0]
    assert "Unrecognized request argument supplied: structured_outputs" in lines[0]
    assert RunStore.open(tmp_path / "run").records() == []  # no rejected record blames the model for it
