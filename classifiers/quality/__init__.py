"""The data-quality report of a synthetic set beside the real benchmark (``quality.json``, ``quality.md``).

Text (gibberish, bare labels), realism (a classifier two-sample test on MiniLM embeddings), diversity
(distinct-2, repeats, near duplicates), labels (JS divergence, transitions, all-distinct dialogues) and label
fidelity (the audit's kappa beside the judge's own kappa on the real test labels). See docs/data-quality.md.
"""

from erc_synth.dataset_scripts.quality_corpus import MEASURES, Dialogue, from_columns

from .report import QualitySettings, quality_report
from .writing import QUALITY_JSON, QUALITY_MD, QUALITY_PNG, render_markdown, save_plots, write_report

__all__ = ["MEASURES", "QUALITY_JSON", "QUALITY_MD", "QUALITY_PNG", "Dialogue", "QualitySettings", "from_columns",
           "quality_report", "render_markdown", "save_plots", "write_report"]
