"""The experiment config's typed schema and the train flags' ranges: an unknown, misspelt or out-of-range setting
at any level is refused through the real console script in one line (file, key path, suggestion), exit 2,
before any cell trains or any output folder appears."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from typing import Any

import pytest
import yaml

HUGE = 10**30

#: A config that passes the schema; each probe puts one bad key or value into it.
BASE: dict[str, Any] = {
    "name": "probe", "encoder": "minilm", "architectures": ["emoberta", "compm"], "regimes": ["org"], "seeds": [0],
    "training": {"epochs": 1, "batch_size": 4}, "resources": {"cpu": 1},
    "benchmarks": {"meld": {"real_data": "/nowhere", "limit": {"train": 2}}},
}

#: (where the bad key goes, its value, the line the user must see after ``FILE: ``).
PROBES = [
    (("seedz",), [0], "unknown key 'seedz'; did you mean 'seeds'?"),
    (("friedman_desing",), "pooled", "unknown key 'friedman_desing'; did you mean 'friedman_design'?"),
    (("training", "learnig_rate"), 1e-5, "unknown key 'training.learnig_rate'; did you mean 'training.learning_rate'?"),
    (("pretraining", "batch_sise"), 4, "unknown key 'pretraining.batch_sise'; did you mean 'pretraining.batch_size'?"),
    (("architecture_training", "compm", "epoch"), 2,
     "unknown key 'architecture_training.compm.epoch'; did you mean 'architecture_training.compm.epochs'?"),
    (("topic_pretraining", "topic_dims"), 4,
     "unknown key 'topic_pretraining.topic_dims'; did you mean 'topic_pretraining.topic_dim'?"),
    (("resources", "gpus"), 1, "unknown key 'resources.gpus'; did you mean 'resources.gpu'?"),
    (("benchmarks", "meld", "limt"), {"train": 2}, "unknown key 'benchmarks.meld.limt'; did you mean "
                                                    "'benchmarks.meld.limit'?"),
    (("benchmarks", "meld", "limit", "tain"), 2,
     "unknown key 'benchmarks.meld.limit.tain'; did you mean 'benchmarks.meld.limit.train'?"),
    (("benchmarks", "meld", "synthetic_limit", "zzz"), 2, "unknown key 'benchmarks.meld.synthetic_limit.zzz' "
                                                          "(known here: test, train, validation)"),
    # Counts and sizes have ceilings: a huge integer is one line, not an allocation or a traceback.
    (("training", "batch_size"), HUGE, f"field 'training.batch_size' must be in 1 <= value <= 65536, got {HUGE}"),
    (("training", "epochs"), 1e30, "field 'training.epochs' must be in 0 < value <= 10000.0, got 1e+30"),
    (("pretraining", "max_steps"), HUGE, "field 'pretraining.max_steps' must be in 0 < value <= 1000000000"),
    (("training", "early_stopping_patience"), HUGE, "field 'training.early_stopping_patience' must be in 1 <="),
    (("topic_pretraining", "max_length"), HUGE, "field 'topic_pretraining.max_length' must be in 2 <= value <="),
    (("seeds",), [0, HUGE], f"field 'seeds[1]' has value {HUGE}: Input should be less than or equal to 4294967295"),
    (("seeds",), list(range(1001)), "field 'seeds' has value"),
    (("resources", "gpu"), HUGE, f"field 'resources.gpu' has value {HUGE}: Input should be less than or equal"),
    (("benchmarks", "meld", "limit", "test"), HUGE, f"field 'benchmarks.meld.limit.test' has value {HUGE}"),
    (("training", "batch_size"), "4", "field 'training.batch_size' has value '4': Input should be a valid integer"),
]


def _with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    config = copy.deepcopy(BASE)
    holder = config
    for part in path[:-1]:
        holder = holder.setdefault(part, {})
    holder[path[-1]] = value
    return config


def _erc_synth(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "erc_synth.cli", *argv], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def _one_line(done: subprocess.CompletedProcess) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


def test_the_base_config_passes_the_schema(tmp_path):
    from erc_synth.classifiers.experiment import ExperimentConfig

    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(BASE), encoding="utf-8")
    config = ExperimentConfig.load(path)
    assert config.training.batch_size == 4 and config.training.learning_rate == 2e-5  # the dataclass default


@pytest.mark.parametrize(("path", "value", "expected"), PROBES, ids=[p[2].split(";")[0][:60] for p in PROBES])
def test_a_bad_experiment_key_is_one_line_and_exit_2(tmp_path, path, value, expected):
    config = tmp_path / "grid.yaml"
    config.write_text(yaml.safe_dump(_with(path, value)), encoding="utf-8")
    out = tmp_path / "out"
    line = _one_line(_erc_synth("experiment", str(config), "--out", str(out)))
    assert f"{config}: {expected}" in line
    assert not out.exists()


TRAIN = ["train", "--arch", "emoberta", "--encoder", "minilm", "--benchmark", "meld", "--real-data", "/nowhere"]

TRAIN_PROBES = [
    (["--batch-size", str(HUGE)], f"--batch-size must be in 1 <= value <= 65536, got {HUGE}"),
    (["--pretrain-eval-batch-size", str(HUGE)], "--pretrain-eval-batch-size must be in 1 <= value <= 65536"),
    (["--gradient-accumulation-steps", str(HUGE)], "--gradient-accumulation-steps must be in 1 <= value <= 65536"),
    (["--seed", str(HUGE)], f"--seed must be in 0 <= value <= 4294967295, got {HUGE}"),
    (["--epochs", "1e30"], "--epochs must be in 0 < value <= 10000.0, got 1e+30"),
    (["--limit", str(HUGE)], f"--limit must be in 1 <= value <= 10000000, got {HUGE}"),
    (["--limit-train", str(HUGE)], "--limit-train must be in 1 <= value <= 10000000"),
    (["--max-length", str(HUGE)], "--max-length must be in 1 <= value <= 131072"),
]


@pytest.mark.parametrize(("flags", "expected"), TRAIN_PROBES, ids=[p[0][0] for p in TRAIN_PROBES])
def test_a_huge_train_flag_is_one_line_and_exit_2(tmp_path, flags, expected):
    out = tmp_path / "out"
    line = _one_line(_erc_synth(*TRAIN, "--out", str(out), *flags))
    assert line.startswith(f"erc-synth train: error: {expected}")
    assert not out.exists()
