"""Label plans: a dialogue's length and label sequence, drawn before generation from the benchmark's statistics.

Why plan: a small model left to choose labels writes what its prompt makes easy (the first labels of the list,
hardly any ``neutral``); a plan drawn from the real train split's start distribution, first-order label
transitions and length distribution (``dataset_scripts.core.benchmark_statistics``) gives the synthetic set the
benchmark's label sequences, and the grammar, which forces each line's label in the label-first format, makes
the model write the words *for* a given emotion.

Modes:

- ``natural``: the first label from the start counts, each next one from the transition counts of the label
  before it (a row without counts falls back to the label's overall frequency), the length from the length
  counts restricted to the run's turn range (uniform over that range if the benchmark has no dialogue in it).
- ``balanced``: the same transitions made doubly stochastic by Sinkhorn-Knopp balancing (Sinkhorn 1964):
  ``Q = D1 · (P + 1) · D2`` with positive diagonal ``D1``, ``D2`` chosen so that every row and every column of
  ``Q`` sums to one. A doubly stochastic chain has the uniform stationary distribution, and among the matrices
  of that form ``Q`` is the closest to ``P`` in KL divergence, so which label tends to follow which is kept
  while every label becomes equally frequent in the long run. The add-one smoothing makes every entry positive,
  which Sinkhorn's theorem needs; the first label is drawn uniformly (the stationary distribution). A balanced
  dialogue must hold its target: plans are redrawn (a counter in the hash) until one does, and after
  ``_TARGET_TRIES`` draws the target replaces the label at a drawn position.

Every draw is a pure function of the request's seed (sha256 of seed, a counter and the step, like
``prompts.label_permutation``), in plain Python floats, so a RUN_DIR resumes byte for byte on any platform.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from erc_synth.dataset_scripts.core.benchmark_statistics import benchmark_statistics
from erc_synth.dataset_scripts.core.registry import Benchmark

#: ``label_plan`` values: none (the model chooses the labels) or drawn from the benchmark's statistics.
LABEL_PLANS: tuple[str, ...] = ("none", "benchmark")
_SINKHORN_ITERATIONS = 500
_TARGET_TRIES = 64


@dataclass(frozen=True)
class PlanModel:
    """The distributions a plan is drawn from: start and transition probabilities, and lengths in range."""

    start: tuple[float, ...]
    transitions: tuple[tuple[float, ...], ...]
    lengths: tuple[tuple[int, float], ...]


def _normalise(weights: Sequence[float]) -> tuple[float, ...]:
    total = float(sum(weights))
    return tuple(w / total for w in weights)


def sinkhorn(matrix: Sequence[Sequence[float]], iterations: int = _SINKHORN_ITERATIONS) -> list[list[float]]:
    """The doubly stochastic ``D1 · matrix · D2`` of a positive square matrix (alternate row, column scaling)."""
    q = [list(map(float, row)) for row in matrix]
    size = len(q)
    for _ in range(iterations):
        for row in q:
            total = sum(row)
            row[:] = [v / total for v in row]
        for j in range(size):
            total = sum(q[i][j] for i in range(size))
            for i in range(size):
                q[i][j] /= total
    for row in q:  # end on rows, so each row is exactly a distribution to sample from
        total = sum(row)
        row[:] = [v / total for v in row]
    return q


def plan_model(statistics: Mapping[str, Any], mode: str, turns: tuple[int, int]) -> PlanModel:
    """The plan distributions of a benchmark's statistics for ``mode`` and the run's turn range."""
    start_counts = statistics["start"]
    counts = statistics["transitions"]
    marginal = [sum(row[j] for row in counts) + start_counts[j] for j in range(len(start_counts))]
    low, high = turns
    in_range = [(int(k), v) for k, v in statistics["lengths"].items() if low <= int(k) <= high]
    if not in_range or not sum(v for _, v in in_range):
        in_range = [(k, 1) for k in range(low, high + 1)]
    weights = _normalise([v for _, v in in_range])
    lengths = tuple((k, w) for (k, _), w in zip(in_range, weights, strict=True))
    if mode == "balanced":
        balanced = sinkhorn([[c + 1 for c in row] for row in counts])
        return PlanModel(start=_normalise([1.0] * len(start_counts)),
                         transitions=tuple(tuple(row) for row in balanced), lengths=lengths)
    rows = tuple(_normalise(row) if sum(row) else _normalise(marginal) for row in counts)
    return PlanModel(start=_normalise(start_counts), transitions=rows, lengths=lengths)


def _uniform(seed: int, draw: int, step: str) -> float:
    digest = hashlib.sha256(f"erc-synth/label-plan/{seed}/{draw}/{step}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _choose(probabilities: Sequence[float], u: float) -> int:
    cumulative = 0.0
    for index, p in enumerate(probabilities):
        cumulative += p
        if u < cumulative:
            return index
    return max(i for i, p in enumerate(probabilities) if p > 0)  # u beyond a rounding-short total


def _draw(model: PlanModel, seed: int, draw: int) -> list[int]:
    length = model.lengths[_choose([w for _, w in model.lengths], _uniform(seed, draw, "length"))][0]
    labels = [_choose(model.start, _uniform(seed, draw, "0"))]
    for step in range(1, length):
        labels.append(_choose(model.transitions[labels[-1]], _uniform(seed, draw, str(step))))
    return labels


def draw_plan(model: PlanModel, seed: int, target_label: int | None = None) -> list[int]:
    """The label sequence of one request (its length is the plan's); it holds ``target_label`` when given."""
    for draw in range(_TARGET_TRIES):
        labels = _draw(model, seed, draw)
        if target_label is None or target_label in labels:
            return labels
    position = int(_uniform(seed, _TARGET_TRIES, "position") * len(labels))
    labels[position] = target_label
    return labels


def benchmark_plan_model(benchmark: Benchmark, mode: str, turns: tuple[int, int]) -> PlanModel:
    """``plan_model`` of the shipped statistics of ``benchmark``."""
    return plan_model(benchmark_statistics(benchmark.name), mode, turns)
