"""The data-quality report of a build, handed to ``hub_cards`` from the top layer.

``hub_cards`` writes the folder and must not import ``classifiers``, where the report's measures live (they embed
with the offline MiniLM encoder); the build commands and the pipeline make this reporter and pass it in.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the builder imports datasets; the console script must stay light
    from erc_synth.dataset_scripts.builder import BuiltDataset

#: Why the kappa ceiling can be missing: the judge's kappa on the real test labels needs the real test split.
KAPPA_CEILING_NEEDS_REAL = "the judge's kappa on the real test labels needs the real data (--real-data DIR)"


class ClassifierQualityReporter:
    """``classifiers.quality`` behind the build's ``QualityReporter`` hook; the audit's kappa beside its ceiling."""

    def report(self, built: BuiltDataset, *, real: Any, audit: Any, judge: str | None,
               real_data_dir: str | Path | None, seed: int, gates: Any, c2st: bool,
               audit_cache_dir: str | Path | None, judge_settings: Any) -> dict[str, Any]:
        from erc_synth.classifiers.quality import QualitySettings, quality_report
        from erc_synth.dataset_scripts.quality_corpus import from_columns

        kappa, kappa_missing = None, None
        if audit is not None:
            kappa = {"synthetic": audit.summary.get("kappa"), "real": None}
            if real_data_dir is not None and real is not None and real.test and judge:
                from erc_synth.classifiers.quality.kappa import judge_real_kappa

                ceiling = judge_real_kappa(judge, built.benchmark, real_data_dir, seed=seed,
                                           cache_dir=audit_cache_dir, judge_settings=judge_settings)
                kappa["real"] = ceiling["kappa"]
            else:
                kappa_missing = KAPPA_CEILING_NEEDS_REAL
        corpus = [d for split in built.dialogues.values()
                  for d in from_columns(split["utterances"], split["emotions"])]
        return quality_report(corpus, built.benchmark, real_train=real.train if real else None,
                              real_test=real.test if real else None,
                              real_description=real.description if real else None, kappa=kappa,
                              kappa_missing=kappa_missing, gates=gates, settings=QualitySettings(seed=seed, c2st=c2st),
                              dataset=built.config_name)
