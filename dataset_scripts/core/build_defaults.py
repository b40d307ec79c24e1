"""The one default and the one range of each build setting: the split seed and ratios, the gate thresholds and
the label policy.

Why here, at the bottom: the same setting reaches a build from a preset (``erc_synth.preset_schema.BuildSettings``),
from ``erc-synth build`` flags, from the pipeline and from the Python API (``dataset_scripts.builder``,
``dataset_scripts.gates.GateOptions``, ``hub_cards.folder``). Each of them reads its default from this module, so
the four entry points cannot drift apart, and the flag parser stays light (no gate libraries to import). The
ranges (``BUILD_RULES``) are shared the same way: every count and size has a ceiling, so a typo such as
``10**30`` is refused, naming the setting, before a run is read or a folder written.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .errors import SettingError

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

MAX_SEED = 2**32 - 1  # numpy's and torch's seed range
#: Longest word n-gram (decontamination) or shingle (near duplicates) a gate compares: far above any line's
#: length, so a longer one could only match nothing.
MAX_NGRAM = 1_000
#: Most MinHash permutations: each costs 8 bytes per dialogue and a hash pass over every shingle.
MAX_NUM_PERM = 8_192


def _integer_in(low: int, high: int) -> tuple[Callable[[Any], bool], str]:
    return ((lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high),
            f"an integer in [{low}, {high}]")


def _share(low_open: bool, high_open: bool, off: bool = False) -> tuple[Callable[[Any], bool], str]:
    """A share in [0, 1] with open or closed ends; ``off``: None (the flag's ``off``) turns the gate off."""
    def ok(v: Any) -> bool:
        if v is None:
            return off
        if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
            return False
        return (v > 0 if low_open else v >= 0) and (v < 1 if high_open else v <= 1)

    text = f"a number in {'(' if low_open else '['}0, 1{')' if high_open else ']'}"
    return ok, text + (", or none to turn the gate off" if off else "")


#: One rule per build setting: (accepts the value, what a valid value is). ``GateOptions``, the builder, the
#: preset's ``build:`` block and the ``build`` flags all check against this table.
BUILD_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "split_seed": _integer_in(0, MAX_SEED),
    "near_dup_threshold": _share(low_open=True, high_open=False, off=True),
    "shingle_size": _integer_in(1, MAX_NGRAM),
    "num_perm": _integer_in(1, MAX_NUM_PERM),
    "minhash_seed": _integer_in(0, MAX_SEED),
    "decontam_ngram": _integer_in(1, MAX_NGRAM),
    "decontam_threshold": _share(low_open=False, high_open=True),
    "gibberish_threshold": _share(low_open=True, high_open=False, off=True),
    "gibberish_min_words": _integer_in(1, MAX_NGRAM),
    "max_bad_line_share": _share(low_open=False, high_open=True, off=True),
    "label_filter": _share(low_open=False, high_open=False, off=True),
}


def check_build_setting(name: str, value: Any) -> Any:
    """``value`` if it is in the range of the build setting ``name``; else a ``SettingError`` naming it."""
    ok, valid = BUILD_RULES[name]
    if not ok(value):
        raise SettingError(name, f"must be {valid}, got {value!r}")
    return value
