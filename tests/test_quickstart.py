"""The README's main job, end to end: ``erc-synth run --preset quickstart`` with a reduced count.

Same code path and the same embedded SmolLM2 model as the real quickstart; only ``--num-dialogues`` is smaller.
It runs the real console script in a subprocess twice: the second run must resume (generate nothing) and leave
byte-identical data.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from erc_synth.dataset_scripts.core.registry import BENCHMARKS, MODES

pytestmark = pytest.mark.slow

NUM_DIALOGUES = 3
SECTIONS = ("## Summary", "## How to load", "## Schema", "## Generation setup", "## Quality gates",
            "## Rejected generations", "## Statistics", "## Label distribution", "## Label fidelity",
            "## Differences from the reference study", "## Intended uses and limitations", "## Licence", "## Citation")


def _run_quickstart(out: Path, real_data: Path | None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "erc_synth.cli", "run", "--preset", "quickstart", "--out", str(out),
               "--num-dialogues", str(NUM_DIALOGUES), "--no-progress"]
    if real_data is not None:
        command += ["--real-data", str(real_data)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1500, check=False)
    assert result.returncode == 0, f"quickstart failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def _parquet_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.parquet"))}


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str], Path | None]:
    from conftest import SHARED_DATA

    real = SHARED_DATA if (SHARED_DATA / "meld").is_dir() else None
    out = tmp_path_factory.mktemp("quickstart")
    return out, _run_quickstart(out, real), real


def test_quickstart_leaves_six_loadable_folders_with_classlabels(quickstart) -> None:
    from datasets import ClassLabel, load_dataset

    out, _, _ = quickstart
    for benchmark in BENCHMARKS.values():
        for mode in MODES:
            folder = out / "datasets" / f"{benchmark.name}-synth-{mode}"
            dialogues = load_dataset(str(folder))
            utterances = load_dataset(str(folder), "utterances")
            rows = sum(len(split) for split in dialogues.values())
            assert rows >= 1, f"{folder} has no dialogue"
            for split in dialogues.values():
                assert split.features["emotions"].feature.names == list(benchmark.labels)
            for split in utterances.values():
                assert isinstance(split.features["emotion"], ClassLabel)
                assert split.features["emotion"].names == list(benchmark.labels)
            assert sum(len(s) for s in utterances.values()) == sum(
                len(d["utterances"]) for s in dialogues.values() for d in s)


def test_quickstart_cards_have_every_section_and_plots_exist(quickstart) -> None:
    from huggingface_hub import DatasetCard

    out, _, _ = quickstart
    for benchmark in BENCHMARKS:
        for mode in MODES:
            folder = out / "datasets" / f"{benchmark}-synth-{mode}"
            card = DatasetCard.load(folder / "README.md")
            for section in SECTIONS:
                assert section in card.text, f"{folder}/README.md lacks {section}"
            assert card.data.task_categories == ["text-classification"]
            plot = folder / "label_distribution.png"
            assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "label_distributions.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_quickstart_summary_reports_every_dataset(quickstart) -> None:
    out, result, _ = quickstart
    summary = json.loads((out / "summary.json").read_text())
    assert [d["name"] for d in summary["datasets"]] == [f"{b}-synth-{m}" for b in BENCHMARKS for m in MODES]
    for dataset in summary["datasets"]:
        assert dataset["requested"] == NUM_DIALOGUES
        assert 1 <= dataset["accepted"] <= NUM_DIALOGUES
        assert sum(dataset["label_counts"].values()) > 0
    assert "| meld-synth-balanced |" in result.stdout


def test_quickstart_measures_js_divergence_from_the_real_benchmarks(quickstart, shared_data) -> None:
    out, _, real = quickstart
    assert real is not None
    summary = json.loads((out / "summary.json").read_text())
    for dataset in summary["datasets"]:
        assert dataset["js_divergence"] is not None and 0.0 <= dataset["js_divergence"] <= 1.0


def test_rerunning_the_quickstart_resumes_and_rebuilds_identically(quickstart) -> None:
    out, _, real = quickstart
    before = {name: _parquet_bytes(out / "datasets" / name) for name in os.listdir(out / "datasets")}
    _run_quickstart(out, real)
    summary = json.loads((out / "summary.json").read_text())
    assert [d["generated_now"] for d in summary["datasets"]] == [0] * 6
    after = {name: _parquet_bytes(out / "datasets" / name) for name in os.listdir(out / "datasets")}
    assert after == before


@pytest.mark.needs_shared_data
def test_quickstart_with_real_data_applies_its_exemplars_and_records_them(quickstart) -> None:
    out, result, _ = quickstart
    assert "with real data: few_shot 2 applied" in result.stdout
    for name in ("meld-synth-natural", "iemocap-synth-balanced"):
        settings = json.loads((out / "runs" / name / "manifest.json").read_text())["settings"]
        assert settings["few_shot"]["k"] == 2 and settings["few_shot"]["split"] == "train"
        assert settings["label_plan"]["source"] == "benchmark"


def test_without_real_data_a_preset_says_in_one_line_what_it_leaves_out(tmp_path: Path) -> None:
    preset = tmp_path / "one.yaml"
    preset.write_text("backend: transformers\nmodel: embedded\nseed: 3\nprompt_version: v2\n"
                      "label_format: word_first\nlabel_plan: benchmark\nwith_real_data: {few_shot: 2}\n"
                      "turns: [2, 3]\nsampling: {max_new_tokens: 160}\nbuild: {c2st: false}\n"
                      "datasets:\n  - {benchmark: meld, mode: natural, num_dialogues: 1}\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "ERC_SYNTH_REAL_DATA"}
    result = subprocess.run([sys.executable, "-m", "erc_synth.cli", "run", "--preset", str(preset), "--out",
                             str(tmp_path / "out"), "--no-progress"], capture_output=True, text=True, env=env,
                            cwd=tmp_path, timeout=900, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if "few_shot" in line]
    assert lines == ["without real data: few_shot 2 not applied; the preset's data-free settings are used "
                     "(give --real-data DIR for the better sets)"]
    settings = json.loads((tmp_path / "out" / "runs" / "meld-synth-natural" / "manifest.json").read_text())["settings"]
    assert settings["label_plan"]["source"] == "benchmark" and "few_shot" not in settings
