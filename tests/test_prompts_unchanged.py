"""What runs made before a new prompt setting must keep: the same prompt bytes, the same manifest settings, the
same records, and RUN_DIRs that still resume.

Why a fixture and pinned digests rather than comparing the code with itself: a RUN_DIR is checked against the
settings its manifest stored when it was made, and its records embed what the prompts said. The fixture under
``tests/fixtures/runs_before_label_order/`` was written by the code *before* ``label_order`` existed (by
``_generate`` below, unchanged since), and the digests were computed from that code too, so a change that alters
a default prompt, a default manifest setting or a default record fails here.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from helpers.fake_backend import FakeBackend

from erc_synth.dataset_scripts.core.registry import BENCHMARKS, MODES, get_benchmark
from erc_synth.generation.engine import GenerationConfig, generate, run_settings
from erc_synth.generation.grammar import LABEL_FORMATS
from erc_synth.generation.prompts import TEMPLATE_VERSIONS, build_messages

FIXTURE = Path(__file__).parent / "fixtures" / "runs_before_label_order"
#: The two runs of the fixture: the engine's own default (v1, number labels, balanced, so the target path is
#: covered) and the quickstart's label variant (v2, word_first).
RUNS: dict[str, dict] = {
    "meld-v1-number-balanced": {"benchmark": "meld", "mode": "balanced"},
    "emorynlp-v2-word_first-natural": {"benchmark": "emorynlp", "prompt_version": "v2", "label_format": "word_first"},
}
#: sha256 over every default rendering (versions x label formats x benchmarks x modes), from the code before
#: ``label_order``. Changing it changes what running studies and stored RUN_DIRs asked their model.
PROMPTS_DIGEST = "bc814321c8c8d3898212ab1b200bcbedf66d1b3b41ca292aa22683bf9f43800d"


def _echo_prompt(request, target: int | None) -> str:
    """A dialogue whose text carries a digest of the exact prompt it was asked with, so the stored records pin
    the prompt bytes; every line carries ``target`` when the prompt asks for one."""
    content = request.messages[-1]["content"]
    digest = hashlib.sha256(content.encode()).hexdigest()[:16]
    word_first = "Speaker (emotion): utterance" in content
    label = target if target is not None else request.seed % 5
    lines = []
    for i, speaker in enumerate(("Ross", "Rachel", "Ross")):
        text = f"prompt {digest} line {i} seed {request.seed % 1000}"
        if word_first:
            lines.append(f"{speaker} ({get_benchmark('emorynlp').labels[label]}): {text}")  # the word_first run
        else:
            lines.append(f"{speaker}: {text} ({label})")
    return "\n".join(lines)


def _config(name: str, out: Path) -> GenerationConfig:
    return GenerationConfig(**RUNS[name], num_dialogues=4, seed=13, out=out, backend="fake", turns=(2, 4))


def _generate(name: str, out: Path) -> None:
    """One fixture run (meld balanced needs the fake to recognise the target its v1 prompt asks for)."""
    config = _config(name, out)
    backend = FakeBackend(config.benchmark, mode=config.mode, write=_echo_prompt)
    generate(config, backend=backend, progress=False)


def _all_default_renderings() -> str:
    parts = []
    for version, (_, formats) in sorted(TEMPLATE_VERSIONS.items()):
        for label_format in sorted(set(formats) & set(LABEL_FORMATS)):
            for name in sorted(BENCHMARKS):
                bench = get_benchmark(name)
                for mode in MODES:
                    target = 1 if mode == "balanced" else None
                    messages = build_messages(bench, mode, turns=(3, 7), target_label=target, version=version,
                                              label_format=label_format)
                    parts.append(json.dumps(messages, sort_keys=True))
    return "\n".join(parts)


def test_default_prompts_are_the_bytes_earlier_runs_used() -> None:
    assert hashlib.sha256(_all_default_renderings().encode()).hexdigest() == PROMPTS_DIGEST


@pytest.mark.parametrize("name", sorted(RUNS))
def test_default_settings_are_the_manifest_an_earlier_run_stored(name: str) -> None:
    stored = json.loads((FIXTURE / name / "manifest.json").read_text())["settings"]
    config = _config(name, FIXTURE / name)
    now = json.loads(json.dumps(run_settings(config, get_benchmark(config.benchmark)), sort_keys=True))
    assert now == stored
    assert "label_order" not in stored


@pytest.mark.parametrize("name", sorted(RUNS))
def test_an_earlier_run_resumes_without_a_new_request(tmp_path: Path, name: str) -> None:
    run_dir = tmp_path / name
    shutil.copytree(FIXTURE / name, run_dir)
    kept = {"manifest.json", "writer.lock"}  # the lock file holds the last writer's PID
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.name not in kept}
    config = _config(name, run_dir)
    backend = FakeBackend(config.benchmark, mode=config.mode, write=_echo_prompt)
    report = generate(config, backend=backend, progress=False)
    assert (report.status, report.finished_now, backend.requests) == ("complete", 0, [])
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.name not in kept} == before


@pytest.mark.parametrize("name", sorted(RUNS))
def test_a_fresh_default_run_writes_the_records_an_earlier_run_wrote(tmp_path: Path, name: str) -> None:
    _generate(name, tmp_path / name)
    assert (tmp_path / name / "records.jsonl").read_bytes() == (FIXTURE / name / "records.jsonl").read_bytes()
