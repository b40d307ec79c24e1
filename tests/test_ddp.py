"""One cell trained data-parallel: ``torchrun --nproc_per_node 2`` on CPU (gloo), the real console script.

Both ranks train (the Trainer wraps the model in DDP from torchrun's environment); only rank 0 chooses the cell
and writes the cell file, the model, its card and the tables.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from datasets import DatasetDict
from helpers.tiny_encoders import TOY_WORDS, build_encoder, toy_dialogues, write_built_folder

from erc_synth.dataset_scripts.core.registry import get_benchmark

MELD = get_benchmark("meld")
TORCHRUN = Path(sys.executable).with_name("torchrun")


@pytest.mark.slow
@pytest.mark.skipif(not TORCHRUN.is_file(), reason="torchrun is not installed beside this Python")
def test_one_cell_trains_on_two_gloo_ranks_and_is_written_once(tmp_path):
    encoder = build_encoder(tmp_path / "encoder", TOY_WORDS, "roberta")
    real = write_built_folder(DatasetDict(train=toy_dialogues(MELD, 24, 1), validation=toy_dialogues(MELD, 6, 2),
                                          test=toy_dialogues(MELD, 6, 3)), tmp_path / "real")
    config = tmp_path / "ddp.yaml"
    config.write_text(yaml.safe_dump({
        "name": "ddp-ci", "encoder": str(encoder), "architectures": ["emoberta"], "regimes": ["org"],
        "seeds": [0], "options": {"emoberta": {"max_length": 32}}, "save_models": True,
        "training": {"epochs": 2, "learning_rate": 1e-3, "batch_size": 4, "early_stopping_patience": None},
        "benchmarks": {"meld": {"real_data": str(real)}},
    }))
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "TQDM_DISABLE": "1",
           "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [str(TORCHRUN), "--standalone", "--nproc_per_node", "2", "-m", "erc_synth.cli", "experiment",
         str(config), "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=300)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log

    cells = sorted((out / "cells").rglob("*.json"))
    assert [p.relative_to(out / "cells").as_posix() for p in cells] == ["meld/emoberta/org/seed0.json"]
    stored = json.loads(cells[0].read_text())
    assert stored["world_size"] == 2  # the cell really trained across two processes
    assert 0.0 <= stored["scores"]["real"]["weighted_f1"] <= 1.0
    assert log.count("meld/emoberta/org/seed0: training") == 1  # rank 0 alone chooses and reports
    assert log.count("meld/emoberta/org/seed0: real test weighted F1") == 1
    model = Path(stored["model_dir"])
    assert (model / "README.md").is_file() and (model / "erc_synth_training.json").is_file()
    assert json.loads((model / "erc_synth_training.json").read_text())["scores"] == stored["scores"]
    assert (out / "main_table.md").is_file() and not list(out.rglob(".*.tmp"))
    shutil.rmtree(out / "work", ignore_errors=True)
