"""The classifier-backed label audit, handed to the build from the top layer.

``hub_cards`` builds folders and must not import ``classifiers``; the pipeline and the build commands live
above both, so they make this auditor and pass it in (``hub_cards.build_hooks.LabelAuditor``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the builder imports datasets; the console script must stay light
    from erc_synth.dataset_scripts.builder import BuiltDataset


class ClassifierAuditor:
    """``classifiers.audit`` behind the build's ``LabelAuditor`` hook; torch loads only when it is called."""

    def audit(self, built: BuiltDataset, judge: str, *, real_data: Path | None, seed: int,
              cache_dir: Path | None, judge_settings: Any) -> Any:
        from erc_synth.classifiers.audit import audit_dataset

        return audit_dataset(built.dialogues, built.benchmark, judge, real_data=real_data, seed=seed,
                             cache_dir=cache_dir, judge_settings=judge_settings,
                             source=f"the {built.config_name} build")

    def filter(self, built: BuiltDataset, min_confidence: float, *, audit_judge: str | None, real_data: Path,
               seed: int, cache_dir: Path | None, judge_settings: Any) -> tuple[Any, dict[str, Any], Any]:
        from erc_synth.classifiers.audit import (
            audit_dataset,
            filter_dialogues,
            filter_settings,
            independent_audit_settings,
        )

        audit_settings = independent_audit_settings(audit_judge, judge_settings)  # refuse before any training
        result = audit_dataset(built.dialogues, built.benchmark, "train", real_data=real_data, seed=seed,
                               cache_dir=cache_dir, judge_settings=filter_settings(judge_settings),
                               source=f"the {built.config_name} build (label filter)")
        dialogues, report = filter_dialogues(built.dialogues, result, min_confidence)
        return dialogues, report, audit_settings

    def apply_policy(self, dialogues: Any, result: Any, policy: str) -> Any:
        from erc_synth.classifiers.audit import apply_label_policy

        return apply_label_policy(dialogues, result, policy)

    def write(self, result: Any, out_dir: Path) -> Mapping[str, Path]:
        from erc_synth.classifiers.audit import write_audit

        return write_audit(result, out_dir)
