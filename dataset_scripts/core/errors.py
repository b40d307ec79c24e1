"""User-facing errors shared by every layer of erc-synth.

Why one base class: the console script turns any ``ErcSynthError`` into a one-line message and a non-zero
exit status, while genuine bugs still surface with a traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


class ErcSynthError(Exception):
    """An error caused by the user's input or environment, printed without a traceback."""

    exit_code: int = 2


class DataFormatError(ErcSynthError):
    """A data file that cannot be read as its format promises.

    The message always names the file and, where known, the line (1-based) or JSON path, the field and the
    offending value, so that a user can open the file at the right place.
    """

    def __init__(
        self,
        path: str | Path,
        message: str,
        *,
        line: int | None = None,
        json_path: str | None = None,
        field: str | None = None,
        value: object = None,
    ) -> None:
        self.path = str(path)
        self.line = line
        self.json_path = json_path
        self.field = field
        self.value = value
        where = self.path
        if line is not None:
            where += f":{line}"
        if json_path is not None:
            where += f" at {json_path}"
        details = []
        if field is not None:
            details.append(f"field {field!r}")
        if value is not None:
            details.append(f"value {value!r}")
        suffix = f" ({', '.join(details)})" if details else ""
        super().__init__(f"{where}: {message}{suffix}")


class UnknownLabelError(ErcSynthError):
    """A label spelling that the benchmark registry does not know. Labels are never guessed."""


class RunDirError(ErcSynthError):
    """A generation RUN_DIR that is missing, corrupt, or was made with other settings."""


class SettingError(ErcSynthError):
    """A setting outside its valid range, or one that does not fit the others. ``setting`` is its name as the
    Python API and a preset spell it (``"sampling.top_p"``, ``"split_seed"``), so each front end can name it in
    its user's words: a command its flag, a preset loader its YAML key.

    ``related`` names the other settings the problem mentions; the problem writes each as a ``{name}`` field, so
    :meth:`worded` can put every name in the same words (``{real_data}`` -> ``--real-data``)."""

    def __init__(self, setting: str, problem: str, related: tuple[str, ...] = ()) -> None:
        self.setting = setting
        self.related = related
        self.template = problem
        self.problem = self._fill(lambda name: name)
        super().__init__(f"{setting}: {self.problem}")

    def _fill(self, word: Callable[[str], str]) -> str:
        return self.template.format_map({name: word(name) for name in self.related}) if self.related \
            else self.template

    def worded(self, word: Callable[[str], str]) -> str:
        """The message with ``word(name)`` for the setting and every related setting (a command: its flags)."""
        return f"{word(self.setting)} {self._fill(word)}"


def in_flag_words(flags: Mapping[str, str], *, every_option: bool = False) -> Callable[[Callable], Callable]:
    """A command handler's decorator: a library ``SettingError`` about one of its settings is worded in its flags.

    Why at the command, not in the library: the library names a setting as the Python API and a preset spell it,
    and only the command knows which flag sets it. ``flags`` maps setting names to flags. With ``every_option``, any
    setting that is one of the command's parsed options (``args.<name>``) counts too, and names ``flags`` lacks are
    worded ``--the-name``; without it, such names stay as they are.
    """
    def word(name: str) -> str:
        return flags.get(name) or (f"--{name.replace('_', '-')}" if every_option else name)

    def decorate(handler: Callable[[Any], int]) -> Callable[[Any], int]:
        @functools.wraps(handler)
        def run(args: Any) -> int:
            try:
                return handler(args)
            except SettingError as exc:
                if exc.setting not in flags and not (every_option and exc.setting in vars(args)):
                    raise
                raise ErcSynthError(exc.worded(word)) from exc

        return run

    return decorate
