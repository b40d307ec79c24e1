"""Rows reported as they finish: the in-process backend's stream, and a run killed in the middle of one call.

The tiny Llama stands in for the embedded model (same backend, same engine, same store); a real process is
killed with SIGKILL while its only backend call is decoding, and the rerun must complete the run with the
records an uninterrupted run stores.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers.servers.tiny_lm import tiny_lm_dir  # noqa: F401  (session fixture)

from erc_synth.dataset_scripts.run_store import RunStore
from erc_synth.generation.backends.base import GenerationRequest, SamplingParams
from erc_synth.generation.backends.transformers_backend import TransformersBackend
from erc_synth.generation.engine import GenerationConfig, generate

LONG = SamplingParams(temperature=1.0, top_k=0, top_p=1.0, typical_p=1.0, max_new_tokens=60, stop=())
SHORT = SamplingParams(temperature=1.0, top_k=0, top_p=1.0, typical_p=1.0, max_new_tokens=3, stop=())


@pytest.fixture(scope="module")
def backend(tiny_lm_dir) -> TransformersBackend:  # noqa: F811
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield TransformersBackend(tiny_lm_dir, batch_size=2, device="cpu")
    torch.set_num_threads(threads)


def _requests(params: list[SamplingParams]) -> list[GenerationRequest]:
    return [GenerationRequest(({"role": "user", "content": f"Write dialogue {i}."},), seed=7 + i, params=p)
            for i, p in enumerate(params)]


async def _collect(backend: TransformersBackend, requests: list[GenerationRequest], take: int | None = None):
    seen = []
    async with contextlib.aclosing(backend.stream_batch(requests)) as stream:
        async for position, result in stream:
            seen.append((position, result))
            if take is not None and len(seen) == take:
                break
    return seen


def test_the_stream_yields_each_row_when_it_finishes_with_the_text_of_the_whole_call(backend) -> None:
    requests = _requests([LONG, SHORT, LONG, SHORT, SHORT])
    streamed = asyncio.run(_collect(backend, requests))
    whole = asyncio.run(backend.generate_batch(requests))
    order = [position for position, _ in streamed]
    assert sorted(order) == [0, 1, 2, 3, 4]
    assert order[0] == 1  # the short row in the first two slots finishes first, while row 0 still decodes
    assert order.index(3) < order.index(0)  # row 3 took row 1's slot and finished before long row 0
    assert {p: r.text for p, r in streamed} == {p: r.text for p, r in enumerate(whole)}
    assert asyncio.run(_collect(backend, requests)) == streamed  # the finishing order is the call's, not timing's


def test_closing_the_stream_early_withdraws_the_unfinished_rows(backend) -> None:
    requests = _requests([LONG, SHORT, LONG, LONG, LONG, LONG])
    first = asyncio.run(_collect(backend, requests, take=1))
    assert [p for p, _ in first] == [1]
    after = asyncio.run(backend.generate_batch(requests[:1]))  # the decode thread serves the next call at once
    assert after[0].text == asyncio.run(backend.generate_batch(requests))[0].text


_CHILD = """
import json, sys
from erc_synth.generation.engine import GenerationConfig, generate
generate(GenerationConfig(**json.loads(sys.argv[1])), progress=False)
"""


def _config(out: Path, model: Path) -> dict:
    return {"benchmark": "meld", "mode": "natural", "num_dialogues": 10, "seed": 5, "out": str(out),
            "backend": "transformers", "model": str(model), "turns": [2, 4], "concurrency": 10, "max_attempts": 2,
            "sampling": {"max_new_tokens": 150}, "backend_options": {"batch_size": 2, "num_threads": 1}}


def _complete_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_a_run_killed_mid_call_keeps_its_finished_rows_and_resumes_to_the_same_records(
        tmp_path: Path, tiny_lm_dir: Path) -> None:  # noqa: F811
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    config = _config(killed, tiny_lm_dir)
    child = subprocess.Popen([sys.executable, "-c", _CHILD, json.dumps(config)],
                             env={**os.environ, "HF_HUB_OFFLINE": "1"})
    records = killed / "records.jsonl"
    deadline = time.monotonic() + 120
    while _complete_lines(records) < 2 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    kept = _complete_lines(records)
    # one backend call holds all ten requests: rows were stored while it ran, and its unfinished rows were lost
    assert child.returncode == -signal.SIGKILL
    assert 2 <= kept < 10
    before = records.read_bytes()[: records.read_bytes().rfind(b"\n") + 1]
    resumed = generate(GenerationConfig(**_config(killed, tiny_lm_dir)), progress=False)
    assert resumed.status in {"complete", "incomplete"} and resumed.finished_now >= 10 - kept
    assert records.read_bytes().startswith(before)
    generate(GenerationConfig(**_config(clean, tiny_lm_dir)), progress=False)
    assert RunStore.open(killed).raw_records() == RunStore.open(clean).raw_records()
