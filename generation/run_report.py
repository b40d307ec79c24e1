"""What a RUN_DIR holds: accepted and rejected counts, rejections by reason, and the realised label distribution.

For balanced runs it also sets the realised per-emotion counts against the goal (an equal share per label) and
says, per target emotion, how many accepted dialogues were asked for it. Read-only: works on a run in progress.
The counting itself is ``RunStore.summary()``; this module only names labels and lays the figures out.
(Not called ``inspect``: a module of that name would shadow the standard library's inside this package.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from erc_synth.dataset_scripts.core.registry import get_benchmark
from erc_synth.dataset_scripts.run_store import RunStore


def summarize_run(run_dir: str | Path) -> dict[str, Any]:
    """A JSON-ready summary of a RUN_DIR (see the module docstring)."""
    store = RunStore.open(run_dir)
    settings = store.settings
    benchmark = get_benchmark(settings["benchmark"])
    counts = store.summary()
    total = counts.utterances
    distribution = {
        label: {"count": counts.label_counts.get(i, 0),
                "share": round(counts.label_counts.get(i, 0) / total, 4) if total else 0.0}
        for i, label in enumerate(benchmark.labels)
    }
    summary: dict[str, Any] = {
        "run_dir": str(store.run_dir),
        "benchmark": benchmark.name,
        "mode": settings.get("mode"),
        "requested": counts.requested,
        "accepted": counts.accepted,
        "exhausted": len(counts.exhausted),
        "unfinished": counts.unfinished,
        "requests": counts.requests,
        "rejected": counts.rejected,
        "rejected_by_reason": counts.rejected_by_reason,
        "utterances": total,
        "label_distribution": distribution,
        "model": {k: store.provenance.get(k) for k in ("model_id", "model_sha", "server_version")},
        "history": store.history,
    }
    if settings.get("mode") == "balanced":
        goal = 1 / benchmark.num_labels
        summary["target_hit_share"] = counts.target_hit_share
        summary["target_utterance_share"] = counts.target_utterance_share
        summary["balance"] = {
            label: {
                "targeted_dialogues": counts.targeted_dialogues.get(i, 0),
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
    if balance and summary.get("target_hit_share") is not None:
        lines.append(f"target emotion present in {summary['target_hit_share']:.1%} of accepted dialogues, "
                     f"{summary['target_utterance_share']:.1%} of their utterances")
    header = f"  {'emotion':<12} {'count':>7} {'share':>7}"
    lines.append("realised label distribution:" if not balance else "realised label distribution vs goal:")
    lines.append(header + (f" {'goal':>7} {'gap':>7} {'targeted':>9}" if balance else ""))
    for label, row in summary["label_distribution"].items():
        line = f"  {label:<12} {row['count']:>7} {row['share']:>7.1%}"
        if balance:
            b = balance[label]
            line += f" {b['goal_share']:>7.1%} {b['gap']:>+7.1%} {b['targeted_dialogues']:>9}"
        lines.append(line)
    if len(summary.get("history") or []) > 1:
        lines.append("grown: " + " -> ".join(f"{h.get('num_dialogues')} ({h.get('time')})" for h in summary["history"]))
    return "\n".join(lines)
