"""Seeds and balanced targets derived from (run seed, index, attempt) alone.

Why derived and not drawn from one RNG stream: with concurrency, requests finish in any order, and a resumed
run skips what is done. A seed that is a pure function of (run seed, index, attempt) makes any dialogue
reproducible on its own, whatever ran before it, so a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

#: TGI takes a u64 seed, transformers' ``torch.manual_seed`` an int64: stay below 2**63 for both.
SEED_LIMIT = 2**63


def derive_seed(run_seed: int, index: int, attempt: int = 0) -> int:
    """The request seed of (run seed, index, attempt): sha256 of the triple, truncated below 2**63."""
    digest = hashlib.sha256(f"erc-synth/v1/{run_seed}/{index}/{attempt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % SEED_LIMIT


def cyclic_target(index: int, num_labels: int) -> int:
    """Balanced mode's target emotion without steering: the label set taken in turn (index mod labels)."""
    return index % num_labels


def steered_targets(first_index: int, count: int, realised: Sequence[int]) -> list[int]:
    """Targets of one steering wave from ``realised``: per-label utterance counts (in label order) of the
    dialogues accepted in earlier waves.

    Greedy and deterministic: each slot goes to the label with the lowest projected count (ties broken in
    cyclic order starting at the slot's own index, so that equal counts still cycle), and an assigned target
    adds one to its projection (a balanced dialogue is only known to hold at least one such utterance).
    """
    num_labels = len(realised)
    projected = [int(c) for c in realised]
    targets = []
    for slot in range(count):
        offset = (first_index + slot) % num_labels
        order = [(offset + k) % num_labels for k in range(num_labels)]
        label = min(order, key=lambda lab: projected[lab])  # min keeps the first of equal values
        targets.append(label)
        projected[label] += 1
    return targets
