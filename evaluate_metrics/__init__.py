"""evaluate_metrics package of erc-synth: the ``erc_metrics`` evaluate module and its console command.

``metric_path()`` is here (and not in ``erc_metrics``) so that callers can locate the module folder for
``evaluate.load`` without importing ``evaluate`` and its dependencies first.
"""

from __future__ import annotations

from pathlib import Path

METRIC_DIR = Path(__file__).resolve().parent / "erc_metrics"


def metric_path() -> str:
    """Folder of the erc_metrics evaluate module, for offline ``evaluate.load(metric_path()[, "friedman"])``."""
    return str(METRIC_DIR)
