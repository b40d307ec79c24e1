"""The Hub token stays with the Hub: no generation server, and no ``llm`` judge's server, receives it.

A real TGI/OpenAI-protocol server over the tiny test LM logs the ``Authorization`` header of every request; the
real console script runs ``generate`` (tgi and openai backends) and ``audit --judge llm:...`` against it with a
Hub token set both ways a user sets one (``HF_TOKEN`` and the token file ``hf auth login`` writes). Without
``ERC_SYNTH_ENDPOINT_TOKEN`` no request carries a header; with it, every request carries exactly that token.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.servers.process import tgi_server, tiny_lm_dir  # noqa: F401  (session fixture)

from erc_synth.dataset_scripts.core.registry import get_benchmark
from erc_synth.dataset_scripts.schema import dialogues_dataset

pytestmark = pytest.mark.slow
HUB_TOKEN = "hf_userHubWriteTokenThatMustNotLeak"
ENDPOINT_TOKEN = "endpoint-token-for-my-own-server"


@pytest.fixture(scope="module")
def logging_server(tiny_lm_dir: Path, tmp_path_factory):  # noqa: F811
    folder = tmp_path_factory.mktemp("header-log")
    log = folder / "headers.jsonl"
    with tgi_server(tiny_lm_dir, "--log-headers", str(log), log_path=folder / "server.log") as server:
        yield server.url, log


def _env(tmp: Path, *, endpoint_token: str | None) -> dict[str, str]:
    hf_home = tmp / "hf-home"
    hf_home.mkdir(exist_ok=True)
    (hf_home / "token").write_text(HUB_TOKEN)  # what `hf auth login` leaves behind
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "ERC_SYNTH_ENDPOINT_TOKEN")}
    env.update({"HF_TOKEN": HUB_TOKEN, "HF_HOME": str(hf_home), "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"})
    if endpoint_token is not None:
        env["ERC_SYNTH_ENDPOINT_TOKEN"] = endpoint_token
    return env


def _generate(tmp: Path, url: str, backend: str) -> list[str]:
    extra = ["--chat-format", "chatml"] if backend == "tgi" else []
    return ["generate", "--benchmark", "meld", "--num-dialogues", "1", "--max-attempts", "1", "--max-new-tokens",
            "24", "--backend", backend, "--endpoint", url, "--out", str(tmp / f"run-{backend}"), "--no-progress",
            *extra]


def _audit(tmp: Path, url: str, backend: str) -> list[str]:
    meld = get_benchmark("meld")
    folder = tmp / "meld-set"
    if not folder.exists():
        (folder / "data" / "dialogues").mkdir(parents=True)
        rows = [{"dialogue_id": "d0", "speakers": ["Ross", "Rachel"], "utterances": ["Hi.", "Oh no!"],
                 "emotions": [0, 3]}]
        dialogues_dataset(meld, rows).to_parquet(str(folder / "data" / "dialogues" / "test-00000-of-00001.parquet"))
    judge = f"llm:tgi@{url}#chatml" if backend == "tgi" else f"llm:openai:erc-synth/tiny-lm@{url}"
    return ["audit", str(folder), "--benchmark", "meld", "--judge", judge, "--cache-dir",
            str(tmp / f"cache-{backend}"), "--out", str(tmp / f"audit-{backend}")]


COMMANDS = {"generate-tgi": (_generate, "tgi"), "generate-openai": (_generate, "openai"),
            "audit-llm-tgi": (_audit, "tgi"), "audit-llm-openai": (_audit, "openai")}


def _headers_sent(logging_server, tmp: Path, command: str, endpoint_token: str | None) -> list[dict]:
    url, log = logging_server
    log.write_text("")
    build, backend = COMMANDS[command]
    done = subprocess.run([sys.executable, "-m", "erc_synth.cli", *build(tmp, url, backend)], capture_output=True,
                          text=True, env=_env(tmp, endpoint_token=endpoint_token), timeout=300)
    assert done.returncode in (0, 1), done.stderr  # 1: the one dialogue may be rejected; the requests were sent
    requests = [json.loads(line) for line in log.read_text().splitlines()]
    assert any(r["method"] == "POST" for r in requests), requests  # generation requests reached the server
    return requests


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_no_request_carries_the_hub_token(logging_server, tmp_path: Path, command: str) -> None:
    requests = _headers_sent(logging_server, tmp_path, command, endpoint_token=None)
    assert [r for r in requests if r["authorization"] is not None] == []


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_the_explicit_endpoint_token_is_the_one_sent(logging_server, tmp_path: Path, command: str) -> None:
    requests = _headers_sent(logging_server, tmp_path, command, endpoint_token=ENDPOINT_TOKEN)
    assert {r["authorization"] for r in requests} == {f"Bearer {ENDPOINT_TOKEN}"}


def test_an_endpoint_token_that_is_no_header_value_is_one_line(tmp_path: Path) -> None:
    env = {**_env(tmp_path, endpoint_token="two words"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "erc_synth.cli", *_generate(tmp_path, "http://127.0.0.1:9", "tgi")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "ERC_SYNTH_ENDPOINT_TOKEN" in done.stderr and "two words" not in done.stderr
