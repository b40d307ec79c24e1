"""Workers sharing one output folder: real ``erc-synth experiment --worker`` processes on a tiny encoder.

Each worker is the console script in its own process, as on a node of a cluster; they coordinate only through
claim files in the shared folder. Short heartbeat and expiry settings make a dead worker's claim expire in
seconds instead of minutes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from datasets import DatasetDict
from helpers.tiny_encoders import TOY_WORDS, build_encoder, toy_dialogues, write_built_folder

from erc_synth.classifiers.experiment import ExperimentConfig
from erc_synth.dataset_scripts.core.registry import get_benchmark

MELD = get_benchmark("meld")
FAST_CLAIMS = ["--heartbeat", "0.2", "--claim-expiry", "3"]
TRAINING = re.compile(r"\] (\S+): training")
FINISHED = re.compile(r"\] (\S+): real test weighted F1")


@pytest.fixture(scope="module")
def grid_config(tmp_path_factory) -> Path:
    """Six cells (EmoBERTa-style, org and nat, three seeds) on toy MELD-shaped data and a tiny encoder."""
    root = tmp_path_factory.mktemp("grid")
    encoder = build_encoder(root / "encoder", TOY_WORDS, "roberta")
    real = write_built_folder(DatasetDict(train=toy_dialogues(MELD, 24, 1), validation=toy_dialogues(MELD, 6, 2),
                                          test=toy_dialogues(MELD, 6, 3)), root / "real")
    natural = write_built_folder(DatasetDict(train=toy_dialogues(MELD, 24, 4), test=toy_dialogues(MELD, 6, 5)),
                                 root / "meld-synth-natural")
    config = {
        "name": "workers-ci", "encoder": str(encoder), "architectures": ["emoberta"], "regimes": ["org", "nat"],
        "seeds": [0, 1, 2], "options": {"emoberta": {"max_length": 32}},
        "training": {"epochs": 2, "learning_rate": 1e-3, "batch_size": 8, "early_stopping_patience": None},
        "benchmarks": {"meld": {"real_data": str(real), "synthetic": {"natural": str(natural)}}},
    }
    path = root / "grid.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


class Worker:
    """One ``erc-synth experiment --worker`` process whose output is collected line by line as it comes."""

    def __init__(self, config: Path, out: Path, *extra: str) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "TQDM_DISABLE": "1",
               "HF_HUB_OFFLINE": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "erc_synth.cli", "experiment", str(config), "--out", str(out), "--worker",
             *FAST_CLAIMS, *extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: re.Pattern, timeout: float = 300) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if match := pattern.search(line):
                    return match
            if self.process.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern.pattern!r}; output:\n" + "\n".join(self.lines))

    def finish(self, timeout: float = 300) -> int:
        status = self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return status

    def keys(self, pattern: re.Pattern) -> list[str]:
        return [m.group(1) for line in self.lines if (m := pattern.search(line))]


def cell_files(out: Path) -> list[Path]:
    return sorted((out / "cells").rglob("*.json"))


@pytest.mark.slow  # worker processes train a grid
def test_two_workers_compute_every_cell_exactly_once(grid_config, tmp_path):
    out = tmp_path / "shared"
    keys = [cell.key for cell in ExperimentConfig.load(grid_config).cells()]
    first, second = Worker(grid_config, out), Worker(grid_config, out)  # both race for the same cells
    assert first.finish() == 0, "\n".join(first.lines)
    assert second.finish() == 0, "\n".join(second.lines)

    announced = [i for i, line in enumerate(first.lines) if "workers-ci: 6 cells, 0 done earlier, 6 to run" in line]
    first_training = next(i for i, line in enumerate(first.lines) if TRAINING.search(line))
    assert announced and announced[0] < first_training  # the grid's size is told before any training
    trained = Counter(first.keys(TRAINING) + second.keys(TRAINING))
    assert sorted(trained) == sorted(keys) and set(trained.values()) == {1}
    assert sorted(first.keys(FINISHED) + second.keys(FINISHED)) == sorted(keys)
    assert second.keys(TRAINING), "the second worker found no cell left: the test did not exercise sharing"
    assert [json.loads(p.read_text())["cell"] for p in cell_files(out)] == sorted(keys)
    long_rows = (out / "results_long.csv").read_text().strip().splitlines()
    assert len(long_rows) == 1 + len(keys) * 2  # header + real and synthetic_natural test sets per cell
    assert not list((out / "claims").rglob("gen-*"))  # every claim dropped
    assert not list(out.rglob(".*.tmp"))


@pytest.mark.slow  # worker processes train a grid
def test_a_killed_workers_cell_is_taken_over_and_finished(grid_config, tmp_path):
    out = tmp_path / "shared"
    keys = [cell.key for cell in ExperimentConfig.load(grid_config).cells()]
    victim = Worker(grid_config, out)
    victim.wait_for(FINISHED)  # one cell done ...
    deadline = time.monotonic() + 300
    while len(victim.keys(TRAINING)) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(victim.process.pid, signal.SIGKILL)  # ... and killed as soon as it starts the next one
    assert victim.finish() == -signal.SIGKILL
    lost_key = victim.keys(TRAINING)[1]
    assert not (out / "cells" / f"{lost_key}.json").exists(), "the victim finished its cell before the kill"
    assert list((out / "claims" / lost_key).glob("gen-000001"))  # its claim stays behind, its heartbeat stopped

    rescuer = Worker(grid_config, out)
    assert rescuer.finish() == 0, "\n".join(rescuer.lines)
    taken_over = [line for line in rescuer.lines if "taken over" in line]
    assert len(taken_over) == 1 and lost_key in taken_over[0] and "generation 2" in taken_over[0]

    finished = victim.keys(FINISHED) + rescuer.keys(FINISHED)
    assert sorted(finished) == sorted(keys)  # none missing, none finished twice
    assert lost_key not in victim.keys(FINISHED)
    assert [json.loads(p.read_text())["cell"] for p in cell_files(out)] == sorted(keys)
    assert not list((out / "claims").rglob("gen-*"))
    assert (out / "main_table.md").is_file()


def test_progress_bar_shows_the_grids_estimated_total_once_a_cell_is_done():
    import io

    from tqdm import tqdm

    from erc_synth.classifiers.workers import _estimate

    bar = tqdm(total=10, initial=2, file=io.StringIO(), mininterval=0)
    _estimate(bar, completed_here=0)
    assert not bar.postfix  # nothing finished yet: no estimate
    bar.start_t -= 60  # two cells took a minute, so the six left take three: four minutes in all
    bar.n = 4
    _estimate(bar, completed_here=2)
    assert bar.postfix == "grid total ~04:00"


@pytest.mark.slow  # worker processes train a grid
def test_workers_2_starts_two_processes_that_share_the_grid(grid_config, tmp_path):
    out = tmp_path / "local"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "erc_synth.cli", "experiment", str(grid_config), "--out", str(out),
                           "--workers", "2", *FAST_CLAIMS], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "workers-ci: 6 cells, 0 done earlier, 6 to run, 2 workers on CPU" in done.stdout
    trained = [line for line in done.stdout.splitlines() if TRAINING.search(line)]
    assert sorted(TRAINING.search(line).group(1) for line in trained) == sorted(
        cell.key for cell in ExperimentConfig.load(grid_config).cells())
    assert {line.split("]")[0] for line in trained} <= {"[worker 0", "[worker 1"}
    assert len(cell_files(out)) == 6 and (out / "main_table.md").is_file()
    assert f"main_md: {out / 'main_table.md'}" in done.stdout


@pytest.mark.slow  # worker processes train a grid
def test_a_terminated_worker_drops_its_claim_at_once(grid_config, tmp_path):
    out = tmp_path / "shared"
    worker = Worker(grid_config, out)
    worker.wait_for(TRAINING)
    worker.process.send_signal(signal.SIGTERM)  # a SLURM preemption, mid-cell
    assert worker.finish() == 128 + signal.SIGTERM
    assert not list((out / "claims").rglob("gen-*"))  # released, not left to expire
    successor = Worker(grid_config, out)
    assert successor.finish() == 0, "\n".join(successor.lines)
    assert not [line for line in successor.lines if "taken over" in line]
    assert len(cell_files(out)) == 6
