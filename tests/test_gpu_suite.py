"""benchmarks/gpu_suite.py: the --tiny run on CPU writes both reports; without CUDA the real run refuses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SUITE = REPO / "benchmarks" / "gpu_suite.py"


def run_suite(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SUITE), *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", **(env or {})})


@pytest.mark.slow
def test_tiny_suite_writes_json_and_markdown(tmp_path):
    done = run_suite("--tiny", "--out", str(tmp_path), "--sections", "classifiers", "decode", "vllm")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "gpu_suite.json").read_text())
    assert report["tiny"] is True and list(report["sections"]) == ["classifiers", "decode", "vllm"]
    assert {s["status"] for s in report["sections"].values()} == {"ok"}
    classifiers = report["sections"]["classifiers"]["result"]
    assert classifiers["emoberta"]["steps_per_s"] > 0 and classifiers["compm"]["examples_per_s"] > 0
    assert classifiers["emoberta"]["meld_epoch_s"] == pytest.approx(9989 / 4 / classifiers["emoberta"]["steps_per_s"])
    decode = report["sections"]["decode"]["result"]
    assert [row["batch"] for row in decode["rows"]] == [1, 4] and decode["best_batch"] in (1, 4)
    assert report["sections"]["vllm"]["result"] == {"skipped": "vLLM's GPU path is not exercised by --tiny"}
    markdown = (tmp_path / "gpu_suite.md").read_text()
    assert markdown.startswith("# GPU suite (tiny, CPU: figures mean nothing)")
    assert "| EmoBERTa-style, batch 4 |" in markdown and "| batch | step ms | floor ms |" in markdown
    assert (tmp_path / "logs" / "decode.log").is_file()


@pytest.mark.slow
@pytest.mark.needs_shared_data
def test_tiny_minilm_section_trains_on_every_real_benchmark(tmp_path, shared_data):
    done = run_suite("--tiny", "--out", str(tmp_path), "--sections", "minilm", "--real-data", str(shared_data))
    assert done.returncode == 0, done.stdout + done.stderr
    minilm = json.loads((tmp_path / "gpu_suite.json").read_text())["sections"]["minilm"]["result"]
    assert sorted(minilm["benchmarks"]) == ["emorynlp", "iemocap", "meld"]
    for row in minilm["benchmarks"].values():
        assert 0.0 <= row["test_weighted_f1"] <= 100.0 and row["train_utterances"] > 0
    assert minilm["benchmarks"]["meld"]["reference"] == "59.8"
    assert "| meld |" in (tmp_path / "gpu_suite.md").read_text()


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without CUDA")
def test_without_cuda_the_suite_refuses_in_one_line(tmp_path):
    done = run_suite("--out", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "no CUDA device" in done.stderr and "--tiny" in done.stderr
    assert not (tmp_path / "gpu_suite.json").exists()
