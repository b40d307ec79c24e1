"""The ``llm`` judge against a real TGI-protocol server over the tiny test LM: labels, resume after SIGKILL, and
server faults retried by generation's request pool."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest
from helpers.servers.process import tgi_server, tgi_url, tiny_lm_dir  # noqa: F401  (session fixtures)

from erc_synth.classifiers.audit import JudgeError
from erc_synth.classifiers.audit.llm_judge import LlmJudgeSpec, label_grammar, load_llm_judge, parse_label
from erc_synth.dataset_scripts.core.registry import get_benchmark
from erc_synth.dataset_scripts.run_store import RunStore
from erc_synth.dataset_scripts.schema import dialogues_dataset

MELD = get_benchmark("meld")
DIALOGUES = 12
TURNS = ["Hi there.", "Oh no, not again!", "That is great news!", "I am so scared."]


def _dialogues(count: int = DIALOGUES):
    rows = [{"dialogue_id": f"d{i}", "speakers": ["Ross", "Rachel", "Ross", "Monica"],
             "utterances": [f"{text} ({i})" for text in TURNS], "emotions": [0, 3, 1, 6]} for i in range(count)]
    return dialogues_dataset(MELD, rows)


def _built_folder(tmp: Path) -> Path:
    folder = tmp / "meld-set"
    (folder / "data" / "dialogues").mkdir(parents=True)
    _dialogues().to_parquet(str(folder / "data" / "dialogues" / "test-00000-of-00001.parquet"))
    return folder


def _audit(folder: Path, url: str, cache: Path, out: Path) -> subprocess.Popen:
    # No HF_HUB_OFFLINE here: huggingface_hub's client refuses every URL in offline mode, the local server too.
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    env.update({"TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"})
    return subprocess.Popen([sys.executable, "-m", "erc_synth.cli", "audit", str(folder), "--benchmark", "meld",
                             "--judge", f"llm:tgi@{url}#chatml", "--cache-dir", str(cache), "--out", str(out)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_a_sigkilled_llm_audit_resumes_and_matches_an_uninterrupted_one(tgi_url: str, tmp_path: Path) -> None:  # noqa: F811
    folder = _built_folder(tmp_path)
    killed_cache, clean_cache = tmp_path / "killed", tmp_path / "clean"
    proc = _audit(folder, tgi_url, killed_cache, tmp_path / "killed-audit")
    deadline = time.monotonic() + 300
    records: list[Path] = []
    while time.monotonic() < deadline and proc.poll() is None:
        records = list(killed_cache.glob("llm/*/records.jsonl"))
        if records and records[0].read_bytes().count(b"\n") >= 1:
            break
        time.sleep(0.02)
    exited_by_itself = proc.poll()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert exited_by_itself is None, proc.stderr.read()
    run_dir = records[0].parent
    before = RunStore.open(run_dir).raw_records()
    assert 0 < len(before) < DIALOGUES * len(TURNS), "the kill must land part way through the audit"

    for cache, out in ((killed_cache, tmp_path / "killed-audit"), (clean_cache, tmp_path / "clean-audit")):
        finished = _audit(folder, tgi_url, cache, out)
        assert finished.wait(timeout=600) == 0, finished.stderr.read()

    after = RunStore.open(run_dir).raw_records()
    assert all(record in after for record in before)  # what was stored before the kill is kept as it was
    assert len(after) == len({(r["index"], r["attempt"]) for r in after})  # and no request was sent twice
    accepted = sorted(r["index"] for r in after if r["status"] == "accepted")
    assert accepted == sorted(set(accepted))  # one accepted answer per utterance at most
    resumed = json.loads((tmp_path / "killed-audit" / "audit.json").read_text())
    clean = json.loads((tmp_path / "clean-audit" / "audit.json").read_text())
    for key in ("num_utterances", "agreement", "kappa", "per_label", "judge_unknown"):
        assert resumed[key] == clean[key], key
    assert resumed["judge"]["grammar"] == "regex"
    assert resumed["num_utterances"] + resumed["judge_unknown"] == DIALOGUES * len(TURNS)


@pytest.mark.slow
def test_server_faults_are_retried_and_change_no_answer(tgi_url: str, tiny_lm_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    dialogues = {"test": _dialogues(6)}
    clean = load_llm_judge(f"llm:tgi@{tgi_url}#chatml", MELD, seed=3, cache_dir=tmp_path / "clean")
    expected = clean.predict(dialogues)
    server = tgi_server(tiny_lm_dir, "--fault-rate", "0.3", "--faults", "reset,500,429", "--fault-seed", "2",
                        log_path=tmp_path / "faulty-server.log")
    with server:
        judge = load_llm_judge(f"llm:tgi@{server.url}#chatml", MELD, seed=3, cache_dir=tmp_path / "faulty")
        answers = judge.predict(dialogues)
        injected = httpx2.get(f"{server.url}/faults", timeout=10).json()
    assert set(injected) == {"reset", "500", "429"}, injected
    assert judge.details["server_faults_retried"] == sum(injected.values())  # each fault met once, then retried
    records = RunStore.open(judge.details["run_dir"]).raw_records()
    assert len(records) == len({(r["index"], r["attempt"]) for r in records})  # a fault stores nothing
    assert judge.details["unknown"] == clean.details["unknown"]
    for got, want in zip(answers["test"], expected["test"], strict=True):
        assert (got == want).all()


@pytest.mark.slow
def test_the_embedded_model_judges_in_process_reproducibly(tmp_path: Path) -> None:
    dialogues = {"test": _dialogues(3)}
    first = load_llm_judge("llm:transformers", MELD, seed=5, cache_dir=tmp_path / "first")
    again = load_llm_judge("llm:transformers", MELD, seed=5, cache_dir=tmp_path / "again")
    answers, repeated = first.predict(dialogues), again.predict(dialogues)
    records = RunStore.open(first.details["run_dir"]).raw_records()
    assert records == RunStore.open(again.details["run_dir"]).raw_records()  # byte for byte, seeds and all
    assert first.details["grammar"] == "regex" and first.details["unknown"] == 0
    assert sorted(r["index"] for r in records if r["status"] == "accepted") == list(range(3 * len(TURNS)))
    for got, want in zip(answers["test"], repeated["test"], strict=True):
        assert (got.sum(axis=1) == 1).all() and (got == want).all()


def test_judge_answers_are_parsed_strictly() -> None:
    assert parse_label(" 3\n", 7) == (3, None)
    assert parse_label('{"label": 6}', 7) == (6, None)
    assert parse_label("7", 7) == (None, "label_out_of_range")
    assert parse_label("joy", 7) == (None, "not_a_label_number")
    assert parse_label('{"label": "joy"}', 7) == (None, "not_a_label_number")
    assert label_grammar("regex", 3).value == "(0|1|2)"


def test_llm_spec_parsing() -> None:
    spec = LlmJudgeSpec.parse("llm:openai:qwen/q-7b@http://a:1,http://b:2#chatml")
    assert spec == LlmJudgeSpec("openai", "qwen/q-7b", ("http://a:1", "http://b:2"), "chatml")
    assert LlmJudgeSpec.parse("llm:transformers") == LlmJudgeSpec("transformers", None, ())
    with pytest.raises(JudgeError, match="needs a server URL"):
        LlmJudgeSpec.parse("llm:tgi")
    with pytest.raises(JudgeError, match="unknown backend 'ollama'"):
        LlmJudgeSpec.parse("llm:ollama")
