"""The shipped label-sequence statistics of each benchmark's real train split (counts only, no text).

``benchmark_statistics.json`` beside this module is written by ``scripts/make_benchmark_statistics.py`` from
the real files (``dataset_scripts.label_statistics``) and checked against them by a shared-data test, so a
label plan can be drawn without the licensed data at hand.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from .errors import ErcSynthError

STATISTICS_FILE = "benchmark_statistics.json"


@cache
def _all() -> dict[str, Any]:
    text = (resources.files("erc_synth.dataset_scripts.core") / STATISTICS_FILE).read_text(encoding="utf-8")
    return json.loads(text)


def benchmark_statistics(name: str) -> dict[str, Any]:
    """``{"variant", "split", "labels", "dialogues", "start", "transitions", "lengths"}`` for a benchmark."""
    data = _all()
    if name not in data:
        raise ErcSynthError(f"no shipped label statistics for benchmark {name!r}; known: {', '.join(sorted(data))}")
    return data[name]
