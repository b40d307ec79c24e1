"""The labelling view: the dialogue as HTML, and the benchmark's labels as single-choice buttons in its order.

Why HyperText and not Label Studio's ``Paragraphs`` dialogue layout: the utterance under review must stand out
from its context, and ``Paragraphs`` has no way to mark one line; the HTML is built (and escaped) by
:func:`~.tasks.dialogue_html`. ``inline`` keeps it in the page rather than an iframe.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from xml.sax.saxutils import quoteattr

from erc_synth.dataset_scripts.core.registry import Benchmark

#: Names the annotations' results carry (``from_name`` / ``to_name``).
CHOICES_NAME = "emotion"
DIALOGUE_NAME = "dialogue"
INSTRUCTION = "Which emotion does the highlighted utterance express, read in its dialogue?"


def label_config(benchmark: Benchmark) -> str:
    """The project's labelling config: instruction, dialogue, and one choice per label in canonical order."""
    choices = "".join(f"<Choice value={quoteattr(label)}/>" for label in benchmark.labels)
    return (
        "<View>"
        f"<Header value={quoteattr(INSTRUCTION)}/>"
        f'<HyperText name="{DIALOGUE_NAME}" value="$dialogue" inline="true"/>'
        f'<Choices name="{CHOICES_NAME}" toName="{DIALOGUE_NAME}" choice="single" required="true" showInline="true">'
        f"{choices}</Choices>"
        "</View>"
    )


def config_labels(config: str) -> list[str] | None:
    """The choice values of a config's ``emotion`` Choices, in order; ``None`` when it has none (another tool's
    project) or is not XML."""
    try:
        root = ET.fromstring(config)
    except ET.ParseError:
        return None
    for node in root.iter("Choices"):
        if node.get("name") == CHOICES_NAME:
            return [choice.get("value", "") for choice in node.iter("Choice")]
    return None


def same_labels(config: str, labels: Sequence[str]) -> bool:
    return config_labels(config) == list(labels)
