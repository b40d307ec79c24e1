"""Environment variables the toolkit reads, each read in one place.

Why one module: the real-data folder used to have two names (``ERC_SYNTH_REAL_DATA`` in the pipeline,
``ERC_SYNTH_SHARED_DATA`` in configs and tests). One canonical name is read here; the old one still works with a
warning, so existing scripts and configs keep running while they migrate. An empty value is an error rather than
``Path("")``, which would silently mean the current folder.
"""

from __future__ import annotations

import os
import warnings

from .errors import ErcSynthError

#: Folder holding the benchmarks' original files (``meld/``, ``emorynlp/``, ``iemocap/``).
REAL_DATA_ENV = "ERC_SYNTH_REAL_DATA"
#: A token to send, as ``Authorization: Bearer``, to the generation servers (``--endpoint``) and to the ``llm``
#: judge's server. Why a variable of its own: the Hub token (``HF_TOKEN``, ``hf auth login``) belongs to the Hub
#: alone, and a generation server, a colleague's or a cloud one, must never receive it unasked.
ENDPOINT_TOKEN_ENV = "ERC_SYNTH_ENDPOINT_TOKEN"
#: Token of a Label Studio server for ``erc-synth review`` (its own variable: never the Hub token).
LABEL_STUDIO_TOKEN_ENV = "LABEL_STUDIO_API_KEY"
#: Old names of the same variable, still read (with a ``FutureWarning``) when the canonical one is unset.
DEPRECATED_ALIASES: dict[str, str] = {"ERC_SYNTH_SHARED_DATA": REAL_DATA_ENV}


def env_value(name: str, *, where: str = "environment") -> str | None:
    """The value of ``name`` (or of a deprecated alias of it); ``None`` when unset; an error when empty."""
    candidates = [name, *(old for old, new in DEPRECATED_ALIASES.items() if new == name)]
    if name in DEPRECATED_ALIASES:  # a config still naming the old variable reads the new one first
        candidates = [DEPRECATED_ALIASES[name], name]
    for candidate in candidates:
        value = os.environ.get(candidate)
        if value is None:
            continue
        if not value.strip():
            raise ErcSynthError(f"{where}: environment variable {candidate} is set but empty")
        if candidate in DEPRECATED_ALIASES:
            warnings.warn(
                f"{candidate} is deprecated; set {DEPRECATED_ALIASES[candidate]} instead", FutureWarning, stacklevel=2
            )
        return value
    return None


def real_data_env() -> str | None:
    """``$ERC_SYNTH_REAL_DATA`` (or its deprecated alias), ``None`` when unset."""
    return env_value(REAL_DATA_ENV)


def endpoint_token() -> str | None:
    """``$ERC_SYNTH_ENDPOINT_TOKEN``: the one token generation servers may receive; ``None`` when unset."""
    value = env_value(ENDPOINT_TOKEN_ENV)
    if value is None:
        return None
    token = value.strip()
    if not token.isascii() or not token.isprintable() or any(c.isspace() for c in token):
        raise ErcSynthError(f"environment variable {ENDPOINT_TOKEN_ENV} must be one word of printable ASCII "
                            "(it is sent as an HTTP header)")
    return token


def label_studio_token_env() -> str | None:
    """``$LABEL_STUDIO_API_KEY`` (the name Label Studio's own SDK reads), ``None`` when unset."""
    return env_value(LABEL_STUDIO_TOKEN_ENV)
