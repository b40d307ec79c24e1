"""The one default of each build setting: the split seed and ratios, the gate thresholds and the label policy.

Why here, at the bottom: the same setting reaches a build from a preset (``erc_synth.preset_schema.BuildSettings``),
from ``erc-synth build`` flags, from the pipeline and from the Python API (``dataset_scripts.builder``,
``dataset_scripts.gates.GateOptions``, ``hub_cards.folder``). Each of them reads its default from this module, so
the four entry points cannot drift apart, and the flag parser stays light (no gate libraries to import).
"""

from __future__ import annotations

DEFAULT_SPLIT_SEED = 0
DEFAULT_RATIOS: tuple[float, float, float] = (0.8, 0.1, 0.1)
NEAR_DUP_THRESHOLD = 0.8
DECONTAM_NGRAM = 8
DECONTAM_THRESHOLD = 0.0
GIBBERISH_THRESHOLD = 0.5
GIBBERISH_MIN_WORDS = 2
MAX_BAD_LINE_SHARE = 0.5
#: Which labels a built set keeps after an audit: the LLM's (the study's), the judge's, or their agreement.
LABEL_POLICIES: tuple[str, ...] = ("llm", "judge", "agree")
DEFAULT_LABEL_POLICY = "llm"
#: The label filter's minimum support (``classifiers.audit.label_filter``); None: no filter, as in the study.
DEFAULT_LABEL_FILTER: float | None = None
