"""One way to turn a settings file's pydantic error into one user line: the file, the key path, a suggestion.

Why shared: presets (``erc_synth.preset_schema``) and experiment configs (``classifiers.experiment_schema``) are
both nested YAML mappings that users write by hand; both forbid unknown keys at every level, and a misspelt key
must read the same in both (``mine.yaml: unknown key 'build.split_sed'; did you mean 'build.split_seed'?``).
"""

from __future__ import annotations

import difflib
import typing
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from .errors import ErcSynthError

M = TypeVar("M", bound=BaseModel)


def _model_in(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """(the model an annotation holds, whether it holds it as the values of a mapping), through optionals/lists."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    is_dict = typing.get_origin(annotation) is dict
    for arg in typing.get_args(annotation) or ():
        found, nested = _model_in(arg)
        if found is not None:
            return found, nested or is_dict
    return None, False


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that holds the key at ``loc`` (the last element), walking lists, mappings and optionals."""
    current: type[BaseModel] | None = model
    skip_key = False
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if skip_key:  # a user-chosen mapping key (``benchmarks.meld``): the model is its value's
            skip_key = False
            continue
        if current is None or part not in current.model_fields:
            return None
        current, skip_key = _model_in(current.model_fields[part].annotation)
    return None if skip_key else current


def _key_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not str(part).startswith(("function-", "tuple[", "literal[", "list[", "int", "str", "float", "bool",
                                        "none", "dict[")):
            path += f".{part}" if path else str(part)
    return path


def describe_error(error: dict[str, Any], source: str, model: type[BaseModel], what: str = "preset") -> str:
    """One line for pydantic's first error: the file, the key path, what is wrong, and a suggestion."""
    loc = tuple(error.get("loc", ()))
    path = _key_path(loc)
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        holder = _model_at(model, loc)
        known = sorted(holder.model_fields) if holder is not None else []
        close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
        hint = f"; did you mean {'.'.join([*path.split('.')[:-1], close[0]])!r}?" if close else ""
        return f"{source}: unknown key {path!r}{hint} (known here: {', '.join(known)})"
    if kind == "missing":
        return f"{source}: {what} lacks the field {path!r}"
    message = str(error.get("msg", "")).removeprefix("Value error, ")
    if not path:
        return f"{source}: {message}"
    if message.startswith(("has unknown value", "must ")):
        return f"{source}: field {path!r} {message}"
    return f"{source}: field {path!r} has value {error.get('input')!r}: {message}"


def validate_settings(model: type[M], data: Any, source: str, what: str) -> M:
    """``data`` as ``model``; the first problem is raised as one ``ErcSynthError`` line naming ``source``."""
    if not isinstance(data, dict):
        raise ErcSynthError(f"{source}: {what} must be a YAML mapping, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        # A misspelt key first: it is often why a required key looks missing (``seedz:`` for ``seeds:``).
        first = next((e for e in errors if e.get("type") == "extra_forbidden"), errors[0])
        raise ErcSynthError(describe_error(first, source, model, what)) from None
