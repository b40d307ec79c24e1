"""Reading a long results CSV (one row per model and test set) for ``erc-synth tables``, checked line by line.

Why a reader of its own: the tables can be built from results that this toolkit did not produce (a paper's
printed numbers, a colleague's spreadsheet), so a bad file must fail with the line and column at fault before
any table is computed, and before pandas or the metric module is imported (a typo should answer at once).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from erc_synth.dataset_scripts.core.errors import DataFormatError

LONG_COLUMNS: tuple[str, ...] = ("architecture", "regime", "benchmark", "seed", "test_set", "weighted_f1")
#: An optional column: the share of the real train split a model fine-tuned on (absent: 1, the whole split).
FRACTION_COLUMN = "real_fraction"


def _cell_number(path: Path, line: int, column: str, text: str, kind: type) -> float | int:
    try:
        value = kind(text)
    except ValueError:
        raise DataFormatError(path, f"not {'an integer' if kind is int else 'a number'}", line=line,
                              field=column, value=text) from None
    if kind is float and not math.isfinite(value):
        raise DataFormatError(path, "not a finite number", line=line, field=column, value=text)
    return value


def _fraction(path: Path, line: int, record: dict[str, str], header: list[str]) -> float:
    if FRACTION_COLUMN not in header:
        return 1.0
    text = (record.get(FRACTION_COLUMN) or "").strip()
    if not text:
        raise DataFormatError(path, "empty cell", line=line, field=FRACTION_COLUMN)
    value = float(_cell_number(path, line, FRACTION_COLUMN, text, float))
    if not 0 < value <= 1:
        raise DataFormatError(path, "the real-train fraction must be in (0, 1]", line=line, field=FRACTION_COLUMN,
                              value=text)
    return value


def read_long_rows(path: str | Path) -> list[dict[str, object]]:
    """The rows of a long CSV as dicts of :data:`LONG_COLUMNS` and :data:`FRACTION_COLUMN`; other columns are ignored.

    Errors name the file, the 1-based line and the column: a missing column, an empty cell, a non-numeric seed or
    score, a real fraction outside (0, 1], or a duplicate (architecture, regime, benchmark, seed, test set, real
    fraction). Without a ``real_fraction`` column every row is a model fine-tuned on the whole real train split.
    """
    path = Path(path)
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise DataFormatError(path, f"cannot open the results file: {exc.strerror}") from None
    rows: list[dict[str, object]] = []
    seen: dict[tuple, int] = {}
    with handle:
        reader = csv.DictReader(handle)
        try:
            header = reader.fieldnames or []
            missing = [c for c in LONG_COLUMNS if c not in header]
            if missing:
                raise DataFormatError(path, f"missing column(s) {', '.join(missing)}; the header must hold "
                                            f"{', '.join(LONG_COLUMNS)}", line=1)
            for record in reader:
                line = reader.line_num
                row: dict[str, object] = {}
                for column in LONG_COLUMNS:
                    text = (record.get(column) or "").strip()
                    if not text:
                        raise DataFormatError(path, "empty cell", line=line, field=column)
                    row[column] = text
                row["seed"] = _cell_number(path, line, "seed", str(row["seed"]), int)
                row["weighted_f1"] = _cell_number(path, line, "weighted_f1", str(row["weighted_f1"]), float)
                if not 0 <= row["weighted_f1"] <= 1:
                    raise DataFormatError(path, "weighted F1 must be a fraction in [0, 1] (divide percentages by "
                                                "100)", line=line, field="weighted_f1", value=record["weighted_f1"])
                key = tuple(row[c] for c in LONG_COLUMNS[:-1])
                row[FRACTION_COLUMN] = _fraction(path, line, record, header)
                key = (*key, row[FRACTION_COLUMN])
                if key in seen:
                    raise DataFormatError(path, f"duplicate result (first on line {seen[key]})", line=line,
                                          value=", ".join(map(str, key)))
                seen[key] = line
                rows.append(row)
        except csv.Error as exc:
            raise DataFormatError(path, f"malformed CSV: {exc}", line=reader.line_num) from None
        except UnicodeDecodeError as exc:
            raise DataFormatError(path, f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    if not rows:
        raise DataFormatError(path, "no result rows after the header")
    return rows


def read_long_csv(path: str | Path):
    """A checked long CSV as a pandas DataFrame with :data:`LONG_COLUMNS` and :data:`FRACTION_COLUMN`."""
    import pandas as pd

    return pd.DataFrame(read_long_rows(path), columns=[*LONG_COLUMNS, FRACTION_COLUMN])
