"""Annotations back from Label Studio: ``human_labels.parquet`` and ``review.json``.

The parquet holds one row per annotation, keyed by dialogue id and turn, with the human label and a pseudonym of
the annotator: the first 12 hex digits of SHA-256 over a salt and Label Studio's user id. Why salted: user ids
are small integers, so an unsalted hash is reversed by trying them all. The salt is never written; the same salt
(``--salt``) gives the same pseudonyms on a later import, a fresh random one unlinks them. No utterance text is
written, so a review of a real benchmark's split stores none of its text.

``review.json`` holds the agreement figures (:mod:`.agreement`) and how the sample was drawn, read back from the
tasks' ``meta`` that the export wrote.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .agreement import alpha_with_ci, kappa_with_ci
from .client import ReviewError
from .label_config import CHOICES_NAME
from .sources import GOLD, ReviewSource
from .tasks import META_KEY, RANDOM, SUSPECT

HUMAN_LABELS = "human_labels.parquet"
REVIEW_JSON = "review.json"
REVIEW_FORMAT_VERSION = 1


def pseudonym(user: Any, salt: str) -> str:
    user_id = user.get("id") if isinstance(user, Mapping) else user
    return hashlib.sha256(f"{salt}:{user_id}".encode()).hexdigest()[:12]


def _choice(annotation: Mapping[str, Any]) -> str | None:
    for result in annotation.get("result") or []:
        if result.get("from_name") == CHOICES_NAME and result.get("type") == "choices":
            choices = (result.get("value") or {}).get("choices") or []
            if len(choices) == 1:
                return choices[0]
    return None


def annotation_rows(exported: Sequence[Mapping[str, Any]], source: ReviewSource, salt: str,
                    project: str) -> tuple[list[dict], Counter]:
    """One row per usable annotation (the last one per annotator and task), and counts of what was left out."""
    labels = list(source.benchmark.labels)
    left_out: Counter = Counter()
    latest: dict[tuple[str, str], dict] = {}
    foreign = 0
    for task in exported:
        record = (task.get("meta") or {}).get(META_KEY) or {}
        key = record.get("key") or (task.get("data") or {}).get("key")
        item = source.items.get(key)
        if item is None:
            foreign += 1
            continue
        for annotation in sorted(task.get("annotations") or [], key=lambda a: str(a.get("updated_at"))):
            if annotation.get("was_cancelled"):
                left_out["skipped by the annotator"] += 1
                continue
            choice = _choice(annotation)
            if choice is None or choice not in labels:
                left_out["no single known label"] += 1
                continue
            annotator = pseudonym(annotation.get("completed_by"), salt)
            latest[(key, annotator)] = {
                "dialogue_id": item.dialogue_id, "turn": item.turn, "split": item.split, "annotator": annotator,
                "human_label": choice, "human_label_id": labels.index(choice),
                "drawn_as": record.get("drawn_as", RANDOM), "order": record.get("order"),
            }
    if exported and foreign == len(exported):
        raise ReviewError(f"--project {project}: none of its {len(exported)} tasks is an utterance of "
                          f"{source.name}; was it exported from another set or split?")
    if foreign:
        left_out["tasks not in the reviewed source"] = foreign
    rows = sorted(latest.values(), key=lambda r: (r["order"] if r["order"] is not None else 1 << 30,
                                                  r["dialogue_id"], r["turn"], r["annotator"]))
    return rows, left_out


def sampling_record(exported: Sequence[Mapping[str, Any]]) -> dict:
    """How the project's tasks were drawn, from their ``meta`` (suspects first or not, seeds, population)."""
    records = [(t.get("meta") or {}).get(META_KEY) or {} for t in exported]
    drawn = Counter(r.get("drawn_as", "unknown") for r in records)
    seeds = sorted({r["seed"] for r in records if "seed" in r})
    population = max((r.get("population", 0) for r in records), default=0)
    seed_text = ", ".join(map(str, seeds)) or "unknown"
    if drawn[SUSPECT]:
        method = (f"the audit's {drawn[SUSPECT]} most likely label errors (cleanlab suspects) first, then "
                  f"{drawn[RANDOM]} drawn uniformly at random without replacement (seed {seed_text}) from the "
                  f"other utterances, out of {population} labelled utterances")
    else:
        method = (f"{drawn[RANDOM]} utterances drawn uniformly at random without replacement (seed {seed_text}) "
                  f"from {population} labelled utterances")
    return {"tasks": len(exported), "suspects": drawn[SUSPECT], "random": drawn[RANDOM], "seeds": seeds,
            "population": population, "method": method}


def review_summary(rows: Sequence[Mapping[str, Any]], source: ReviewSource, exported: Sequence[Mapping[str, Any]],
                   left_out: Mapping[str, int], project: str, seed: int = 0) -> dict:
    """The figures of ``review.json``: kappa against the reviewed labels, against the judge, and between people."""
    num_labels = source.benchmark.num_labels
    by_task: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_task.setdefault(f"{row['dialogue_id']}#{row['turn']}", []).append(row)
    reference = [[(r["human_label_id"], source.items[k].label) for r in task] for k, task in by_task.items()]
    reference_name = "human_vs_gold" if source.label_kind == GOLD else "human_vs_synthetic"
    agreement: dict[str, Any] = {reference_name: kappa_with_ci(reference, num_labels, seed)}
    if source.audited:
        judged = [[(r["human_label_id"], source.items[k].judge_label) for r in task
                   if source.items[k].judge_label is not None] for k, task in by_task.items()]
        agreement["human_vs_judge"] = kappa_with_ci(judged, num_labels, seed)
    else:
        agreement["human_vs_judge"] = None
    agreement["inter_annotator"] = alpha_with_ci([{r["annotator"]: r["human_label_id"] for r in task}
                                                  for task in by_task.values()], seed)
    return {
        "format_version": REVIEW_FORMAT_VERSION,
        "benchmark": source.benchmark.name,
        "source": source.name,
        "labels_reviewed": source.label_kind,
        "judge": source.judge,
        "project": project,
        "tasks": len(exported),
        "tasks_labelled": len(by_task),
        "annotations": len(rows),
        "annotators": len({r["annotator"] for r in rows}),
        "left_out": dict(left_out),
        "sampling": sampling_record(exported),
        "agreement": agreement,
        "pseudonymisation": "annotator ids replaced by the first 12 hex digits of SHA-256(salt:user id); the salt "
                            "is not stored",
    }


def write_review(rows: Sequence[Mapping[str, Any]], summary: Mapping[str, Any], out_dir: Path) -> dict[str, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    out_dir.mkdir(parents=True, exist_ok=True)
    schema = pa.schema([("dialogue_id", pa.string()), ("turn", pa.int32()), ("split", pa.string()),
                        ("annotator", pa.string()), ("human_label", pa.string()), ("human_label_id", pa.int32()),
                        ("drawn_as", pa.string()), ("order", pa.int32())])
    paths = {"human_labels": out_dir / HUMAN_LABELS, "review": out_dir / REVIEW_JSON}
    pq.write_table(pa.Table.from_pylist(list(rows), schema=schema), paths["human_labels"])
    paths["review"].write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
    return paths
