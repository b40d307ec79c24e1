"""The dataset card's "Human review" section, rendered from ``review.json`` (and the real split's, when given).

Why the sampling sentence comes first: a kappa over cleanlab suspects is not a kappa over the set, and a reader
must know which of the two the table shows before reading it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ROWS = (
    ("human_vs_synthetic", "Cohen's kappa, human label vs this set's label"),
    ("human_vs_gold", "Cohen's kappa, human label vs the benchmark's gold label"),
    ("human_vs_judge", "Cohen's kappa, human label vs the audit judge's label"),
    ("inter_annotator", "Krippendorff's alpha between annotators (tasks labelled by 2+)"),
)


def _cell(figure: Mapping[str, Any] | None) -> str:
    if not figure or figure.get("value") is None:
        return "n/a"
    ci = figure.get("ci")
    interval = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
    return f"{figure['value']:.3f}{interval} (n={figure['n']})"


def people_checked(review: Mapping[str, Any] | None) -> str:
    """The card's limitation sentence: how many labels people checked."""
    if not review:
        return "and were not checked by people"
    return (f"and people checked only a sample of {review['tasks_labelled']} of them (see Human review), not "
            "every label")


def render_section(review: Mapping[str, Any], ceiling: Mapping[str, Any] | None = None) -> str:
    """Markdown for the card: the sample, then each figure with its 95% interval, beside the real split's."""
    sampling = review["sampling"]
    agreement = review["agreement"]
    lines = [
        "## Human review",
        "",
        f"{review['annotators']} annotator(s) labelled {review['tasks_labelled']} of {review['tasks']} utterances "
        f"({review['annotations']} annotations) in Label Studio, each shown in its dialogue without the label "
        f"under review. The sample: {sampling['method']}.",
        "",
    ]
    header = "| measure | this set |" + (" real test split (human ceiling) |" if ceiling else "")
    lines += [header, "|---|---:|" + ("---:|" if ceiling else "")]
    other = (ceiling or {}).get("agreement") or {}
    for key, text in ROWS:
        if key not in agreement and key not in other:
            continue
        if key == "human_vs_gold" and key not in agreement:  # the ceiling's own row
            lines.append(f"| {text} | | {_cell(other.get(key))} |")
            continue
        lines.append(f"| {text} | {_cell(agreement.get(key))} |" + (f" {_cell(other.get(key))} |" if ceiling else ""))
    lines += ["", "Figures are point estimates with 95% percentile bootstrap intervals over tasks (1000 resamples); "
                  "n counts tasks. Annotator ids are pseudonymised."]
    if ceiling:
        lines += ["", f"The human ceiling is the same round trip over the real benchmark's split: "
                      f"{ceiling['sampling']['method']}."]
    return "\n".join(lines) + "\n"
