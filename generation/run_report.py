"""What a RUN_DIR holds: accepted and rejected counts, rejections by reason, and the realised label distribution.

For balanced runs it also sets the realised per-emotion counts against the goal (an equal share per label) and
says, per target emotion, how many accepted dialogues were asked for it. Read-only: works on a run in progress.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from erc_synth.dataset_scripts.registry import get_benchmark
from erc_synth.dataset_scripts.run_store import RunStore


def summarize_run(run_dir: str | Path) -> dict[str, Any]:
    """A JSON-ready summary of a RUN_DIR (see the module docstring)."""
    store = RunStore.open(run_dir)
    settings = store.settings
    benchmark = get_benchmark(settings["benchmark"])
    records = store.records()
    accepted = store.accepted()
    rejected = [r for r in records if r["status"] == "rejected"]
    max_attempts = int(settings.get("max_attempts") or 1)
    attempts: Counter[int] = Counter(r["index"] for r in records)
    done = {r["index"] for r in accepted}
    exhausted = sorted(i for i, n in attempts.items() if i not in done and n >= max_attempts)
    realised = Counter(label for r in accepted for label in r["emotions"])
    total_utterances = sum(realised.values())
    distribution = {
        label: {"count": realised.get(i, 0),
                "share": round(realised.get(i, 0) / total_utterances, 4) if total_utterances else 0.0}
        for i, label in enumerate(benchmark.labels)
    }
    summary: dict[str, Any] = {
        "run_dir": str(store.run_dir),
        "benchmark": benchmark.name,
        "mode": settings.get("mode"),
        "requested": settings.get("num_dialogues"),
        "accepted": len(accepted),
        "exhausted": len(exhausted),
        "unfinished": int(settings.get("num_dialogues") or 0) - len(accepted) - len(exhausted),
        "requests": len(records),
        "rejected": len(rejected),
        "rejected_by_reason": dict(sorted(Counter(r.get("reason") or "unknown" for r in rejected).items())),
        "utterances": total_utterances,
        "label_distribution": distribution,
        "model": {k: store.provenance.get(k) for k in ("model_id", "model_sha", "server_version")},
    }
    if settings.get("mode") == "balanced":
        targeted = Counter(r.get("target_emotion") for r in accepted)
        goal = 1 / benchmark.num_labels
        summary["balance"] = {
            label: {
                "targeted_dialogues": targeted.get(i, 0),
                "goal_share": round(goal, 4),
                "realised_share": distribution[label]["share"],
                "gap": round(distribution[label]["share"] - goal, 4),
            }
            for i, label in enumerate(benchmark.labels)
        }
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as the text ``erc-synth inspect`` prints."""
    lines = [
        f"{summary['run_dir']}: {summary['benchmark']} {summary['mode']}, model {summary['model']['model_id']}",
        f"accepted {summary['accepted']}/{summary['requested']} dialogues ({summary['utterances']} utterances), "
        f"{summary['exhausted']} out of attempts, {summary['unfinished']} unfinished; "
        f"{summary['requests']} requests, {summary['rejected']} rejected",
    ]
    if summary["rejected_by_reason"]:
        lines.append("rejected by reason:")
        lines += [f"  {reason:<20} {count}" for reason, count in summary["rejected_by_reason"].items()]
    balance = summary.get("balance")
    header = f"  {'emotion':<12} {'count':>7} {'share':>7}"
    lines.append("realised label distribution:" if not balance else "realised label distribution vs goal:")
    lines.append(header + (f" {'goal':>7} {'gap':>7} {'targeted':>9}" if balance else ""))
    for label, row in summary["label_distribution"].items():
        line = f"  {label:<12} {row['count']:>7} {row['share']:>7.1%}"
        if balance:
            b = balance[label]
            line += f" {b['goal_share']:>7.1%} {b['gap']:>+7.1%} {b['targeted_dialogues']:>9}"
        lines.append(line)
    return "\n".join(lines)
