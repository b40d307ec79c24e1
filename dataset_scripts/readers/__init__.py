"""Readers for the original benchmark files, one module per format named in the registry.

``load_reference(benchmark, data_dir, variant=None, config="dialogues")`` is the entry point; ``READERS`` maps
each ``Variant.format`` to a function ``SplitSource -> list[Dialogue]``.
"""

from .base import Dialogue, SplitSource
from .formats import READERS
from .loader import DialogueIdWarning, benchmark_dir, load_reference, read_dialogues

__all__ = ["READERS", "Dialogue", "DialogueIdWarning", "SplitSource", "benchmark_dir", "load_reference",
           "read_dialogues"]
