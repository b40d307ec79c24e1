"""``erc-synth generate`` / ``inspect`` end to end: each backend yields a resumable RUN_DIR; SIGKILL then resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.servers import process

from erc_synth.cli import main
from erc_synth.dataset_scripts.run_store import RunStore

pytestmark = pytest.mark.slow
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


def test_tgi_backend_cli_run_is_resumable(tgi_url: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "tgi"
    _check_resumable(out, _args(out, "--backend", "tgi", "--endpoint", tgi_url, "--chat-format", "chatml"), capsys)
    assert RunStore.open(out).provenance["server_version"].endswith("erc-synth-test")


def test_openai_backend_cli_run_is_resumable(tgi_url: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "openai"
    # JSON costs more tokens than the line format, and the tiny model never saw it: more room, shorter lines
    _check_resumable(out, _args(out, "--backend", "openai", "--endpoint", tgi_url, "--max-new-tokens", "400",
                                "--max-utterance-chars", "20", "--max-attempts", "12"), capsys)
    assert all(r["raw_text"].lstrip().startswith("{") for r in RunStore.open(out).accepted())  # JSON schema


def test_transformers_backend_cli_run_is_resumable(tiny_lm_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "inproc"
    # natural mode: one grammar to compile in this process instead of one per balanced target
    _check_resumable(out, _args(out, "--backend", "transformers", "--model", str(tiny_lm_dir), "--device", "cpu",
                                "--batch-size", "6", mode="natural"), capsys)


def test_sigkilled_run_resumed_equals_uninterrupted_run(tgi_url: str, tmp_path: Path) -> None:
    backend = ["--backend", "tgi", "--endpoint", tgi_url, "--chat-format", "chatml", "--concurrency", "2"]
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(process.REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "erc_synth.cli", *_args(killed, *backend, num=14)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = killed / "records.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if records.exists() and len(records.read_bytes().splitlines()) >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = _accepted(killed)
    assert 0 < len(partial) < 14, "the kill must land part way through the run"
    assert main(_args(killed, *backend, num=14)) == 0
    assert main(_args(clean, *backend[:-2], "--concurrency", "5", num=14)) == 0
    assert _accepted(killed) == _accepted(clean)
    indices = [r["index"] for r in RunStore.open(killed).records() if r["status"] == "accepted"]
    assert sorted(indices) == list(range(14))  # nothing duplicated by the resume
