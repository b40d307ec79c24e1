"""``DatasetKey``: which synthetic set a thing is, as a value instead of a string.

Why a type: a set is named three ways (the builder config ``meld-natural``, the folder and Hub repo
``meld-synth-natural``), and taking such a string apart by hand breaks the first time a name gains a dash.
Every name is made here from the pair, and every name is read back by ``DatasetKey.parse``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .errors import ErcSynthError
from .registry import BENCHMARKS, MODES

SYNTH_INFIX = "-synth-"


@dataclass(frozen=True, order=True)
class DatasetKey:
    """A benchmark and a generation mode: the identity of one synthetic set."""

    benchmark: str
    mode: str

    def __post_init__(self) -> None:
        if self.benchmark not in BENCHMARKS:
            raise ErcSynthError(f"unknown benchmark {self.benchmark!r}; choose one of {', '.join(BENCHMARKS)}")
        if self.mode not in MODES:
            raise ErcSynthError(f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}")

    @property
    def config_name(self) -> str:
        """The builder config and RUN_DIR identity: ``{benchmark}-{mode}``."""
        return f"{self.benchmark}-{self.mode}"

    @property
    def repo_name(self) -> str:
        """The Hub repo name, also the built folder's and the pipeline's RUN_DIR name: ``{benchmark}-synth-{mode}``."""
        return f"{self.benchmark}{SYNTH_INFIX}{self.mode}"

    folder_name = repo_name

    def __str__(self) -> str:
        return self.config_name

    @classmethod
    def parse(cls, name: str) -> DatasetKey:
        """Read a config name (``meld-natural``) or a repo / folder name (``meld-synth-natural``)."""
        for key in all_keys():
            if name in (key.config_name, key.repo_name):
                return key
        known = ", ".join(k.config_name for k in all_keys())
        raise ErcSynthError(f"{name!r} names no synthetic set; expected BENCHMARK-MODE or BENCHMARK-synth-MODE "
                            f"with one of {known}")


def all_keys() -> Iterator[DatasetKey]:
    """Every set the toolkit builds, in registry order (benchmarks, then modes)."""
    for benchmark in BENCHMARKS:
        for mode in MODES:
            yield DatasetKey(benchmark, mode)
