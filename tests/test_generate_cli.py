"""``erc-synth generate`` / ``inspect`` end to end: each backend protocol yields a resumable RUN_DIR (slow tier,
real servers and models); a SIGKILLed run resumes byte-identical, and an unreachable server is one line."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from helpers.fake_backend import FakeBackend
from helpers.servers import process

from erc_synth.cli import main
from erc_synth.dataset_scripts.run_store import RunStore
from erc_synth.generation.engine import GenerationConfig, generate

TESTS_DIR = Path(__file__).resolve().parent
tiny_lm_dir, tgi_url = process.tiny_lm_dir, process.tgi_url  # session fixtures, shared with other modules


def _args(out: Path, *backend: str, num: int = 6, seed: int = 13, mode: str = "balanced") -> list[str]:
    return ["generate", "--benchmark", "meld", "--mode", mode, "--num-dialogues", str(num),
            "--seed", str(seed), "--out", str(out), "--turns", "2", "5", "--max-new-tokens", "160",
            "--max-utterance-chars", "60", "--no-progress", *backend]  # backend last: its options override


def _accepted(out: Path) -> list[tuple]:
    return [(r["index"], r["seed"], r["target_emotion"], r["raw_text"], tuple(r["emotions"]))
            for r in RunStore.open(out).accepted()]


def _check_resumable(out: Path, args: list[str], capsys) -> None:
    assert main(args) == 0
    first = (out / "records.jsonl").read_bytes()
    accepted = _accepted(out)
    assert [a[0] for a in accepted] == list(range(6))
    if "balanced" in args:
        assert [a[2] for a in accepted] == [i % 7 for i in range(6)]  # balanced targets cycle through the labels
        assert all(a[2] in a[4] for a in accepted)  # and each accepted dialogue carries its target
    assert main(args) == 0  # resuming a finished run adds nothing
    assert (out / "records.jsonl").read_bytes() == first
    capsys.readouterr()
    assert main(["inspect", str(out)]) == 0
    assert "accepted 6/6 dialogues" in capsys.readouterr().out
    assert main([*args, "--temperature", "0.9"]) == 2  # other settings: refused, nothing touched
    assert "other settings" in capsys.readouterr().err
    assert (out / "records.jsonl").read_bytes() == first


@pytest.mark.slow
def test_tgi_backend_cli_run_is_resumable(tgi_url: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "tgi"
    _check_resumable(out, _args(out, "--backend", "tgi", "--endpoint", tgi_url, "--chat-format", "chatml"), capsys)
    assert RunStore.open(out).provenance["server_version"].endswith("erc-synth-test")


@pytest.mark.slow
def test_openai_backend_cli_run_is_resumable(tgi_url: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "openai"
    # JSON costs more tokens than the line format, and the tiny model never saw it: more room, shorter lines
    _check_resumable(out, _args(out, "--backend", "openai", "--endpoint", tgi_url, "--max-new-tokens", "400",
                                "--max-utterance-chars", "20", "--max-attempts", "12"), capsys)
    assert all(r["raw_text"].lstrip().startswith("{") for r in RunStore.open(out).accepted())  # JSON schema


@pytest.mark.slow
def test_transformers_backend_cli_run_is_resumable(tiny_lm_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "inproc"
    # natural mode: one grammar to compile in this process instead of one per balanced target
    _check_resumable(out, _args(out, "--backend", "transformers", "--model", str(tiny_lm_dir), "--device", "cpu",
                                "--batch-size", "6", mode="natural"), capsys)


_FAKE_RUN = textwrap.dedent("""
    import sys
    from helpers.fake_backend import FakeBackend
    from erc_synth.generation.engine import GenerationConfig, generate
    config = GenerationConfig(benchmark="meld", mode="balanced", num_dialogues=40, seed=5, out=sys.argv[1],
                              backend="fake", turns=(2, 4), concurrency=2)
    generate(config, backend=FakeBackend(mode="balanced", delay=float(sys.argv[2])), progress=False)
""")


def _fake_run(out: Path, delay: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-c", _FAKE_RUN, str(out), str(delay)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_sigkilled_run_resumed_equals_uninterrupted_run(tmp_path: Path) -> None:
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    proc = _fake_run(killed, 0.02)
    records = killed / "records.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if records.exists() and len(records.read_bytes().splitlines()) >= 5:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = RunStore.open(killed).accepted()
    assert 0 < len(partial) < 40, "the kill must land part way through the run"
    for out in (killed, clean):  # resume the killed run; make a clean one; in separate processes, as a user would
        finished = _fake_run(out, 0.0)
        assert finished.wait(timeout=120) == 0, finished.stderr.read()
    assert RunStore.open(killed).raw_records() == RunStore.open(clean).raw_records()
    indices = [r.index for r in RunStore.open(killed).records() if r.is_accepted]
    assert sorted(indices) == list(range(40))  # nothing duplicated by the resume


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("backend", ["tgi", "openai"])
def test_an_unreachable_endpoint_is_one_line_exit_3_and_leaves_no_run_dir(backend: str, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "erc_synth.cli", *_args(out, "--backend", backend, "--endpoint", url)],
                          capture_output=True, text=True, timeout=120)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 3, done.stderr
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert f"could not reach {url}" in lines[0]
    assert "rerun" in lines[0]
    assert not out.exists()


def test_inspect_shows_a_grown_run_history(tmp_path: Path, capsys) -> None:
    for count in (3, 5):
        config = GenerationConfig(benchmark="meld", mode="balanced", num_dialogues=count, seed=5,
                                  out=tmp_path / "run", backend="fake", turns=(2, 4))
        generate(config, backend=FakeBackend(mode="balanced"), progress=False)
    assert main(["inspect", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "accepted 5/5 dialogues" in out
    assert "grown: 3 (" in out and ") -> 5 (" in out
