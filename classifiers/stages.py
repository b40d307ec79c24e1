"""Experiment stages shared by several cells: TODKAT's topic pre-training per benchmark, and its knowledge cache.

Why stages: the study's TODKAT pre-trains its topic layer by masked LM on each dataset once, then every TODKAT
cell of that benchmark (every regime and seed) starts from that checkpoint; and the COMET relations of an
utterance do not depend on the cell, so one knowledge cache serves them all. A stage folder is finished when
its ``stage.json`` exists (written last, atomically), so an interrupted stage is redone and a finished one is
reused; a stage made with other settings is refused, like a cell result.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from erc_synth.dataset_scripts.core.errors import ErcSynthError

from . import ranks

STAGE_RECORD = "stage.json"


def stage_fingerprint(encoder: str, settings: object, texts: Sequence[str]) -> str:
    """Hash of what determines a topic checkpoint: the encoder, the settings and the exact texts."""
    digest = hashlib.sha256()
    digest.update(json.dumps([encoder, asdict(settings)], sort_keys=True, default=str).encode())
    for text in texts:
        digest.update(text.encode() + b"\0")
    return digest.hexdigest()[:16]


def topic_checkpoint(out_dir: Path, benchmark: str, encoder: str, texts: Sequence[str], settings,
                     log: Callable[[str], None] = print) -> str:
    """The benchmark's topic-pretrained checkpoint folder under ``out_dir/stages/topics``, trained once.

    Cells running at once on the output folder (Ray tasks, on one node or several over a shared filesystem)
    take a file lock, so one trains while the others wait and then reuse it.
    Under a data-parallel launcher the ranks train it together instead (a lock would stall the collective
    calls); rank 0 writes it and the others wait at a barrier before they read it.
    """
    import fcntl

    folder = Path(out_dir) / "stages" / "topics" / benchmark
    folder.parent.mkdir(parents=True, exist_ok=True)
    if ranks.world_size() > 1:
        path = _topic_checkpoint_locked(folder, benchmark, encoder, texts, settings, log)
        ranks.barrier()
        return path
    with open(folder.parent / f".{benchmark}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _topic_checkpoint_locked(folder, benchmark, encoder, texts, settings, log)


def _topic_checkpoint_locked(folder: Path, benchmark: str, encoder: str, texts: Sequence[str], settings,
                             log: Callable[[str], None]) -> str:
    record = folder / STAGE_RECORD
    fingerprint = stage_fingerprint(encoder, settings, texts)
    if record.is_file():
        stored = json.loads(record.read_text())
        if stored.get("fingerprint") != fingerprint:
            raise ErcSynthError(f"{record}: the topic pre-training there was made with other settings or data; "
                                "use another output folder or delete that stage folder to redo it")
        log(f"topic pre-training {benchmark}: done earlier, reused ({folder})")
        return str(folder)
    from erc_synth.dataset_scripts.core.atomic_io import write_json_atomic

    from .todkat.training import train_topics

    log(f"topic pre-training {benchmark}: masked LM on {len(texts)} utterances")
    metrics = train_topics(encoder, texts, folder, settings)
    if not ranks.is_main_process():
        return str(folder)
    write_json_atomic(record, {"fingerprint": fingerprint, "benchmark": benchmark, "encoder": encoder,
                               "settings": asdict(settings), "utterances": len(texts), "metrics": metrics})
    return str(folder)


def knowledge_cache_dir(out_dir: Path) -> str:
    """The one knowledge cache folder every TODKAT cell of an experiment shares."""
    return str(Path(out_dir) / "stages" / "knowledge")
