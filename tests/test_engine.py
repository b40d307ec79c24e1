"""The engine's own logic against an in-memory backend: attempts, retries, resume, steering, growth, settings.

Every test here runs in milliseconds; the real servers and models are exercised end to end in
``test_generate_cli.py`` (slow tier), one run per protocol.
"""

from __future__ import annotations

import errno
import json
import math
import os
from pathlib import Path

import pytest
from helpers.fake_backend import FakeBackend, fatal, retryable
from hypothesis import given
from hypothesis import strategies as st

from erc_synth.dataset_scripts import run_store
from erc_synth.dataset_scripts.core.errors import ErcSynthError, RunDirError
from erc_synth.dataset_scripts.run_store import RunStore, RunStoreWriteError
from erc_synth.generation.backends.base import SamplingParams
from erc_synth.generation.engine import (
    GenerationConfig,
    ServerUnreachableError,
    SettingError,
    default_of,
    generate,
    sampling_from,
)
from erc_synth.generation.seeds import derive_seed, steered_targets

SEED = 13


def _config(out: Path, n: int = 8, mode: str = "balanced", **overrides) -> GenerationConfig:
    options = {"benchmark": "meld", "mode": mode, "num_dialogues": n, "seed": SEED, "out": out, "backend": "fake",
               "turns": (2, 4), "retry_base_delay": 0.0, "concurrency": 3, **overrides}
    return GenerationConfig(**options)


def _run(out: Path, backend: FakeBackend | None = None, **overrides):
    config = _config(out, **overrides)
    backend = backend or FakeBackend(mode=config.mode)
    return generate(config, backend=backend, progress=False)


def _lines(out: Path) -> list[dict]:
    """The stored records as JSON objects, in (index, attempt) order: what a run yields, whatever the timing."""
    return RunStore.open(out).raw_records()


def test_a_clean_run_accepts_every_index_with_its_target(tmp_path: Path) -> None:
    report = _run(tmp_path / "run")
    assert report.status == "complete"
    assert (report.accepted, report.finished_now, report.retried) == (8, 8, 0)
    accepted = RunStore.open(tmp_path / "run").accepted()
    assert [r.index for r in accepted] == list(range(8))
    assert [r.target_emotion for r in accepted] == [i % 7 for i in range(8)]
    assert all(r.target_emotion in r.emotions for r in accepted)
    assert [r.seed for r in accepted] == [derive_seed(SEED, i, 0) for i in range(8)]


def test_a_rejected_attempt_is_stored_and_retried_with_the_next_seed(tmp_path: Path) -> None:
    bad = {derive_seed(SEED, 2, 0), derive_seed(SEED, 2, 1)}
    report = _run(tmp_path / "run", FakeBackend(mode="balanced", bad_seeds=bad))
    assert report.status == "complete"
    assert report.rejected_by_reason == {"no_lines": 2}
    index_2 = [r for r in RunStore.open(tmp_path / "run").records() if r.index == 2]
    assert [(r.attempt, r.status) for r in index_2] == [(0, "rejected"), (1, "rejected"), (2, "accepted")]
    assert index_2[0].raw_text == "I would rather not write that."


def test_an_index_out_of_attempts_leaves_the_run_incomplete(tmp_path: Path) -> None:
    bad = {derive_seed(SEED, 5, attempt) for attempt in range(3)}
    report = _run(tmp_path / "run", FakeBackend(mode="balanced", bad_seeds=bad), max_attempts=3)
    assert report.status == "incomplete"
    assert report.exhausted == [5]
    assert report.accepted == 7
    again = _run(tmp_path / "run", max_attempts=3)  # resuming does not retry an exhausted index
    assert again.finished_now == 0 and again.exhausted == [5]


def test_server_faults_are_retried_and_change_nothing_stored(tmp_path: Path) -> None:
    _run(tmp_path / "clean")
    backend = FakeBackend(mode="balanced", faults=[retryable(), None, retryable(), retryable()])
    report = _run(tmp_path / "faulty", backend)
    assert report.status == "complete"
    assert report.retried == 3
    assert _lines(tmp_path / "faulty") == _lines(tmp_path / "clean")


def test_too_many_faults_stop_the_run_and_a_rerun_resumes_it(tmp_path: Path) -> None:
    _run(tmp_path / "clean", concurrency=1)
    backend = FakeBackend(mode="balanced", faults=[None, None, None, *[retryable("connection reset")] * 3])
    stopped = _run(tmp_path / "run", backend, concurrency=1, max_retries=2)
    assert stopped.status == "stopped"
    assert "gave up after 3 consecutive server faults; last: connection reset" in stopped.error
    assert stopped.accepted == 3
    resumed = _run(tmp_path / "run", concurrency=1, max_retries=2)
    assert resumed.status == "complete"
    assert resumed.finished_now == 5  # only what was missing
    assert _lines(tmp_path / "run") == _lines(tmp_path / "clean")


def test_a_fault_that_retrying_cannot_fix_stops_at_once(tmp_path: Path) -> None:
    backend = FakeBackend(mode="balanced", faults=[fatal()])
    report = _run(tmp_path / "run", backend, concurrency=1)
    assert report.status == "stopped"
    assert report.retried == 0
    assert "retrying cannot fix: 400 Bad Request" in report.error


def test_resuming_a_finished_run_adds_nothing(tmp_path: Path) -> None:
    _run(tmp_path / "run")
    before = (tmp_path / "run" / "records.jsonl").read_bytes()
    backend = FakeBackend(mode="balanced")
    report = _run(tmp_path / "run", backend)
    assert report.finished_now == 0 and backend.calls == []
    assert (tmp_path / "run" / "records.jsonl").read_bytes() == before


def test_other_settings_or_another_model_are_refused(tmp_path: Path) -> None:
    _run(tmp_path / "run", n=3)
    with pytest.raises(RunDirError, match=r"other settings.*seed"):
        _run(tmp_path / "run", n=3, seed=14)
    with pytest.raises(RunDirError, match="generated by model 'fake/seeded-model'"):
        _run(tmp_path / "run", FakeBackend(mode="balanced", model_id="fake/other"), n=3)


def test_a_failed_first_contact_leaves_no_run_dir_and_a_retry_works(tmp_path: Path) -> None:
    out = tmp_path / "run"
    down = FakeBackend(mode="balanced", info_fault=retryable("GET http://gpu-1:8080/info: ConnectError"))
    with pytest.raises(ServerUnreachableError, match="could not reach the fake backend: GET http://gpu-1") as err:
        _run(out, down, n=3)
    assert err.value.exit_code == 3
    assert not out.exists()
    assert _run(out, n=3).status == "complete"


def test_a_full_disk_during_a_run_is_reported_and_a_rerun_completes_it(tmp_path: Path, monkeypatch) -> None:
    _run(tmp_path / "clean", concurrency=1)
    real_write = os.write

    def disk_fills_at_index_3(fd: int, data) -> int:
        if b'"index": 3,' in bytes(data):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(run_store.os, "write", disk_fills_at_index_3)
    with pytest.raises(RunStoreWriteError, match="No space left on device"):
        _run(tmp_path / "run", concurrency=1)
    monkeypatch.undo()
    assert [r["index"] for r in _lines(tmp_path / "run")] == [0, 1, 2]
    assert _run(tmp_path / "run", concurrency=1).status == "complete"
    assert _lines(tmp_path / "run") == _lines(tmp_path / "clean")


def test_an_in_process_backend_gets_one_call_at_a_time_with_everything_in_flight(tmp_path: Path) -> None:
    """Which rows share a forward pass must not depend on timing (float kernels make a row's logits depend on its
    batch-mates), so a batching backend is never called concurrently: one worker hands over all it has."""
    batching = FakeBackend(mode="natural", batch_size=4, bad_seeds={derive_seed(SEED, 1, 0)})
    report = _run(tmp_path / "run", batching, mode="natural", n=20, concurrency=8)
    assert report.status == "complete" and report.rejected_by_reason == {"no_lines": 1}
    assert batching.most_in_flight == 1
    assert [len(call) for call in batching.calls] == [8, 8, 5]
    assert batching.calls[1][0].seed == derive_seed(SEED, 1, 1)  # the retry of index 1 leads the next call
    server = FakeBackend(mode="natural", batch_size=1, delay=0.01)
    _run(tmp_path / "server", server, mode="natural", n=20, concurrency=8)
    assert server.most_in_flight == 8 and {len(call) for call in server.calls} == {1}
    default = FakeBackend(mode="natural", batch_size=4)
    _run(tmp_path / "default", default, mode="natural", n=20, concurrency=None)
    assert [len(call) for call in default.calls] == [16, 4]  # four times the backend's batch by default


def test_steered_targets_depend_on_earlier_waves_not_on_timing(tmp_path: Path) -> None:
    steer = {"steer": True, "steer_wave": 4, "n": 12}
    _run(tmp_path / "c1", concurrency=1, **steer)
    _run(tmp_path / "c8", FakeBackend(mode="balanced", batch_size=3), concurrency=8, **steer)
    assert _lines(tmp_path / "c1") == _lines(tmp_path / "c8")
    accepted = RunStore.open(tmp_path / "c1").accepted()
    assert [r.target_emotion for r in accepted[:4]] == [0, 1, 2, 3]  # nothing realised yet: the labels in turn
    counts = [0] * 7
    for record in accepted[:4]:
        for emotion in record.emotions:
            counts[emotion] += 1
    assert [r.target_emotion for r in accepted[4:8]] == steered_targets(4, 4, counts)
    assert [r.target_emotion for r in accepted[4:8]] != [4, 5, 6, 0]  # steering changed the cyclic choice


@pytest.mark.parametrize("steer", [{}, {"steer": True, "steer_wave": 4}], ids=["cyclic", "steered"])
def test_a_grown_run_keeps_its_first_dialogues_and_equals_a_fresh_run(tmp_path: Path, steer: dict) -> None:
    small = tmp_path / "grown"
    _run(small, n=6, **steer)
    before = (small / "records.jsonl").read_bytes()
    report = _run(small, n=11, **steer)
    assert report.status == "complete" and report.finished_now == 5
    assert (small / "records.jsonl").read_bytes().startswith(before)  # the first six, byte for byte
    _run(tmp_path / "fresh", n=11, **steer)
    assert _lines(small) == _lines(tmp_path / "fresh")
    manifest = json.loads((small / "manifest.json").read_text())
    assert [h["num_dialogues"] for h in manifest["history"]] == [6, 11]
    assert manifest["settings"]["num_dialogues"] == 11


def test_a_smaller_count_on_a_run_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    _run(tmp_path / "run", n=6)
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()}
    with pytest.raises(RunDirError, match="holds a run of 6 dialogues; refusing to shrink it to 4"):
        _run(tmp_path / "run", n=4)
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()} == before


@pytest.mark.parametrize(("setting", "value", "message"), [
    ("sampling.temperature", float("nan"), "must be a finite number > 0"),
    ("sampling.temperature", 0.0, "must be a finite number > 0"),
    ("sampling.temperature", -1.0, "must be a finite number > 0"),
    ("sampling.top_p", 0.0, r"must be a number in \(0, 1\]"),
    ("sampling.top_p", 2.0, r"must be a number in \(0, 1\]"),
    ("sampling.top_k", -5, r"must be an integer in \[0, 1000000\]; 0 turns it off"),
    ("sampling.typical_p", math.inf, r"must be a number in \(0, 1\]"),
    ("sampling.repetition_penalty", 0.0, "must be a finite number > 0"),
    ("sampling.max_new_tokens", 0, r"must be an integer in \[1, 32768\]"),
    ("sampling.max_new_tokens", 10**30, r"must be an integer in \[1, 32768\]"),
    ("request_timeout", -1.0, r"must be a number of seconds in \(0, 86400\]"),
    ("request_timeout", math.nan, r"must be a number of seconds in \(0, 86400\]"),
    ("request_timeout", 1e30, r"must be a number of seconds in \(0, 86400\]"),
    ("max_attempts", 0, r"must be an integer in \[1, 1000\]"),
    ("max_attempts", 10**30, r"must be an integer in \[1, 1000\]"),
    ("max_retries", 10**30, r"must be an integer in \[0, 100\]"),
    ("num_dialogues", 0, r"must be an integer in \[1, 1000000\]"),
    ("num_dialogues", 10**30, r"must be an integer in \[1, 1000000\]"),
    ("seed", 10**30, r"must be an integer in \[0, 4294967295\]"),
    ("concurrency", 0, r"must be an integer in \[1, 4096\]"),
    ("concurrency", 10**30, r"must be an integer in \[1, 4096\]"),
    ("backend_options.batch_size", 0, r"must be an integer in \[1, 4096\]"),
    ("backend_options.batch_size", 10**30, r"must be an integer in \[1, 4096\]"),
    ("few_shot", 10**30, r"must be an integer in \[0, 64\]"),
    ("turns", (5, 2), "two integers MIN MAX"),
    ("turns", (2, 10**30), "two integers MIN MAX with 1 <= MIN <= MAX <= 1000"),
    ("mode", "chaotic", "must be one of natural, balanced"),
])
def test_each_setting_has_one_validator(tmp_path: Path, setting: str, value, message: str) -> None:
    if setting.startswith("sampling."):
        overrides = {"sampling": {setting.split(".")[1]: value}}
    elif setting.startswith("backend_options."):
        overrides = {"backend_options": {setting.split(".")[1]: value}}
    else:
        overrides = {setting: value}
    with pytest.raises(SettingError, match=message) as err:
        _config(tmp_path / "run", **overrides)
    assert err.value.setting == setting


def test_sampling_from_a_preset_mapping_is_checked_like_the_flags(tmp_path: Path) -> None:
    config = _config(tmp_path / "run", sampling={"temperature": 0.9, "stop": ["</s>"]})
    assert config.sampling == SamplingParams(temperature=0.9, stop=("</s>",))
    with pytest.raises(SettingError, match="unknown sampling parameter") as err:
        _config(tmp_path / "run", sampling={"temprature": 0.9})
    assert err.value.setting == "sampling.temprature"


def test_steering_outside_balanced_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingError, match="only applies to mode balanced"):
        _config(tmp_path / "run", mode="natural", steer=True)


def test_defaults_have_one_source(tmp_path: Path) -> None:
    import argparse

    from erc_synth.generation.cli import register
    from erc_synth.preset import parse_preset

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["generate", "--benchmark", "meld", "--num-dialogues", "1", "--out", "x"])
    preset = parse_preset({"backend": "tgi", "model": "m", "seed": 1,
                           "datasets": [{"benchmark": "meld", "mode": "natural", "num_dialogues": 1}]}, "p.yaml")
    assert args.max_attempts == preset.max_attempts == default_of("max_attempts") == 5
    assert GenerationConfig("meld").max_attempts == 5
    assert args.temperature == default_of("sampling.temperature") == SamplingParams().temperature
    assert args.request_timeout == default_of("request_timeout")
    # Retries and timeouts: the request pool's policy and the HTTP backends read the same defaults.
    import inspect

    from erc_synth.generation.backends.openai_compat import OpenAICompatBackend
    from erc_synth.generation.backends.tgi import TgiBackend
    from erc_synth.generation.request_pool import RetryPolicy

    policy = RetryPolicy()
    assert (args.max_retries, default_of("retry_base_delay"), default_of("retry_max_delay")) == (
        policy.max_retries, policy.base_delay, policy.max_delay)
    for backend in (OpenAICompatBackend, TgiBackend):
        assert inspect.signature(backend).parameters["timeout"].default == default_of("request_timeout")


def test_a_preset_gets_the_same_checks_as_the_flags(tmp_path: Path) -> None:
    """The preset schema applies the engine's own sampling rule, so a preset is refused with the flag's words,
    at load time, with the file and the key."""
    from erc_synth.preset import parse_preset

    with pytest.raises(ErcSynthError, match=r"^p\.yaml: field 'sampling\.temperature' must be a finite number > 0, "
                                            r"got nan$"):
        parse_preset({"backend": "tgi", "model": "m", "seed": 1, "sampling": {"temperature": float("nan")},
                      "datasets": [{"benchmark": "meld", "mode": "natural", "num_dialogues": 1}]}, "p.yaml")
    with pytest.raises(SettingError, match="must be a finite number > 0, got nan"):
        sampling_from({"temperature": float("nan")})  # the rule the generate flags go through


@given(first=st.integers(0, 10_000), count=st.integers(0, 40), more=st.integers(0, 40),
       realised=st.lists(st.integers(0, 500), min_size=2, max_size=9))
def test_a_steering_wave_that_grows_keeps_the_targets_it_had(first: int, count: int, more: int,
                                                              realised: list[int]) -> None:
    """What growing a steered run relies on: a longer wave's first targets are the shorter wave's targets."""
    assert steered_targets(first, count + more, realised)[:count] == steered_targets(first, count, realised)
