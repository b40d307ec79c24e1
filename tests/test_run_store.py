"""The run store: typed records, one summary, and durability (nothing reported durable is ever lost)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from helpers.builder_support import make_run_dir, settings_for

from erc_synth.dataset_scripts import run_store
from erc_synth.dataset_scripts.core.errors import RunDirError
from erc_synth.dataset_scripts.run_store import RunRecord, RunStore, RunStoreWriteError
from erc_synth.generation.run_report import format_summary, summarize_run


def _record(index: int, attempt: int = 0, status: str = "accepted", **extra) -> dict:
    base = {"index": index, "attempt": attempt, "seed": 1000 + index * 10 + attempt, "status": status,
            "target_emotion": None}
    if status == "accepted":
        base.update(speakers=["Ross", "Rachel"], utterances=[f"line {index}a", f"line {index}b"], emotions=[0, 3])
    else:
        base.update(reason="missing_label", detail="line 2")
    return {**base, **extra}


def _store(tmp_path: Path, n: int = 5, **settings) -> RunStore:
    return RunStore.create_or_open(tmp_path / "run", {**settings_for("meld", "natural", n), **settings})


def test_records_are_typed_and_round_trip_unchanged(tmp_path: Path) -> None:
    store = _store(tmp_path)
    written = [_record(1, note="a writer's own key"), _record(0, 1, "rejected"), _record(0)]
    store.append(written)
    records = store.records()
    assert [(r.index, r.attempt) for r in records] == [(0, 0), (0, 1), (1, 0)]
    assert all(isinstance(r, RunRecord) for r in records)
    assert records[2].utterances == ("line 1a", "line 1b")
    assert records[2].extra == {"note": "a writer's own key"}
    assert records[2]["emotions"] == [0, 3]  # the raw-dict view: the JSON form, lists included
    assert records[1].get("reason") == "missing_label"
    copy = RunStore.create_or_open(tmp_path / "copy", store.settings)
    copy.append(records)
    assert copy.records() == records


def test_summary_counts_each_figure_once(tmp_path: Path) -> None:
    store = _store(tmp_path, n=5, max_attempts=2, mode="balanced")
    store.append([
        _record(0, target_emotion=3),  # carries its target: 1 of its 2 utterances
        _record(1, 0, "rejected", target_emotion=1), _record(1, 1, target_emotion=1),  # target missing
        _record(2, 0, "rejected", target_emotion=2), _record(2, 1, "rejected", reason="too_few_turns",
                                                             target_emotion=2),
        _record(3, 0, "rejected", reason=None, target_emotion=3),
    ])
    summary = store.summary()
    assert summary.requested == 5
    assert summary.accepted == 2
    assert summary.exhausted == (2,)
    assert summary.failed == (2, 3)
    assert summary.unfinished == 2  # index 3 still has an attempt left, index 4 never ran
    assert summary.requests == 6
    assert summary.rejected_by_reason == {"missing_label": 2, "too_few_turns": 1, "unknown": 1}
    assert summary.label_counts == {0: 2, 3: 2}
    assert summary.targeted_dialogues == {1: 1, 3: 1}
    assert summary.target_hit_share == 0.5
    assert summary.target_utterance_share == 0.25
    assert not summary.complete


def test_inspect_report_reads_the_summary(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path / "run", "meld", "balanced", n=12)
    report = summarize_run(run)
    assert (report["accepted"], report["exhausted"], report["rejected"]) == (11, 1, 5)
    assert report["rejected_by_reason"] == {"json_parse_error": 2, "too_few_turns": 1, "unknown_label": 2}
    assert sum(row["targeted_dialogues"] for row in report["balance"].values()) == 11
    text = format_summary(report)
    assert "accepted 11/12 dialogues" in text
    assert "target emotion present in" in text


@pytest.mark.parametrize("line", ["null", "42", '"text"', "[1, 2]"])
def test_a_record_that_is_not_an_object_is_named_by_file_and_line(tmp_path: Path, line: str) -> None:
    store = _store(tmp_path)
    store.append([_record(0)])
    with open(store.records_path, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")
    with pytest.raises(RunDirError, match=r"records\.jsonl:2: a record must be a JSON object, got"):
        RunStore.open(store.run_dir).records()


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("index", "0", "field 'index' must be a non-negative integer"),
    ("attempt", -1, "field 'attempt' must be a non-negative integer"),
    ("status", "maybe", "field 'status' must be one of accepted, rejected"),
    ("emotions", ["joy"], "field 'emotions' must be a list of integers or null"),
    ("target_emotion", 1.5, "field 'target_emotion' must be an integer or null"),
])
def test_a_record_with_a_mistyped_field_is_named_by_file_line_and_field(tmp_path: Path, field: str, value,
                                                                        expected: str) -> None:
    store = _store(tmp_path)
    store.records_path.write_text(json.dumps({**_record(0), field: value}) + "\n", encoding="utf-8")
    with pytest.raises(RunDirError, match=rf"records\.jsonl:1: {expected}"):
        store.records()


def test_short_writes_are_completed(tmp_path: Path, monkeypatch) -> None:
    store = _store(tmp_path)
    real_write = os.write
    sizes = []

    def three_bytes_at_a_time(fd: int, data) -> int:
        sizes.append(len(data))
        return real_write(fd, bytes(data[:3]))

    monkeypatch.setattr(run_store.os, "write", three_bytes_at_a_time)
    store.append([_record(0), _record(1)])
    monkeypatch.undo()
    assert len(sizes) > 2  # the store kept writing after each short write
    assert [r.index for r in RunStore.open(store.run_dir).records()] == [0, 1]


def test_disk_full_mid_write_reports_failure_and_loses_nothing_reported_durable(tmp_path: Path,
                                                                               monkeypatch) -> None:
    store = _store(tmp_path)
    store.append([_record(0)])
    durable = store.records_path.read_bytes()
    real_write = os.write

    def half_then_enospc(fd: int, data) -> int:
        if len(data) > 20:
            return real_write(fd, bytes(data[: len(data) // 2]))  # a partial line reaches the disk
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(run_store.os, "write", half_then_enospc)
    with pytest.raises(RunStoreWriteError, match=r"No space left on device.*Free disk space and rerun") as err:
        store.append([_record(1), _record(2)])
    assert err.value.exit_code == 3
    monkeypatch.undo()
    assert store.records_path.read_bytes() == durable  # cut back: no half batch on disk
    store.append([_record(3)])  # space is back: the same store goes on
    reopened = RunStore.create_or_open(store.run_dir, store.settings)
    assert [r.index for r in reopened.records()] == [0, 3]


def test_failed_cut_back_is_repaired_before_the_next_append(tmp_path: Path, monkeypatch) -> None:
    store = _store(tmp_path)
    store.append([_record(0)])
    real_write = os.write

    def partial_then_eio(fd: int, data) -> int:
        if len(data) > 20:
            return real_write(fd, bytes(data[:17]))
        raise OSError(errno.EIO, "Input/output error")

    def no_truncate(fd: int, length: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(run_store.os, "write", partial_then_eio)
    monkeypatch.setattr(run_store.os, "ftruncate", no_truncate)
    with pytest.raises(RunStoreWriteError, match="Input/output error"):
        store.append([_record(1)])
    monkeypatch.undo()
    assert not store.records_path.read_bytes().endswith(b"\n")  # the partial line is still there
    RunStore.open(store.run_dir).records()  # a reader ignores it
    store.append([_record(2)])
    assert [r.index for r in RunStore.open(store.run_dir).records()] == [0, 2]


def test_a_partial_tail_left_by_a_crash_is_cut_on_the_next_open(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.append([_record(0)])
    with open(store.records_path, "ab") as fh:
        fh.write(b'{"index": 1, "attem')
    reopened = RunStore.create_or_open(store.run_dir, store.settings)
    reopened.append([_record(1)])
    assert [r.index for r in RunStore.open(store.run_dir).records()] == [0, 1]


def test_out_that_is_a_file_is_one_clear_error(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(RunDirError, match="is a file, not a folder"):
        RunStore.create_or_open(a_file, settings_for("meld", "natural", 3))


def test_read_only_out_is_one_clear_error(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    if os.geteuid() == 0:  # root writes through permission bits: a read-only filesystem refuses it too
        _mount_tmpfs(locked, "ro,size=64k")
        expected = r"Read-only file system.*Use a writable filesystem"
    else:
        locked.chmod(0o555)
        expected = r"Permission denied.*Make the folder writable"
    try:
        with pytest.raises(RunStoreWriteError, match=expected):
            RunStore.create_or_open(locked / "run", settings_for("meld", "natural", 3))
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(locked)], check=False)
        locked.chmod(0o755)


def test_settings_that_json_cannot_store_are_refused(tmp_path: Path) -> None:
    settings = settings_for("meld", "natural", 3)
    settings["sampling"] = {**settings["sampling"], "temperature": float("nan")}
    with pytest.raises(RunDirError, match="JSON cannot store"):
        RunStore.create_or_open(tmp_path / "run", settings)
    assert not (tmp_path / "run").exists()


def test_growth_keeps_history_and_shrinking_is_refused(tmp_path: Path) -> None:
    store = _store(tmp_path, n=3)
    store.append([_record(0)])
    with pytest.raises(RunDirError, match="other settings"):
        RunStore.create_or_open(store.run_dir, {**store.settings, "num_dialogues": 5})  # growth not asked for
    grown = RunStore.create_or_open(store.run_dir, {**store.settings, "num_dialogues": 5}, allow_growth=True)
    assert grown.settings["num_dialogues"] == 5
    assert [h["num_dialogues"] for h in RunStore.open(store.run_dir).history] == [3, 5]
    with pytest.raises(RunDirError, match="refusing to shrink it to 4"):
        RunStore.create_or_open(store.run_dir, {**store.settings, "num_dialogues": 4}, allow_growth=True)


def _mount_tmpfs(mount: Path, options: str) -> None:
    """Mount a tmpfs at ``mount`` (a real small or read-only filesystem), or skip where that is not permitted."""
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {done.stderr.strip()}")


@pytest.fixture
def tiny_filesystem(tmp_path: Path):
    """A 64 KiB tmpfs: a real full disk."""
    mount = tmp_path / f"tiny-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    _mount_tmpfs(mount, "size=64k")
    try:
        yield mount
    finally:
        from erc_synth.dataset_scripts import run_store

        for held in [p for p in run_store._HELD_LOCKS if p.is_relative_to(mount.resolve())]:
            run_store.release_run_dir(held)  # an open lock file keeps the mount busy
        subprocess.run(["umount", str(mount)], check=True)


def test_a_real_full_disk_loses_nothing_reported_durable(tiny_filesystem: Path) -> None:
    filler = tiny_filesystem / "filler"
    filler.write_bytes(b"\0" * 16_384)  # freed later, as a user would free space
    store = RunStore.create_or_open(tiny_filesystem / "run", settings_for("meld", "natural", 10_000))
    durable: list[int] = []
    with pytest.raises(RunStoreWriteError, match="No space left on device"):
        for index in range(0, 10_000, 4):
            store.append([_record(i, utterances=["x" * 300, "y" * 300]) for i in range(index, index + 4)])
            durable.extend(range(index, index + 4))
    assert len(durable) > 10
    assert store.records_path.read_bytes().endswith(b"\n")
    filler.unlink()
    reopened = RunStore.create_or_open(store.run_dir, store.settings)
    assert [r.index for r in reopened.records()] == durable
    reopened.append([_record(9_999)])
    assert [r.index for r in RunStore.open(store.run_dir).records()] == [*durable, 9_999]


def test_a_record_spliced_after_a_lost_partial_write_is_kept(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.append([_record(0)])
    whole = json.dumps(_record(2), sort_keys=True).encode()
    with open(store.records_path, "ab") as fh:  # what unchecked writes left: a partial line, then the next append
        fh.write(json.dumps(_record(1), sort_keys=True).encode()[:40] + whole + b"\n")
    assert [r.index for r in RunStore.open(store.run_dir).records()] == [0, 2]
    store.records_path.write_bytes(b'{"index": 1, "attem\n')  # a broken line with nothing whole after it
    with pytest.raises(RunDirError, match=r"records\.jsonl:1: corrupt record"):
        store.records()
