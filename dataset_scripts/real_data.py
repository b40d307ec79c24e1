"""Where the real benchmark files are: ``--real-data``, else ``$ERC_SYNTH_REAL_DATA``, else a default folder.

Why one resolver: the flag and the variable name the same thing, so they get the same checks, before anything
is generated or built: a folder (not a file, not missing) that holds every file of each benchmark the command
will read. A value the user gave is refused with one line naming where it came from (the flag or the
variable); only the unasked-for default is skipped quietly when absent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from .core.environment import REAL_DATA_ENV, real_data_env
from .core.errors import ErcSynthError
from .core.registry import get_benchmark


def missing_files(benchmark_name: str, folder: Path, variant: str | None = None) -> list[Path]:
    """The files of the benchmark's variant (every split it has) that ``folder`` lacks."""
    benchmark = get_benchmark(benchmark_name)
    spec = benchmark.variant(variant or benchmark.default_variant)
    root = folder / benchmark.data_subdir if (folder / benchmark.data_subdir).is_dir() else folder  # as the readers
    return [root / name for name in spec.files.values() if not (root / name).is_file()]


def resolve_real_data(explicit: str | Path | None, benchmarks: Iterable[str], *, flag: str = "--real-data",
                      defaults: Sequence[str | Path] = (), variant: str | None = None) -> Path | None:
    """The checked real-data folder for ``benchmarks``, or ``None`` when neither flag, variable nor default is set."""
    if explicit is not None:
        given, source = str(explicit), f"{flag} {explicit}"
    elif (env := real_data_env()) is not None:
        given, source = env, f"environment variable {REAL_DATA_ENV}={env}"
    else:
        found = next((Path(d) for d in defaults if Path(d).is_dir()), None)
        return found
    path = Path(given)
    if path.is_file():
        raise ErcSynthError(f"{source}: is a file, not the folder holding meld/, emorynlp/, iemocap/")
    if not path.is_dir():
        raise ErcSynthError(f"{source}: no such folder")
    for name in dict.fromkeys(benchmarks):
        missing = missing_files(name, path, variant)
        if missing:
            benchmark = get_benchmark(name)
            raise ErcSynthError(f"{source}: has no {benchmark.display_name} files (missing {missing[0]}); point it "
                                f"at the folder holding {benchmark.data_subdir}/")
    return path
