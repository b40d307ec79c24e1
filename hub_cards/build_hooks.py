"""What a build asks of the classifiers, as hooks that the caller hands in: the label audit and the quality report.

Why hooks and not imports: the audit trains or loads a judge and the quality report embeds utterances with an
encoder, which is the classifiers' business, and ``classifiers`` sits beside ``hub_cards``, not below it. The
build only needs a few calls, so it names them here and the top layer (``erc_synth.label_auditor``,
``erc_synth.quality_reporter``) supplies the implementations.
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

    def filter(self, built: BuiltDataset, min_confidence: float, *, audit_judge: str | None, real_data: Path,
               seed: int, cache_dir: Path | None, judge_settings: Any) -> tuple[Any, dict[str, Any], Any]:
        """Drop the dialogues a judge of half the real train split supports below ``min_confidence``.

        Returns the kept dialogues, the filter's report and the judge settings the audit must then use (the
        other half), or refuses an ``audit_judge`` that cannot be independent of the filter's.
        """

    def apply_policy(self, dialogues: Any, result: Any, policy: str) -> Any:
        """The dialogues with the labels ``policy`` (``judge`` or ``agree``) gives them."""

    def write(self, result: Any, out_dir: Path) -> Mapping[str, Path]:
        """Write the audit's files (audit.json, audit.md, plots) into ``out_dir``; name -> path."""


class QualityReporter(Protocol):
    """What ``prepare_run`` calls to measure a built set beside the real benchmark (``quality.json``)."""

    def report(self, built: BuiltDataset, *, real: Any, audit: Any, judge: str | None,
               real_data_dir: str | Path | None, seed: int, gates: Any, c2st: bool,
               audit_cache_dir: str | Path | None, judge_settings: Any) -> dict[str, Any]:
        """The report as a JSON-ready dict; ``real`` is the build's ``RealComparison`` (None without real data)."""
