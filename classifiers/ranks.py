"""Data-parallel ranks of one cell: who may write, and how rank 0 tells the other ranks which cell to train.

Why rank 0 decides: under ``torchrun`` or ``accelerate launch`` every rank runs the same ``erc-synth experiment``
loop, but a cell must be trained by all ranks together and written once. Rank 0 alone chooses each cell and
broadcasts it; every rank trains (the Trainer wraps the model in DDP from the launcher's environment);
rank 0 alone writes the cell file, the model, its card and the tables.
"""

from __future__ import annotations

import os
from typing import Any


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main_process() -> bool:
    return rank() == 0


def start() -> None:
    """Join the launcher's process group now (gloo on CPU, nccl on GPUs), before the first broadcast."""
    if world_size() > 1:
        import torch
        from accelerate import PartialState

        PartialState(cpu=not torch.cuda.is_available())


def broadcast(value: Any) -> Any:
    """Rank 0's ``value`` on every rank (a picklable object); a no-op without a launcher."""
    if world_size() == 1:
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if world_size() > 1:
        import torch.distributed as dist

        dist.barrier()


def applied_world_size() -> int:
    """The process group's size as training used it (1 when no group was formed)."""
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
