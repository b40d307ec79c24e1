"""What a review looks at: a built synthetic set (its labels, and its audit when one ran) or a real split.

The same round trip over a real benchmark's test split, whose labels are the benchmark's own annotators', gives
the human ceiling: how far people agree with gold labels at all, beside which the synthetic figure is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from erc_synth.dataset_scripts.core.errors import ErcSynthError
from erc_synth.dataset_scripts.core.registry import SPLITS, Benchmark

from .tasks import ReviewItem

#: Where a built folder keeps the audit's per-utterance judgements (``classifiers.audit.report``).
JUDGEMENTS = Path("audit") / "judgements.parquet"
SYNTHETIC = "synthetic"
GOLD = "gold"


@dataclass(frozen=True)
class ReviewSource:
    """The reviewed utterances by key, what their labels are (``synthetic`` or ``gold``) and whether an audit ran."""

    name: str
    benchmark: Benchmark
    label_kind: str
    items: dict[str, ReviewItem]
    audited: bool
    judge: str | None = None


def _judgements(folder: Path) -> tuple[dict[tuple[str, str, int], tuple[int, int | None]], str | None]:
    import json

    import pyarrow.parquet as pq

    path = folder / JUDGEMENTS
    if not path.is_file():
        return {}, None
    table = pq.read_table(path).to_pylist()
    audit_json = folder / "audit" / "audit.json"
    judge = json.loads(audit_json.read_text())["judge"].get("id") if audit_json.is_file() else None
    return {(r["split"], r["dialogue_id"], int(r["turn"])): (int(r["judge_label"]), r["suspect_rank"])
            for r in table}, judge


def _items(dialogues, splits: list[str], judgements=None) -> dict[str, ReviewItem]:
    items: dict[str, ReviewItem] = {}
    for split in splits:
        dataset = dialogues[split]
        for dialogue_id, speakers, texts, labels in zip(dataset["dialogue_id"], dataset["speakers"],
                                                         dataset["utterances"], dataset["emotions"], strict=True):
            for turn, label in enumerate(labels):
                if label < 0:
                    continue
                judge, rank = (judgements or {}).get((split, dialogue_id, turn), (None, None))
                item = ReviewItem(split=split, dialogue_id=str(dialogue_id), turn=turn, speakers=tuple(speakers),
                                  utterances=tuple(texts), label=int(label), judge_label=judge, suspect_rank=rank)
                if item.key in items:
                    raise ErcSynthError(f"dialogue id {dialogue_id!r} appears in more than one split; review one "
                                        "split at a time (--split)")
                items[item.key] = item
    return items


def _splits(available, split: str | None, flag: str) -> list[str]:
    if split is None:
        return [s for s in SPLITS if s in available]
    if split not in available:
        raise ErcSynthError(f"{flag} {split}: no such split (available: {', '.join(available)})")
    return [split]


def synthetic_source(dataset: str, benchmark: Benchmark, split: str | None = None) -> ReviewSource:
    """A built set (folder or Hub id) of ``benchmark``; a folder's audit judgements are joined in when present."""
    from erc_synth.classifiers.data import load_synthetic

    dialogues = load_synthetic(benchmark, dataset)
    folder = Path(dataset)
    judgements, judge = _judgements(folder) if folder.is_dir() else ({}, None)
    items = _items(dialogues, _splits(dialogues, split, "--split"), judgements)
    return ReviewSource(name=dataset, benchmark=benchmark, label_kind=SYNTHETIC, items=items,
                        audited=bool(judgements), judge=judge)


def real_source(real_data: str, benchmark: Benchmark, split: str) -> ReviewSource:
    """One split of the real benchmark (its gold labels), read from its original files."""
    from erc_synth.classifiers.data import load_real

    dialogues = load_real(benchmark, real_data)
    items = _items(dialogues, _splits(dialogues, split, "--split"))
    return ReviewSource(name=f"{benchmark.display_name} {split} split (real)", benchmark=benchmark,
                        label_kind=GOLD, items=items, audited=False)
