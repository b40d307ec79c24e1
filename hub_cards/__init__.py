"""Statistics, plots, dataset cards and Hub publishing of built synthetic datasets.

Public API: ``build_folder`` (RUN_DIR -> Hub-ready folder with data, card, plot and build report; optionally a
label audit), ``build_all`` (every run under a folder built once, each card with the full six-run figure;
returns a ``BuildAllReport``), ``prepare_run`` and ``write_folder`` (the two stages of a build), ``push_folder``
and ``push_all`` (publish what a build wrote), ``save_label_distribution_plot``, ``label_distribution_figure``
and ``js_divergence``.
Exports resolve lazily: ``erc-synth --help`` imports ``hub_cards.cli`` and must not pay for matplotlib,
datasets or huggingface_hub.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "build_folder": "folder",
    "build_all": "folder",
    "FolderReport": "folder",
    "BuildAllReport": "folder",
    "prepare_run": "folder",
    "write_folder": "folder",
    "push_folder": "publish",
    "push_all": "publish",
    "PublishError": "publish",
    "PushResult": "publish",
    "save_label_distribution_plot": "plots",
    "label_distribution_figure": "plots",
    "js_divergence": "divergence",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'hub_cards' has no attribute {name!r}")
    return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
