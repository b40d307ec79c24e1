"""A build is all or nothing, and its report is what push checks: a failed, killed or disk-starved rebuild leaves
the previous complete folder; identical builds are identical bytes; a folder changed after its build is refused."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from helpers.builder_support import make_run_dir

from erc_synth.dataset_scripts.core.errors import ErcSynthError
from erc_synth.hub_cards.folder import BUILD_REPORT_FILE, build_folder, verify_folder
from erc_synth.quality_reporter import ClassifierQualityReporter

CLI = [sys.executable, "-m", "erc_synth.cli"]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _siblings(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir() if p.name != folder.name and p.name.startswith("."))


def _cli_env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}


def test_a_failed_rebuild_leaves_the_previous_folder_byte_for_byte(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path / "run", "meld", "natural", n=20)
    out = tmp_path / "built" / "meld-synth-natural"
    build_folder(run, out)
    before = _snapshot(out)
    with pytest.raises(ErcSynthError, match="license"):  # other ratios, then a card the Hub would refuse
        build_folder(run, out, ratios=(0.5, 0.25, 0.25), license="friends-only")
    assert _snapshot(out) == before
    assert _siblings(out) == []  # no staging folder left behind
    verify_folder(out)


def test_identical_builds_are_identical_bytes_and_hold_no_local_path_or_time(tmp_path: Path) -> None:
    first = make_run_dir(tmp_path / "a" / "run", "meld", "balanced", n=20)
    second = make_run_dir(tmp_path / "b" / "elsewhere", "meld", "balanced", n=20)
    manifest = json.loads((second / "manifest.json").read_text())
    manifest["history"][0]["time"] = "2001-01-01T00:00:00+00:00"  # made at another time, same records
    (second / "manifest.json").write_text(json.dumps(manifest))
    build_folder(first, tmp_path / "one")
    build_folder(second, tmp_path / "two")
    one, two = _snapshot(tmp_path / "one"), _snapshot(tmp_path / "two")
    assert one == two
    report = one[BUILD_REPORT_FILE].decode()
    assert str(tmp_path) not in report and '"time"' not in report
    assert str(tmp_path) not in one["README.md"].decode()


def test_the_build_report_records_every_files_size_and_sha256(tmp_path: Path) -> None:
    import hashlib

    run = make_run_dir(tmp_path / "run", "emorynlp", "natural", n=12)
    build_folder(run, tmp_path / "out")
    report = json.loads((tmp_path / "out" / BUILD_REPORT_FILE).read_text())
    files = _snapshot(tmp_path / "out")
    assert set(report["file_digests"]) == set(files) - {BUILD_REPORT_FILE} == set(report["files"]) - {BUILD_REPORT_FILE}
    for name, digest in report["file_digests"].items():
        assert digest == {"size": len(files[name]), "sha256": hashlib.sha256(files[name]).hexdigest()}


def test_push_refuses_a_folder_changed_after_its_build_naming_the_file(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path / "run", "meld", "natural", n=20)
    out = tmp_path / "meld-synth-natural"
    build_folder(run, out)
    parquet = sorted((out / "data" / "utterances").glob("train-*.parquet"))[0]
    data = bytearray(parquet.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other bytes
    parquet.write_bytes(bytes(data))
    done = subprocess.run([*CLI, "push", str(out), "--repo", "someone/meld-synth-natural"], capture_output=True,
                          text=True, env={**_cli_env(), "HF_TOKEN": "hf_notUsedBecauseRefusedFirst"}, timeout=120)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"{parquet.relative_to(out).as_posix()} does not match build_report.json (sha256" in lines[0]


@pytest.mark.slow
def test_a_build_killed_at_any_moment_leaves_the_previous_folder_or_the_new_one(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path / "run", "meld", "natural", n=30)
    out = tmp_path / "meld-synth-natural"
    build_folder(run, out, quality_reporter=ClassifierQualityReporter())  # what the build command hands in
    previous = _snapshot(out)
    rebuilt = None
    for delay in (1.0, 2.5, 4.0, 6.0):
        proc = subprocess.Popen([*CLI, "build", str(run), "--out", str(out), "--ratios", "0.5,0.25,0.25"],
                                env=_cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        now = _snapshot(out)
        verify_folder(out)  # whole, whichever build it is
        assert now == previous or json.loads(now[BUILD_REPORT_FILE])["card"]["report"]["ratios"] == [0.5, 0.25, 0.25]
        rebuilt = rebuilt or now != previous
    done = subprocess.run([*CLI, "build", str(run), "--out", str(out)], env=_cli_env(), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert _snapshot(out) == previous and _siblings(out) == []  # a later build sweeps the killed ones' stages


@pytest.fixture
def small_disk(tmp_path: Path):
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    mount = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_is_one_line_exit_3_and_the_previous_folder_stays(tmp_path: Path, small_disk: Path) -> None:
    run = make_run_dir(tmp_path / "run", "meld", "natural", n=30)
    out = small_disk / "meld-synth-natural"
    build_folder(run, out)
    previous = _snapshot(out)
    filler = small_disk / "filler"
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    filler.write_bytes(b"\0" * max(0, free - 4096))  # a few KiB left: the staged rebuild cannot fit
    done = subprocess.run([*CLI, "build", str(run), "--out", str(out)], capture_output=True, text=True,
                          env=_cli_env(), timeout=300)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 3 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "No space left on device" in lines[0] and "nothing was replaced" in lines[0]
    assert _snapshot(out) == previous and _siblings(out) == []
