"""Write a quality report: ``quality.json`` (the dict), ``quality.md`` (a table) and ``quality.png`` (plots)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from erc_synth.dataset_scripts.core.atomic_io import write_bytes_atomic, write_json_atomic
from erc_synth.dataset_scripts.quality_corpus import QUALITY_JSON, figure, measure_rows

from . import metrics as m

QUALITY_MD = "quality.md"
QUALITY_PNG = "quality.png"


def render_markdown(report: Mapping[str, Any]) -> str:
    """``quality.md``: the measures side by side, what the gates would drop of the real text, what is missing."""
    lines = [f"# Data quality: {report.get('dataset') or report['benchmark']}", "",
             f"Real benchmark: {report.get('real') or 'none given'}.", "",
             "| measure | synthetic | real | what it measures |", "|---|---:|---:|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in measure_rows(report)]
    drops = report.get("gate_drop_shares") or {}
    lines += ["", "Share of utterances the bad-line gate removes with the build's settings "
              f"({json.dumps(report['settings']['gates'])}):", "",
              "| gate | synthetic | real |", "|---|---:|---:|"]
    for gate in ("gibberish_utterance", "bare_label_utterance", "bad_line_dialogue", "total"):
        real = (drops.get("real") or {}).get(gate)
        lines.append(f"| {gate} | {figure((drops.get('synthetic') or {}).get(gate))} | {figure(real)} |")
    if report.get("missing"):
        lines += ["", "Missing figures:", ""]
        lines += [f"- `{name}`: {why}" for name, why in report["missing"].items()]
    return "\n".join(lines) + "\n"


def save_plots(synthetic: Sequence[m.Dialogue], real_test: Sequence[m.Dialogue] | None,
               real_train: Sequence[m.Dialogue] | None, label_names: Sequence[str], path: Path) -> Path:
    """Utterance lengths, turns per dialogue and label distributions, synthetic beside real."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from erc_synth.dataset_scripts.gates import words

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    sides = [("synthetic", synthetic), ("real test", real_test or [])]
    lengths = {name: [len(words(u)) for d in corpus for u in d.utterances] for name, corpus in sides}
    bins = np.arange(0, 41, 2)
    for name, values in lengths.items():
        if values:
            axes[0].hist(np.clip(values, 0, 40), bins=bins, density=True, alpha=0.5, label=name)
    axes[0].set(title="words per utterance", xlabel="words (40+ in the last bin)", ylabel="density")
    turns = {name: [len(d.utterances) for d in corpus] for name, corpus in sides}
    top = max([max(v) for v in turns.values() if v] + [1])
    for name, values in turns.items():
        if values:
            axes[1].hist(values, bins=np.arange(0, top + 2), density=True, alpha=0.5, label=name)
    axes[1].set(title="turns per dialogue", xlabel="turns", ylabel="density")
    x = np.arange(len(label_names))
    series = [("synthetic", synthetic), ("real train", real_train or [])]
    for offset, (name, corpus) in zip((-0.2, 0.2), series, strict=True):
        counts = m.label_counts(corpus, len(label_names))
        if counts.sum():
            axes[2].bar(x + offset, counts / counts.sum(), width=0.4, label=name)
    axes[2].set_xticks(x, label_names, rotation=45, ha="right")
    axes[2].set(title="label distribution", ylabel="share of utterances")
    for axis in axes:
        if axis.get_legend_handles_labels()[0]:
            axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_report(report: Mapping[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Write ``quality.json`` and ``quality.md`` into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / QUALITY_JSON, "markdown": out / QUALITY_MD}
    write_json_atomic(paths["json"], report)
    write_bytes_atomic(paths["markdown"], render_markdown(report).encode("utf-8"))
    return paths
