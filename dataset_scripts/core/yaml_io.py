"""Reading the YAML files users write (presets, experiment configs) without the alias expansion attack."""

from __future__ import annotations

from typing import Any

import yaml

from .errors import ErcSynthError


def read_yaml_without_aliases(text: str, source: str) -> Any:
    """YAML with anchors and aliases refused: a few hundred bytes of nested aliases expand to gigabytes.

    Presets and experiment configs are short and written by hand, so nothing legitimate needs them.
    """
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                line = event.start_mark.line + 1
                raise ErcSynthError(f"{source}:{line}: YAML anchors and aliases (&name, *name) are not accepted "
                                    "here; write the value out")
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ErcSynthError(f"{source}: not valid YAML ({yaml_problem(exc)})") from None


def yaml_problem(exc: yaml.YAMLError) -> str:
    """What the parser met and where, on one line (its own message spans several, with a caret under the text)."""
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if not problem:
        return " ".join(str(exc).split())
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else problem
