"""classifiers/configs/smoke.yaml made CI-sized, for the experiment tests and the grid engine's tests.

Architectures, options and training settings stay those of the shipped smoke config; the encoder is the tiny
random one, the data toy MELD-shaped built folders, and the caller picks regimes, seeds and extra keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from datasets import DatasetDict

from erc_synth.dataset_scripts.core.registry import get_benchmark

from .tiny_encoders import TOY_WORDS, build_encoder, toy_dialogues, write_built_folder

REPO = Path(__file__).resolve().parents[2]
MELD = get_benchmark("meld")


def smoke_ci_config(root: Path, regimes: list[str], seeds: list[int], **changes: Any) -> Path:
    """Write ``root/smoke-ci.yaml`` (and its encoder and data under ``root``); returns the config's path."""
    encoder = build_encoder(root / "encoder", TOY_WORDS, "roberta")
    real = write_built_folder(DatasetDict(train=toy_dialogues(MELD, 16, 1), validation=toy_dialogues(MELD, 6, 2),
                                          test=toy_dialogues(MELD, 6, 3)), root / "real")
    for number, mode in enumerate(("natural", "balanced")):
        splits = {"train": toy_dialogues(MELD, 12, 10 + number), "test": toy_dialogues(MELD, 6, 20 + number)}
        if mode == "natural":  # the syn regime selects its checkpoint on the synthetic validation split
            splits["validation"] = toy_dialogues(MELD, 4, 30)
        write_built_folder(DatasetDict(splits), root / "synthetic" / f"meld-synth-{mode}")
    config = yaml.safe_load((REPO / "classifiers" / "configs" / "smoke.yaml").read_text())
    meld = config["benchmarks"]["meld"]
    meld["real_data"] = str(real)
    meld["synthetic"] = {mode: spec.replace("${ERC_SYNTH_SMOKE_SYNTHETIC}", str(root / "synthetic"))
                         for mode, spec in meld["synthetic"].items()}
    config.update(encoder=str(encoder), seeds=seeds, benchmarks={"meld": meld}, regimes=regimes, **changes)
    for name in config["options"]:
        config["options"][name]["max_length"] = 32
    path = root / "smoke-ci.yaml"
    path.write_text(yaml.safe_dump(config))
    return path
