"""Jensen-Shannon divergence between label distributions, for comparing a synthetic set with the real one.

Why JS and not KL: it is symmetric, finite when a label is missing from one side (a natural run may never
produce "disgust"), and with base 2 it lies in [0, 1], which makes the card's numbers comparable across
benchmarks with different label counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.spatial.distance import jensenshannon


def counts_vector(counts: Mapping[str, int] | Sequence[int], labels: Sequence[str]) -> np.ndarray:
    """Counts in ``labels`` order; a mapping may omit labels (count 0) but may not name unknown ones."""
    if isinstance(counts, Mapping):
        unknown = sorted(set(counts) - set(labels))
        if unknown:
            raise ValueError(f"counts name unknown labels {unknown}; expected some of {list(labels)}")
        return np.array([counts.get(label, 0) for label in labels], dtype=float)
    if len(counts) != len(labels):
        raise ValueError(f"{len(counts)} counts for {len(labels)} labels")
    return np.asarray(counts, dtype=float)


def js_divergence(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray) -> float:
    """JS divergence (base 2, in [0, 1]) of two count or probability vectors over the same labels."""
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    if p.shape != q.shape or p.sum() <= 0 or q.sum() <= 0:
        raise ValueError("need two non-empty distributions over the same labels")
    return float(jensenshannon(p, q, base=2) ** 2)
