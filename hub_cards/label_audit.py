"""The label audit as a build sees it: a hook that the caller hands in.

Why a hook and not an import: the audit trains or loads a judge, which is the classifiers' business, and
``classifiers`` sits beside ``hub_cards``, not below it. The build only needs three calls, so it names them
here and the top layer (``erc_synth.label_auditor``) supplies the implementation.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from erc_synth.dataset_scripts.builder import BuiltDataset


class LabelAuditor(Protocol):
    """What ``prepare_run`` and ``write_folder`` call when a build asks for a label audit."""

    def audit(self, built: BuiltDataset, judge: str, *, real_data: Path | None, seed: int,
              cache_dir: Path | None, judge_settings: Any) -> Any:
        """Judge every utterance of ``built``; the result has a ``summary`` mapping (kappa and the rest)."""

    def apply_policy(self, dialogues: Any, result: Any, policy: str) -> Any:
        """The dialogues with the labels ``policy`` (``judge`` or ``agree``) gives them."""

    def write(self, result: Any, out_dir: Path) -> Mapping[str, Path]:
        """Write the audit's files (audit.json, audit.md, plots) into ``out_dir``; name -> path."""
