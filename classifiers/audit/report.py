"""Writing an audit: ``audit.json`` (the fixed keys other tools read), ``audit.md`` and the confusion matrix.

The figure uses matplotlib's object API (``Figure`` + ``FigureCanvasAgg``) and never ``matplotlib.use``, so
writing an audit does not change the plotting backend of a notebook or program that called it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .auditing import AuditResult

AUDIT_JSON = "audit.json"
AUDIT_MD = "audit.md"
CONFUSION_PNG = "confusion_matrix.png"
#: One row per audited utterance: its key, the LLM's and the judge's label ids, and its suspect rank (or null).
JUDGEMENTS_PARQUET = "judgements.parquet"


def row_normalised(confusion: np.ndarray) -> np.ndarray:
    """Each row (an LLM label) divided by its total; rows of a label the LLM never used stay 0."""
    totals = confusion.sum(axis=1, keepdims=True)
    return np.divide(confusion, totals, out=np.zeros(confusion.shape, dtype=float), where=totals > 0)


def plot_confusion(result: AuditResult, path: Path) -> Path:
    """The row-normalised confusion matrix (rows: the LLM's labels, columns: the judge's) as a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    matrix = row_normalised(result.confusion)
    names = list(result.label_names)
    figure = Figure(figsize=(1.0 + 0.8 * len(names), 0.8 + 0.7 * len(names)), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(matrix, vmin=0.0, vmax=1.0, cmap="Blues")
    axes.set_xticks(range(len(names)), names, rotation=45, ha="right")
    axes.set_yticks(range(len(names)), names)
    axes.set_xlabel("judge label")
    axes.set_ylabel("LLM label")
    kappa = result.summary.get("kappa")
    axes.set_title(f"LLM vs judge (row-normalised), kappa {kappa:.3f}" if kappa is not None
                   else "LLM vs judge (row-normalised)", fontsize=9)
    for (row, column), value in np.ndenumerate(matrix):
        axes.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=7,
                  color="white" if value > 0.5 else "black")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    figure.tight_layout()
    figure.savefig(path)
    return path


def _number(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def render_markdown(result: AuditResult) -> str:
    """A short human report: the headline numbers, the positional statistics beside the real ones, suspects."""
    s = result.summary
    judge = s["judge"]
    lines = [
        f"# Label-fidelity audit: {s.get('dataset') or 'dataset'} ({s['benchmark']})",
        "",
        f"Judge `{judge['id']}` ({judge['kind']}, {judge['architecture']}); its weighted F1 on the real test split: "
        f"{_number(judge.get('weighted_f1'))} (the ceiling of what this audit can see).",
        "",
        "| statistic | synthetic | real test split |",
        "|---|---:|---:|",
        f"| utterances audited | {s['num_utterances']} | |",
        f"| agreement with the judge | {_number(s['agreement'])} | |",
        f"| agreement expected by chance | {_number(s['chance_agreement'])} | |",
        f"| Cohen's kappa | {_number(s['kappa'])} | |",
        f"| mean Spearman rho (turn index, label id) | {_number(s['position_label_spearman'])} | "
        f"{_number(s['position_label_spearman_real'])} |",
        f"| share of dialogues (3+ turns) with strictly rising labels | {_number(s['monotonic_share'])} | "
        f"{_number(s['monotonic_share_real'])} |",
        "",
        "## Per label (the LLM's labels, the judge as reference)",
        "",
        "| label | precision | recall | F1 | judge support |",
        "|---|---:|---:|---:|---:|",
        *(f"| {name} | {_number(v['precision'])} | {_number(v['recall'])} | {_number(v['f1'])} | {v['support']} |"
          for name, v in s["per_label"].items()),
        "",
        f"![confusion matrix]({CONFUSION_PNG})",
        "",
        f"## Suspect utterances: {s['suspect_utterances']['count']}",
        "",
        f"Found by {s['suspect_utterances']['method']}.",
        "",
    ]
    top = s["suspect_utterances"]["top"]
    if top:
        lines += ["| split | dialogue | turn | utterance | LLM label | judge label (confidence) |",
                  "|---|---|---:|---|---|---|"]
        for e in top:
            text = f"{e['speaker']}: {e['utterance']}".replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {e['split']} | {e['dialogue_id']} | {e['turn']} | {text} | {e['llm_label']} | "
                         f"{e['judge_label']} ({e['judge_confidence']:.2f}) |")
    return "\n".join(lines) + "\n"


def judgement_rows(result: AuditResult) -> list[dict]:
    """Per utterance the audit labelled: what a later human review compares with (and samples suspects from).

    Why a file of its own: audit.json lists only the top suspects, while a review needs the judge's label of every
    utterance it samples and the full suspect order.
    """
    rank = {key: i for i, key in enumerate(result.suspect_keys)}
    rows = []
    for split, ids in result.dialogue_ids.items():
        for i, dialogue_id in enumerate(ids):
            for turn, (llm, judge) in enumerate(zip(result.llm_labels[split][i], result.judge_labels[split][i],
                                                    strict=True)):
                if llm < 0 or judge < 0:
                    continue
                rows.append({"split": split, "dialogue_id": dialogue_id, "turn": turn, "llm_label": int(llm),
                             "judge_label": int(judge), "suspect_rank": rank.get((split, dialogue_id, turn))})
    return rows


def write_judgements(result: AuditResult, path: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("split", pa.string()), ("dialogue_id", pa.string()), ("turn", pa.int32()),
                        ("llm_label", pa.int32()), ("judge_label", pa.int32()), ("suspect_rank", pa.int32())])
    pq.write_table(pa.Table.from_pylist(judgement_rows(result), schema=schema), path)
    return path


def write_audit(result: AuditResult, out_dir: Path) -> dict[str, Path]:
    """Write audit.json, audit.md, confusion_matrix.png and judgements.parquet under ``out_dir``; returns their
    paths by name."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / AUDIT_JSON, "markdown": out_dir / AUDIT_MD, "confusion_matrix": out_dir / CONFUSION_PNG,
             "judgements": out_dir / JUDGEMENTS_PARQUET}
    paths["json"].write_text(json.dumps(result.summary, indent=2, allow_nan=False) + "\n")
    write_judgements(result, paths["judgements"])
    plot_confusion(result, paths["confusion_matrix"])
    paths["markdown"].write_text(render_markdown(result))
    return paths
