"""What a tuned generator folder (GEN_DIR) says about itself, read by ``generate`` and carried into its RUN_DIR.

Why a module of its own: ``generate`` only needs to know whether ``--model`` is a tuned generator and, if so,
on which benchmark's train split and with which manifest (its sha256); it must not import the training code.
The run manifest's ``provenance.generator_tuning`` block made from this reaches the card and ``push``, which
refuses an IEMOCAP-tuned generator's set unless the user states they hold the rights.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from erc_synth.dataset_scripts.core.errors import ErcSynthError
from erc_synth.dataset_scripts.core.registry import Benchmark

#: The manifest file inside GEN_DIR.
TUNE_MANIFEST = "erc_synth_tuned.json"


def licence_statement(benchmark: Benchmark) -> str:
    """The derived-data terms of a generator tuned on ``benchmark``: its outputs are derived from the text."""
    return (f"This generator was fine-tuned on the {benchmark.display_name} train split. Its weights and the text "
            f"it writes are derived from that data, and the benchmark's terms apply to them: "
            f"{benchmark.license_note}")


def read_tune_manifest(folder: str | Path) -> dict[str, Any]:
    """GEN_DIR's manifest; a broken one is one line naming the file."""
    path = Path(folder) / TUNE_MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ErcSynthError(f"{path}: unreadable tuned-generator manifest ({exc}); re-run tune-generator") from None
    if not isinstance(data, dict) or "benchmark" not in data:
        raise ErcSynthError(f"{path}: not a tuned-generator manifest; re-run tune-generator")
    return data


def tuning_provenance(model: str | None) -> dict[str, Any] | None:
    """The run manifest's ``generator_tuning`` block for a ``--model`` value, or None for an untuned model."""
    if model is None:
        return None
    folder = Path(model)
    path = folder / TUNE_MANIFEST
    if not path.is_file():
        return None
    manifest = read_tune_manifest(folder)
    return {"tuned": True, "benchmark": manifest["benchmark"], "train_split": manifest.get("train_split", "train"),
            "base_model": manifest.get("base_model"), "base_model_sha256": manifest.get("base_model_sha256"),
            "method": (manifest.get("settings") or {}).get("method"), "licence": manifest.get("licence"),
            "tune_manifest_sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
