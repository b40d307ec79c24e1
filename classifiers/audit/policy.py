"""Which labels a set keeps after an audit: the LLM's (``llm``), the judge's (``judge``) or their agreement.

Why ``agree`` marks rather than drops: an utterance whose LLM label the judge disputes is still part of the
conversation. It stays as context with the schema's ``UNLABELLED`` (-1), which collators ignore in the loss and
metrics leave out, so the dialogue's flow is intact while no disputed label is taught.
"""

from __future__ import annotations

from typing import Any, Literal

from erc_synth.dataset_scripts.core.build_defaults import LABEL_POLICIES
from erc_synth.dataset_scripts.core.errors import ErcSynthError
from erc_synth.dataset_scripts.core.registry import UNLABELLED

from .auditing import AuditResult

POLICIES: tuple[str, ...] = LABEL_POLICIES


def _relabel(llm: list[int], judge: list[int], policy: str) -> list[int]:
    if policy == "judge":
        return [UNLABELLED if a == UNLABELLED else b for a, b in zip(llm, judge, strict=True)]
    return [a if a == b else UNLABELLED for a, b in zip(llm, judge, strict=True)]


def apply_label_policy(dialogues: Any, result: AuditResult, policy: Literal["llm", "judge", "agree"]) -> Any:
    """``dialogues`` (the audited DatasetDict) with the labels ``policy`` chooses; other columns unchanged.

    Utterances the LLM left unlabelled stay unlabelled under every policy: they were context on purpose.
    """
    from datasets import DatasetDict

    if policy not in POLICIES:
        raise ErcSynthError(f"unknown label policy {policy!r}; choose one of: {', '.join(POLICIES)}")
    if policy == "llm":
        return dialogues
    out = {}
    for split, dataset in dialogues.items():
        if result.dialogue_ids.get(split) != list(dataset["dialogue_id"]):
            raise ErcSynthError(f"label policy {policy}: split {split!r} is not the set that was audited "
                                "(its dialogues differ from the audit's)")
        emotions = [_relabel(list(llm), judge, policy)
                    for llm, judge in zip(dataset["emotions"], result.judge_labels[split], strict=True)]
        out[split] = dataset.remove_columns("emotions").add_column(
            "emotions", emotions, feature=dataset.features["emotions"]
        ).select_columns(dataset.column_names)
    return DatasetDict(out)
