"""One writer per RUN_DIR, proven with real processes: a second writer is refused with the holder's PID, a
killed holder's lock never blocks, and two racing ``generate`` commands store every index once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from helpers.servers.process import tgi_server

from erc_synth.dataset_scripts.run_store import LOCK, RunDirLocked, RunStore

SETTINGS = {"benchmark": "meld", "mode": "natural", "num_dialogues": 2}
HOLD = """
import sys, time
from erc_synth.dataset_scripts.run_store import RunStore
RunStore.create_or_open(sys.argv[1], {"benchmark": "meld", "mode": "natural", "num_dialogues": 2})
print("holding", flush=True)
time.sleep(120)
"""


def _holder(run_dir: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "holding"
    return proc


def _generate(run_dir: Path, url: str, count: int = 2) -> list[str]:
    return [sys.executable, "-m", "erc_synth.cli", "generate", "--benchmark", "meld", "--num-dialogues", str(count),
            "--backend", "tgi", "--endpoint", url, "--chat-format", "raw", "--concurrency", "1", "--out",
            str(run_dir), "--no-progress"]


def test_a_second_writer_process_is_one_line_naming_the_holders_pid(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    holder = _holder(run_dir)
    try:
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        done = subprocess.run(_generate(run_dir, "http://127.0.0.1:9"), capture_output=True, text=True, env=env,
                              timeout=120)
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert done.returncode == 2 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
        assert f"{run_dir.resolve()} is being written by another process (PID {holder.pid})" in lines[0]
        assert "rerun the same command" in lines[0]
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_of_a_killed_holder_never_blocks(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    holder = _holder(run_dir)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (run_dir / LOCK).read_text().strip() == str(holder.pid)  # the stale file is still there
    RunStore.create_or_open(run_dir, SETTINGS)  # and blocks nothing
    assert (run_dir / LOCK).read_text().strip() == str(os.getpid())


def test_one_process_reopens_its_own_run_dir_and_a_live_other_holder_refuses_it(tmp_path: Path) -> None:
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    RunStore.create_or_open(mine, SETTINGS)
    RunStore.create_or_open(mine, SETTINGS)  # the same process holds the lock already: no self-deadlock
    holder = _holder(theirs)
    try:
        with pytest.raises(RunDirLocked, match=f"PID {holder.pid}"):
            RunStore.create_or_open(theirs, SETTINGS)
        assert RunStore.open(theirs).settings == SETTINGS  # readers take no lock
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.slow
def test_two_racing_generate_commands_store_every_index_once(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    env = {**os.environ, "TQDM_DISABLE": "1"}
    with tgi_server(None, "--instant", "--instant-latency-s", "0.2", log_path=tmp_path / "server.log") as server:
        first = subprocess.Popen(_generate(run_dir, server.url, count=20), env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while not (run_dir / "manifest.json").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        second = subprocess.run(_generate(run_dir, server.url, count=20), env=env, capture_output=True, text=True,
                                timeout=120)
        assert first.wait(timeout=300) == 0, first.stderr.read()
    assert second.returncode == 2 and f"(PID {first.pid})" in second.stderr, second.stderr
    records = RunStore.open(run_dir).records()
    assert Counter(r.index for r in records) == Counter(range(20))  # nothing requested or stored twice
