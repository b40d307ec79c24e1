"""Engine behaviour that the CLI tests do not reach: steering stays reproducible whatever the concurrency."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.servers import process

from erc_synth.dataset_scripts.run_store import RunStore
from erc_synth.generation.backends.base import SamplingParams
from erc_synth.generation.engine import GenerationConfig, generate

pytestmark = pytest.mark.slow
tiny_lm_dir, tgi_url = process.tiny_lm_dir, process.tgi_url  # session fixtures, shared with other modules


def _steered(out: Path, url: str, concurrency: int) -> list[tuple]:
    config = GenerationConfig(benchmark="iemocap", mode="balanced", num_dialogues=8, seed=3, out=out,
                              backend="tgi", endpoints=[url], chat_format="chatml", concurrency=concurrency,
                              turns=(2, 4), steer=True, steer_wave=4, max_utterance_chars=40,
                              # the tiny model often writes one speaker only; enough attempts to finish anyway
                              max_attempts=20,
                              sampling=SamplingParams(max_new_tokens=120))
    report = generate(config, progress=False)
    assert report.status == "complete", report.summary()
    return [(r["index"], r["target_emotion"], r["raw_text"]) for r in RunStore.open(out).accepted()]


def test_steered_targets_depend_on_earlier_waves_not_on_timing(tgi_url: str, tmp_path: Path) -> None:
    sequential = _steered(tmp_path / "c1", tgi_url, 1)
    concurrent = _steered(tmp_path / "c8", tgi_url, 8)
    assert sequential == concurrent
    first_wave = [target for _, target, _ in sequential[:4]]
    assert first_wave == [0, 1, 2, 3]  # nothing realised yet: the labels in turn
    records = RunStore.open(tmp_path / "c1").accepted()
    counts = [0] * 6
    for record in records[:4]:
        for emotion in record["emotions"]:
            counts[emotion] += 1
    rarest = min(range(6), key=lambda label: (counts[label], (4 + label) % 6))
    assert sequential[4][1] == rarest or counts[sequential[4][1]] == counts[rarest]
