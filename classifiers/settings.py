"""One source per training setting: dataclass fields carry the default, the help text and the one validator.

Why: the same settings reach a Trainer stage from three places, the experiment YAML (``training:``,
``pretraining:``, ``topic_pretraining:``), ``erc-synth train`` flags and ``erc-synth train-topics`` flags. When
each place declared its own copy, the defaults and checks drifted apart. Here a field is declared once with
:func:`setting`; :meth:`StageSettings.from_mapping` validates YAML mappings, and :func:`add_arguments` /
:func:`given_arguments` derive the command-line flags from the same fields. ``transformers.HfArgumentParser``
would do the flags too, but it imports transformers, and ``erc-synth --help`` must stay fast.
"""

from __future__ import annotations

import argparse
import difflib
import math
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, TypeVar

from erc_synth.dataset_scripts.core.errors import ErcSynthError, SettingError

Check = Callable[[Any], str | None]
S = TypeVar("S", bound="StageSettings")


#: Upper bounds of counts and sizes: far above any real run, low enough that a typo such as ``10**30`` is refused
#: before a Trainer allocates anything (a batch of 2**16 examples already exceeds one GPU's memory).
MAX_BATCH = 65_536
MAX_STEPS = 10**9
MAX_EPOCHS = 10_000.0
MAX_SEED = 2**32 - 1  # numpy's and torch's seed range
MAX_TOKENS = 131_072
MAX_DIALOGUES = 10_000_000
#: Most grid cells in flight at once: each trains its own model, so more would not fit even a large cluster.
MAX_CELL_WORKERS = 1_024


def between(low: float, high: float, above: bool = False) -> Check:
    """``low <= value <= high`` (``low < value`` with ``above``): every count a user gives has a ceiling."""
    sign = "<" if above else "<="

    def check(value: Any) -> str | None:
        ok = (value > low if above else value >= low) and value <= high
        return None if ok else f"must be in {low} {sign} value <= {high}"

    return check


def check_cell_workers(workers: int | None) -> None:
    """Refuse a count of grid cells in flight outside [1, ``MAX_CELL_WORKERS``] (None: as the cluster holds)."""
    if workers is None:
        return
    problem = None if _integer(workers) else "must be an integer"
    problem = problem or between(1, MAX_CELL_WORKERS)(workers)
    if problem:
        raise SettingError("workers", f"{problem}, got {workers!r}")


def check_seed(seed: Any) -> None:
    """Refuse a seed outside numpy's and torch's range [0, ``MAX_SEED``] before anything is loaded."""
    problem = None if _integer(seed) else "must be an integer"
    problem = problem or between(0, MAX_SEED)(seed)
    if problem:
        raise SettingError("seed", f"{problem}, got {seed!r}")


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def fraction(value: Any) -> str | None:
    return None if 0 <= value < 1 else "must be in [0, 1)"


def probability(value: Any) -> str | None:
    return None if 0 < value < 1 else "must be in (0, 1)"


def steps_or_all(value: Any) -> str | None:
    return None if value == -1 or 0 < value <= MAX_STEPS else f"must be in 0 < value <= {MAX_STEPS}, or -1 for no limit"


def one_of(*choices: str) -> Check:
    return lambda value: None if value in choices else f"must be one of {', '.join(choices)}"


def setting(default: Any, help: str, check: Check | None = None) -> Any:
    """A dataclass field with its help text and validator (None values skip the validator: "not set")."""
    return field(default=default, metadata={"help": help, "check": check})


def retuned(base: type, name: str, default: Any) -> Any:
    """The field ``name`` of ``base`` with another default (same help and validator): one place per setting."""
    original = next(f for f in fields(base) if f.name == name)
    return field(default=default, metadata=original.metadata)


def _value_type(cls: type, name: str) -> tuple[type, bool]:
    """(the field's scalar type, whether None is allowed) from its annotation."""
    hint = typing.get_type_hints(cls)[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    optional = type(None) in typing.get_args(hint)
    return (args[0] if args else hint), optional


def closest(name: str, known: list[str]) -> str:
    """``; did you mean X?`` for the closest known name, or an empty string."""
    match = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f"; did you mean {match[0]!r}?" if match else ""


def _spelled(where: str, name: str) -> str:
    """A setting as the user wrote it: ``--learning-rate`` after a flag prefix (``--...``), else the YAML key."""
    return f"{where}{name.replace('_', '-')}" if where.startswith("--") else f"{where}{name}"


@dataclass
class StageSettings:
    """Settings every Trainer stage shares (fine-tuning, synthetic pre-training, topic pre-training)."""

    epochs: float = setting(3.0, "training epochs (fractions allowed)", between(0, MAX_EPOCHS, above=True))
    learning_rate: float = setting(2e-5, "peak learning rate", between(0, 10.0, above=True))
    batch_size: int = setting(8, "examples per device and step", between(1, MAX_BATCH))
    max_steps: int = setting(-1, "stop after this many optimizer steps (-1: the epochs decide)", steps_or_all)
    seed: int = setting(0, "random seed of the model head, the data order and dropout",
                        between(0, MAX_SEED))

    def __post_init__(self) -> None:
        self.validate()

    def validate(self, where: str = "") -> None:
        """Check every field's type and its validator; the error names the setting and the value."""
        for spec in fields(self):
            value = getattr(self, spec.name)
            kind, optional = _value_type(type(self), spec.name)
            name = _spelled(where, spec.name)
            if value is None:
                if optional:
                    continue
                raise ErcSynthError(f"{name}: must be set (got null)")
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
                setattr(self, spec.name, value)
            if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
                raise ErcSynthError(f"{name}: expected {kind.__name__}, got {value!r}")
            if kind is float and not math.isfinite(value):
                raise ErcSynthError(f"{name}: must be a finite number, got {value!r}")
            check = spec.metadata.get("check")
            problem = check(value) if check else None
            if problem:
                raise ErcSynthError(f"{name} {problem}, got {value!r}")

    @classmethod
    def from_mapping(cls: type[S], values: Mapping[str, Any] | None, where: str = "", **overrides: Any) -> S:
        """Settings from a config mapping; an unknown key is a user error naming the closest known one."""
        merged = {**(values or {}), **overrides}
        known = [f.name for f in fields(cls)]
        for key in merged:
            if key not in known:
                raise ErcSynthError(f"{_spelled(where, str(key))}: unknown {cls.kind()} setting"
                                    f"{closest(str(key), known)} (known: {', '.join(known)})")
        settings = cls.__new__(cls)
        defaults = cls()
        for spec in fields(cls):
            setattr(settings, spec.name, merged.get(spec.name, getattr(defaults, spec.name)))
        settings.validate(where)
        return settings

    @classmethod
    def kind(cls) -> str:
        return "training"


@dataclass
class TrainSettings(StageSettings):
    """Hyper-parameters of one classifier Trainer stage (defaults: small CPU runs; configs set the paper's values)."""

    eval_batch_size: int = setting(32, "examples per device in evaluation", between(1, MAX_BATCH))
    warmup_ratio: float = setting(0.1, "share of the steps spent warming the learning rate up", fraction)
    weight_decay: float = setting(0.0, "AdamW weight decay", between(0, 10.0))
    gradient_accumulation_steps: int = setting(1, "batches accumulated per optimizer step", between(1, MAX_BATCH))
    early_stopping_patience: int | None = setting(3, "evaluations without improvement before stopping "
                                                     "(none: never stop early)", between(1, MAX_STEPS))
    eval_steps: int | None = setting(None, "evaluate and checkpoint every N steps (none: once per epoch)",
                                     between(1, MAX_STEPS))
    logging_steps: int = setting(10, "log the loss every N steps", between(1, MAX_STEPS))
    precision: str = setting("auto", "auto (bf16 or fp16 on a GPU, fp32 on CPU), fp32, bf16 or fp16",
                             one_of("auto", "fp32", "bf16", "fp16"))


def add_arguments(parser: argparse.ArgumentParser, cls: type[StageSettings], prefix: str = "",
                  note: str = "", skip: tuple[str, ...] = ()) -> None:
    """One ``--{prefix}{name}`` flag per field; a flag not given leaves no attribute, so the default applies."""
    defaults = cls()
    for spec in fields(cls):
        if spec.name in skip:
            continue
        kind, optional = _value_type(cls, spec.name)
        flag = f"--{prefix}{spec.name.replace('_', '-')}"
        default = getattr(defaults, spec.name)
        help_text = f"{spec.metadata.get('help', '')} (default: {note or default})"
        parser.add_argument(flag, dest=f"{prefix.replace('-', '_')}{spec.name}", default=argparse.SUPPRESS,
                            type=_parser(kind, optional, flag), help=help_text, metavar=kind.__name__.upper())


def _parser(kind: type, optional: bool, flag: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if optional and text.lower() in ("none", "null"):
            return None
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else kind.__name__}, "
                                             f"got {text!r}") from None

    parse.__name__ = kind.__name__
    return parse


def given_arguments(args: argparse.Namespace, cls: type[StageSettings], prefix: str = "") -> dict[str, Any]:
    """The settings a user gave on the command line (``none`` given for an optional setting is kept)."""
    out = {}
    for spec in fields(cls):
        value = getattr(args, f"{prefix.replace('-', '_')}{spec.name}", MISSING)
        if value is not MISSING:
            out[spec.name] = value
    return out
