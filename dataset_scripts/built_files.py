"""Loading one config of a built folder (``data/<config>/<split>-*.parquet``), checked file by file.

Why not ``load_dataset`` alone: ``datasets`` reports a truncated or foreign parquet file as a
``DatasetGenerationError`` that names no file, and it loads a label id outside the ClassLabel's range (99 for a
seven-name label, or a negative one) without complaint, so a training run or an audit would fail far away or,
worse, count a label that means nothing. Each file is opened with pyarrow first and its label column is
checked against the ClassLabel (-1, its "no label", is allowed), so the error names the file, the column and the value.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .core.errors import DataFormatError, ErcSynthError
from .core.registry import SPLITS

#: The label column of each config of a built folder.
LABEL_COLUMNS: dict[str, str] = {"dialogues": "emotions", "utterances": "emotion"}


def split_files(folder: str | Path, config: str = "dialogues", splits: Iterable[str] = SPLITS) -> dict[str, list[Path]]:
    """The parquet files of each split present under ``folder/data/<config>``, in name order."""
    base = Path(folder) / "data" / config
    found = {split: sorted(base.glob(f"{split}-*.parquet")) for split in splits}
    return {split: files for split, files in found.items() if files}


def check_parquet_file(path: Path):
    """The arrow schema of ``path``; a user error naming the file when it is not a readable parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with pq.ParquetFile(path) as parquet:
            return parquet.schema_arrow
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:  # truncated, garbage, bad metadata
        raise DataFormatError(path, f"not a readable parquet file ({exc}); rebuild the folder from its "
                              "RUN_DIR") from None


def check_label_ids(path: Path, column: str, num_classes: int) -> None:
    """Raise a user error naming ``path``, ``column`` and the value when a label id is outside the ClassLabel."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        values = pq.read_table(path, columns=[column]).column(column)
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(path, f"column cannot be read ({exc})", field=column) from None
    if pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
        values = pc.list_flatten(values)
    if len(values) == 0 or not pa.types.is_integer(values.type):
        return
    # -1 is ClassLabel's "no label": the unlabelled context turns of IEMOCAP's dialogxl variant carry it
    outside = pc.filter(values, pc.or_(pc.less(values, -1), pc.greater_equal(values, num_classes)))
    if len(outside):
        raise DataFormatError(path, f"label id outside the ClassLabel's {num_classes} names (ids 0 to "
                              f"{num_classes - 1}, or -1 for no label)", field=column, value=outside[0].as_py())


def load_built_config(folder: str | Path, config: str = "dialogues"):
    """The ``DatasetDict`` of one config of a built folder, every file readable and every label id in range."""
    from datasets import DatasetDict, load_dataset
    from datasets.exceptions import DatasetGenerationError

    files = split_files(folder, config)
    if not files:
        raise ErcSynthError(f"{Path(folder) / 'data' / config}: no <split>-*.parquet files for any of "
                            f"{', '.join(SPLITS)}")
    for paths in files.values():
        for path in paths:
            check_parquet_file(path)
    try:
        data = DatasetDict(load_dataset("parquet", data_files={s: [str(p) for p in ps] for s, ps in files.items()}))
    except (DatasetGenerationError, ValueError, OSError) as exc:  # files that disagree with one another
        raise ErcSynthError(f"{Path(folder) / 'data' / config}: the parquet files cannot be loaded together "
                            f"({exc.__cause__ or exc}); rebuild the folder from its RUN_DIR") from None
    column = LABEL_COLUMNS.get(config)
    for split, dataset in data.items():
        feature = dataset.features.get(column) if column else None
        label = getattr(feature, "feature", feature)
        num_classes = getattr(label, "num_classes", None)
        if num_classes:
            for path in files[split]:
                check_label_ids(path, column, num_classes)
    return data
