"""The label distribution figure: one panel per benchmark, series (natural / balanced / real) side by side.

Log-scale horizontal bars because benchmark label frequencies span two orders of magnitude (MELD: 4710
neutral against 268 fear in train); on a linear axis the rare emotions, the ones balanced mode exists for,
would be invisible. The input is ``{benchmark: {series: counts}}``, so a caller holding all six runs and the
real data draws the full figure, and a single build draws its own benchmark with whatever series it has.

Figures are made with the object API (``Figure`` on an Agg canvas), never through ``pyplot``: a library that
called ``matplotlib.use`` or opened pyplot figures would change the backend and figure list of the notebook or
application that imported it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from erc_synth.dataset_scripts.core.registry import get_benchmark

from .divergence import counts_vector

#: Series drawn in this order (others follow alphabetically), with fixed colours so figures agree.
SERIES_ORDER: tuple[str, ...] = ("natural", "balanced", "real")
COLOURS: Mapping[str, str] = {"natural": "#1f77b4", "balanced": "#ff7f0e", "real": "#2ca02c"}

Distributions = Mapping[str, Mapping[str, Mapping[str, int] | Sequence[int]]]


def ordered_series(names: Sequence[str]) -> list[str]:
    known = [s for s in SERIES_ORDER if s in names]
    return known + sorted(s for s in names if s not in SERIES_ORDER)


def label_distribution_figure(distributions: Distributions) -> Figure:
    """Build the figure (not saved): panel per benchmark, a bar per (label, series), log-scaled counts."""
    if not distributions or not any(distributions.values()):
        raise ValueError("no label distributions to plot")
    benchmarks = [b for b in distributions if distributions[b]]
    fig = Figure(figsize=(4.6 * len(benchmarks), 4.2))
    FigureCanvasAgg(fig)  # draws without pyplot, so the user's backend and open figures are never touched
    axes = fig.subplots(1, len(benchmarks), squeeze=False)
    for ax, name in zip(axes[0], benchmarks, strict=True):
        benchmark = get_benchmark(name)
        labels = list(benchmark.labels)
        series = ordered_series(list(distributions[name]))
        height = 0.8 / len(series)
        for k, series_name in enumerate(series):
            counts = counts_vector(distributions[name][series_name], labels)
            positions = [i - 0.4 + height * (k + 0.5) for i in range(len(labels))]
            ax.barh(positions, counts, height=height, label=series_name,
                    color=COLOURS.get(series_name), log=True)
        ax.set_yticks(range(len(labels)), labels)
        ax.invert_yaxis()  # canonical label order reads top to bottom
        ax.set_xscale("log")
        ax.set_xlabel("utterances (log scale)")
        ax.set_title(benchmark.display_name)
        ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    return fig


def save_label_distribution_plot(distributions: Distributions, path: str | Path) -> Path:
    """Render the figure to PNG; metadata holds no date, so the same counts give the same bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = label_distribution_figure(distributions)
    fig.savefig(path, format="png", dpi=100, metadata={"Software": None})
    return path
