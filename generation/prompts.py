"""Prompt templates: one per benchmark and mode, stored as versioned data files under ``templates/<version>/``.

Why files and not code: a run records the template texts verbatim in its manifest (``prompt_templates``), so a
dataset can always be traced to the exact words that produced it, and changing a prompt means adding a new
version folder rather than silently editing what earlier runs used.

Each template has three parts: (1) the task (turn range, speakers, setting; for ``balanced`` "make sure that at
least one utterance expresses <emotion>" without saying which turn), (2) the labels as numbered options, and
(3) the line structure ``Speaker: utterance (N)`` that ``generation.parsing`` reads back.

Versions (``TEMPLATE_VERSIONS``): ``v1`` is the project's own wording; ``paper`` is the reference study's
three-sentence structure (task, ending with the balanced clause; the numbered labels, "provide one of them for
each utterance"; the output structure); ``v2`` is ``v1`` with the label part filled per label format
(``generation.grammar.LABEL_FORMATS``): the word formats list the labels as words, unnumbered, because a
numbered list invites a small model to copy the numbers in order (see docs/label-fidelity.md).

Label order (``LABEL_ORDERS``): ``fixed`` lists the labels in the benchmark's order, as every earlier run did;
``shuffled`` lists them in an order drawn from the request's seed, so that no list position (the first entry, the
next one) can be copied from prompt to prompt. A number keeps its label (``4: sadness`` stays ``4``), so the
grammar and the parser are the same for both orders.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache
from importlib import resources
from string import Template

from erc_synth.dataset_scripts.core.errors import ErcSynthError
from erc_synth.dataset_scripts.core.registry import MODES, Benchmark

#: The template version new runs use; older folders stay so that their runs remain explainable.
PROMPT_VERSION = "v1"
#: Every template version, with what it is and the label formats it can ask for.
TEMPLATE_VERSIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "v1": ("the project's own wording, numbered labels after each utterance", ("number",)),
    "v2": ("the project's own wording, label part per label format", ("number", "word", "word_first")),
    "paper": ("the reference study's three-sentence structure (Kaplan et al. 2025, Fig. 3)", ("number",)),
}

#: How the prompt orders its label list: the benchmark's order, or an order drawn from each request's seed.
LABEL_ORDERS: tuple[str, ...] = ("fixed", "shuffled")

_LABEL_INSTRUCTIONS = {
    "number": "After each utterance, give the emotion it expresses as one number from this list:",
    "word": "After each utterance, give the emotion it expresses as one word from this list:",
    "word_first": "Before each utterance, choose the emotion the speaker feels, one word from this list, then write "
                  "words that express it:",
}
_LINE_FORMS = {
    "number": "Speaker: utterance (N)\nwhere N is the emotion number of that utterance.",
    "word": "Speaker: utterance (emotion)\nwhere emotion is the word for the emotion of that utterance.",
    "word_first": "Speaker (emotion): utterance\nwhere emotion is the word for the emotion of that utterance.",
}


def check_version(version: str, label_format: str = "number") -> None:
    """Refuse an unknown template version, or a label format the version cannot ask for."""
    if version not in TEMPLATE_VERSIONS:
        raise ErcSynthError(f"unknown prompt version {version!r}; choose one of: {', '.join(TEMPLATE_VERSIONS)}")
    formats = TEMPLATE_VERSIONS[version][1]
    if label_format not in formats:
        raise ErcSynthError(f"prompt version {version!r} asks for labels as {'/'.join(formats)}, not "
                            f"{label_format!r}; use prompt version v2 for the other label formats")


@cache
def template_text(benchmark: str, mode: str, version: str = PROMPT_VERSION) -> str:
    """The raw template text for a benchmark and mode (``$placeholders`` not yet filled)."""
    if mode not in MODES:
        raise ErcSynthError(f"unknown mode {mode!r}; choose one of: {', '.join(MODES)}")
    check_version(version)
    resource = resources.files("erc_synth.generation") / "templates" / version / f"{benchmark}_{mode}.txt"
    if not resource.is_file():
        raise ErcSynthError(f"no prompt template {version}/{benchmark}_{mode}.txt in generation/templates")
    return resource.read_text(encoding="utf-8")


def templates_for_run(benchmark: Benchmark, mode: str, version: str = PROMPT_VERSION) -> dict[str, str]:
    """The template texts a run uses, keyed by file name, for the manifest's ``prompt_templates``."""
    return {f"{benchmark.name}_{mode}.txt": template_text(benchmark.name, mode, version)}


def label_permutation(num_labels: int, seed: int) -> list[int]:
    """The label ids in the order a ``shuffled`` prompt lists them for a request with ``seed``.

    A Fisher-Yates shuffle driven by sha256 of (seed, step) rather than ``random.Random``: the order is part of
    the prompt, and a RUN_DIR must render the same prompt on any Python version to resume byte for byte.
    """
    order = list(range(num_labels))
    for i in range(num_labels - 1, 0, -1):
        digest = hashlib.sha256(f"erc-synth/label-order/{seed}/{i}".encode()).digest()
        j = int.from_bytes(digest[:8], "big") % (i + 1)
        order[i], order[j] = order[j], order[i]
    return order


def label_options(benchmark: Benchmark, label_format: str = "number", *, inline: bool = False,
                  order: Sequence[int] | None = None) -> str:
    """The labels as numbered options, one per line (``0: neutral``...) or inline (``0: neutral, 1: joy``);
    for the word formats, the words alone (``neutral, joy, ...``). ``order`` lists label ids in the order to
    show them (default: the benchmark's); a number always stays with its label."""
    ids = range(benchmark.num_labels) if order is None else order
    if label_format != "number":
        return ", ".join(benchmark.labels[i] for i in ids)
    return (", " if inline else "\n").join(f"{i}: {benchmark.labels[i]}" for i in ids)


def _order(benchmark: Benchmark, label_order: str, seed: int | None) -> list[int] | None:
    """The label ids' order for one request, or None for the benchmark's order."""
    if label_order not in LABEL_ORDERS:
        raise ErcSynthError(f"unknown label order {label_order!r}; choose one of: {', '.join(LABEL_ORDERS)}")
    if label_order == "fixed":
        return None
    if seed is None:
        raise ValueError("label_order 'shuffled' draws the order from the request's seed; pass seed")
    return label_permutation(benchmark.num_labels, seed)


def render_prompt(
    benchmark: Benchmark,
    mode: str,
    *,
    turns: tuple[int, int] | None = None,
    target_label: int | None = None,
    version: str = PROMPT_VERSION,
    label_format: str = "number",
    label_order: str = "fixed",
    seed: int | None = None,
    exemplars: str | None = None,
) -> str:
    """Fill a template; ``target_label`` (a label index) is required in balanced mode and refused otherwise.
    ``seed`` (the request's) is needed by ``label_order="shuffled"`` and ignored by ``fixed``. ``exemplars``
    (``generation.exemplars.ExemplarPool.block``) follows the filled template, after one blank line."""
    min_turns, max_turns = turns or benchmark.turns
    if (mode == "balanced") != (target_label is not None):
        raise ValueError(f"mode {mode!r} {'needs' if mode == 'balanced' else 'takes no'} target_label")
    check_version(version, label_format)
    values = {
        "min_turns": min_turns,
        "max_turns": max_turns,
        "setting": benchmark.setting,
        "speakers": ", ".join(benchmark.speakers),
        "label_options": label_options(benchmark, label_format, inline=version == "paper",
                                       order=_order(benchmark, label_order, seed)),
        "label_instruction": _LABEL_INSTRUCTIONS[label_format],
        "line_form": _LINE_FORMS[label_format],
    }
    if target_label is not None:
        values["target_emotion"] = benchmark.labels[target_label]
    prompt = Template(template_text(benchmark.name, mode, version)).substitute(values).strip()
    return f"{prompt}\n\n{exemplars}" if exemplars else prompt


def build_messages(
    benchmark: Benchmark,
    mode: str,
    *,
    turns: tuple[int, int] | None = None,
    target_label: int | None = None,
    version: str = PROMPT_VERSION,
    label_format: str = "number",
    label_order: str = "fixed",
    seed: int | None = None,
    exemplars: str | None = None,
) -> tuple[dict[str, str], ...]:
    """The chat messages of one request: a single user turn (the backend applies the model's chat format)."""
    content = render_prompt(benchmark, mode, turns=turns, target_label=target_label, version=version,
                            label_format=label_format, label_order=label_order, seed=seed, exemplars=exemplars)
    return ({"role": "user", "content": content},)
