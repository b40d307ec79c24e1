"""Label-fidelity audit: does each synthetic label match its utterance? Measured against a judge.

``audit_dataset`` (in :mod:`.auditing`) has a judge label every utterance and compares the LLM's labels with
the judge's (agreement, Cohen's kappa against chance, per-label scores), measures whether labels follow the turn
position (against the real benchmark's own value), and ranks likely label errors with cleanlab. ``write_audit``
writes audit.json, audit.md and the confusion matrix; ``apply_label_policy`` gives a set the LLM's, the judge's
or only the agreed labels. ``erc-synth audit`` is the command (:mod:`.cli`).
"""

from __future__ import annotations

from .auditing import AuditResult, audit_dataset, resolve_judge
from .judges import JudgeError, JudgeSettings, default_cache_dir
from .label_filter import filter_dialogues, filter_settings, independent_audit_settings
from .policy import POLICIES, apply_label_policy
from .report import write_audit

__all__ = ["POLICIES", "AuditResult", "JudgeError", "JudgeSettings", "apply_label_policy", "audit_dataset",
           "default_cache_dir", "filter_dialogues", "filter_settings", "independent_audit_settings", "resolve_judge",
           "write_audit"]
