"""Statistics, plots, dataset cards and Hub publishing of built synthetic datasets.

Public API: ``build_folder`` (RUN_DIR -> Hub-ready folder with data, card and plot), ``push_folder`` and
``push_all`` (publish), ``save_label_distribution_plot`` and ``js_divergence``.
"""

from .divergence import js_divergence
from .folder import build_folder
from .plots import label_distribution_figure, save_label_distribution_plot
from .publish import PublishError, PushResult, push_all, push_folder

__all__ = [
    "PublishError",
    "PushResult",
    "build_folder",
    "js_divergence",
    "label_distribution_figure",
    "push_all",
    "push_folder",
    "save_label_distribution_plot",
]
