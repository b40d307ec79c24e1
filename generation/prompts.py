"""Prompt templates: one per benchmark and mode, stored as versioned data files under ``templates/<version>/``.

Why files and not code: a run records the template texts verbatim in its manifest (``prompt_templates``), so a
dataset can always be traced to the exact words that produced it, and changing a prompt means adding a new
version folder rather than silently editing what earlier runs used.

Each template has three parts: (1) the task (turn range, speakers, setting; for ``balanced`` "make sure that at
least one utterance expresses <emotion>" without saying which turn), (2) the labels as numbered options, and
(3) the line structure ``Speaker: utterance (N)`` that ``generation.parsing`` reads back.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from string import Template

from erc_synth.dataset_scripts.errors import ErcSynthError
from erc_synth.dataset_scripts.registry import MODES, Benchmark

#: The template version new runs use; older folders stay so that their runs remain explainable.
PROMPT_VERSION = "v1"


@cache
def template_text(benchmark: str, mode: str, version: str = PROMPT_VERSION) -> str:
    """The raw template text for a benchmark and mode (``$placeholders`` not yet filled)."""
    if mode not in MODES:
        raise ErcSynthError(f"unknown mode {mode!r}; choose one of: {', '.join(MODES)}")
    resource = resources.files("erc_synth.generation") / "templates" / version / f"{benchmark}_{mode}.txt"
    if not resource.is_file():
        raise ErcSynthError(f"no prompt template {version}/{benchmark}_{mode}.txt in generation/templates")
    return resource.read_text(encoding="utf-8")


def templates_for_run(benchmark: Benchmark, mode: str, version: str = PROMPT_VERSION) -> dict[str, str]:
    """The template texts a run uses, keyed by file name, for the manifest's ``prompt_templates``."""
    return {f"{benchmark.name}_{mode}.txt": template_text(benchmark.name, mode, version)}


def label_options(benchmark: Benchmark) -> str:
    """The labels as numbered options, one per line (``0: neutral``...)."""
    return "\n".join(f"{i}: {label}" for i, label in enumerate(benchmark.labels))


def render_prompt(
    benchmark: Benchmark,
    mode: str,
    *,
    turns: tuple[int, int] | None = None,
    target_label: int | None = None,
    version: str = PROMPT_VERSION,
) -> str:
    """Fill a template; ``target_label`` (a label index) is required in balanced mode and refused otherwise."""
    min_turns, max_turns = turns or benchmark.turns
    if (mode == "balanced") != (target_label is not None):
        raise ValueError(f"mode {mode!r} {'needs' if mode == 'balanced' else 'takes no'} target_label")
    values = {
        "min_turns": min_turns,
        "max_turns": max_turns,
        "setting": benchmark.setting,
        "speakers": ", ".join(benchmark.speakers),
        "label_options": label_options(benchmark),
    }
    if target_label is not None:
        values["target_emotion"] = benchmark.labels[target_label]
    return Template(template_text(benchmark.name, mode, version)).substitute(values).strip()


def build_messages(
    benchmark: Benchmark,
    mode: str,
    *,
    turns: tuple[int, int] | None = None,
    target_label: int | None = None,
    version: str = PROMPT_VERSION,
) -> tuple[dict[str, str], ...]:
    """The chat messages of one request: a single user turn (the backend applies the model's chat format)."""
    content = render_prompt(benchmark, mode, turns=turns, target_label=target_label, version=version)
    return ({"role": "user", "content": content},)
