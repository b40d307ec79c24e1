"""The ceiling of the label-fidelity figure: the audit judge's own kappa on the real test labels.

A kappa of 0.1 between an LLM's labels and a judge means little until one knows how well the same judge agrees
with human labels; this runs the same audit (``classifiers.audit.audit_dataset``) on the real test split, so the
two figures come from one piece of code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from erc_synth.dataset_scripts.core.registry import Benchmark

#: Real test dialogues the judge labels (the first ones, in file order): bounds the cost of an LLM judge.
MAX_DIALOGUES = 100


def judge_real_kappa(judge: str, benchmark: Benchmark, real_data: str | Path, *, seed: int = 0,
                     cache_dir: str | Path | None = None, judge_settings: Any = None,
                     max_dialogues: int = MAX_DIALOGUES) -> dict[str, Any]:
    """``{"kappa", "num_utterances", "dialogues"}`` of the judge against the real test labels."""
    from datasets import DatasetDict

    from erc_synth.classifiers.audit import audit_dataset
    from erc_synth.classifiers.data import load_real

    variant = judge_settings.variant if judge_settings is not None else None
    test = load_real(benchmark, real_data, variant)["test"]
    test = test.select(range(min(max_dialogues, len(test))))
    result = audit_dataset(DatasetDict({"test": test}), benchmark, judge, real_data=Path(real_data), seed=seed,
                           cache_dir=Path(cache_dir) if cache_dir is not None else None,
                           judge_settings=judge_settings, source="the real test split")
    return {"kappa": result.summary["kappa"], "num_utterances": result.summary["num_utterances"],
            "dialogues": len(test)}
