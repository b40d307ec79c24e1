"""A disk that fills up during ``build`` or ``train``: one line on stderr, exit 3, nothing half-written published.

The disk is real: a 2 MiB tmpfs mounted for the test and filled with a file until a few KiB are left, so the
writes of the real console script fail with ENOSPC where they would on a full disk. Mounting needs root (the
CI container runs as root); elsewhere the tests skip and say so.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.builder_support import make_run_dir

SCRIPT = Path(sys.executable).with_name("erc-synth")


@pytest.fixture
def small_disk(tmp_path: Path):
    """A mounted 2 MiB tmpfs; ``fill(free_kib)`` leaves about ``free_kib`` KiB free on it."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'mount failed'}); needs root")

    def fill(free_kib: int) -> Path:
        stats = os.statvfs(mount)
        size = stats.f_bavail * stats.f_frsize - free_kib * 1024
        with open(mount / "filler", "wb") as fh:
            fh.write(b"\0" * size)
        return mount

    yield fill
    subprocess.run(["umount", str(mount)], check=True)


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([str(SCRIPT), *argv], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


def _error_lines(stderr: str, command: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"erc-synth {command}: error:")]


@pytest.mark.slow
def test_build_onto_a_full_disk_exits_3_and_publishes_nothing(small_disk, tmp_path: Path) -> None:
    run_dir = make_run_dir(tmp_path / "run", "meld", "natural", n=6, plant_duplicates=False)
    disk = small_disk(16)
    done = _run(["build", str(run_dir), "--out", str(disk / "out")], tmp_path)
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    assert [line for line in done.stderr.splitlines() if line.strip()] == _error_lines(done.stderr, "build")
    assert "No space left on device" in done.stderr
    assert sorted(p.name for p in disk.iterdir()) == ["filler"]  # no out/, no stage left behind


@pytest.mark.slow
def test_train_onto_a_full_disk_exits_3_and_publishes_no_model(small_disk, tmp_path: Path) -> None:
    from datasets import DatasetDict
    from helpers.tiny_encoders import TOY_WORDS, build_encoder, toy_dialogues, write_built_folder

    from erc_synth.dataset_scripts.core.registry import get_benchmark

    meld = get_benchmark("meld")
    encoder = build_encoder(tmp_path / "encoder", TOY_WORDS, "bert")
    real = write_built_folder(DatasetDict(train=toy_dialogues(meld, 12, 1), validation=toy_dialogues(meld, 4, 2),
                                          test=toy_dialogues(meld, 4, 3)), tmp_path / "real")
    disk = small_disk(100)
    done = _run(["train", "--arch", "compm", "--encoder", str(encoder), "--benchmark", "meld", "--real-data",
                 str(real), "--out", str(disk / "out"), "--epochs", "1", "--batch-size", "8", "--max-length", "32",
                 "--option", "max_memory_utterances=2", "--option", "max_memory_length=8"], tmp_path)
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    errors = _error_lines(done.stderr, "train")
    assert len(errors) == 1, done.stderr  # the libraries' own notes may precede it; the error is one line
    assert "No space left on device" in errors[0] and "no model was published" in errors[0]
    assert not (disk / "out" / "model").exists()
    assert not list((disk / "out").glob(".model-*"))
