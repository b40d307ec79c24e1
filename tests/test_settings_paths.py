"""The same settings given as a preset, as ``erc-synth generate`` flags and as a Python ``GenerationConfig`` give
the same generation manifest and the same records, byte for byte, on the real embedded SmolLM2-135M.

Why: each entry point reads its defaults and checks from one settings layer; a default written twice (a flag's
``default=`` beside the dataclass field) would show here as a manifest that differs by entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from erc_synth.generation.engine import GenerationConfig, generate
from erc_synth.pipeline import generation_config
from erc_synth.preset import load_preset

PRESET = {"backend": "transformers", "model": "embedded", "seed": 3, "max_attempts": 2, "turns": [2, 2],
          "sampling": {"max_new_tokens": 48}, "datasets": [{"benchmark": "meld", "mode": "natural",
                                                             "num_dialogues": 1}]}
FLAGS = ["--backend", "transformers", "--model", "embedded", "--seed", "3", "--max-attempts", "2", "--turns", "2",
         "2", "--max-new-tokens", "48", "--benchmark", "meld", "--mode", "natural", "--num-dialogues", "1"]


def _manifest(run_dir: Path) -> dict:
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert [entry["num_dialogues"] for entry in manifest.pop("history")] == [1]  # the one part that holds a time
    return manifest


def test_a_preset_flags_and_the_python_api_give_one_manifest(tmp_path):
    preset_file = tmp_path / "one.yaml"
    preset_file.write_text(yaml.safe_dump(PRESET), encoding="utf-8")
    preset = load_preset(str(preset_file))
    generate(generation_config(preset, preset.datasets[0], tmp_path / "preset"), progress=False)

    done = subprocess.run([sys.executable, "-m", "erc_synth.cli", "generate", *FLAGS, "--no-progress", "--out",
                           str(tmp_path / "flags")], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr

    generate(GenerationConfig(benchmark="meld", mode="natural", num_dialogues=1, seed=3, out=tmp_path / "api",
                              backend="transformers", model="embedded", max_attempts=2, turns=(2, 2),
                              sampling={"max_new_tokens": 48}), progress=False)

    manifests = {name: _manifest(tmp_path / name) for name in ("preset", "flags", "api")}
    assert manifests["preset"]["settings"]["sampling"]["max_new_tokens"] == 48
    assert manifests["preset"]["settings"]["turns"] == [2, 2] and manifests["preset"]["settings"]["seed"] == 3
    assert manifests["preset"] == manifests["flags"] == manifests["api"]
    records = {name: (tmp_path / name / "records.jsonl").read_bytes() for name in manifests}
    assert records["preset"] and records["preset"] == records["flags"] == records["api"]
