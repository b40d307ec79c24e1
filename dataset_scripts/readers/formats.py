"""The reader of each file format named in the registry (``Variant.format``)."""

from __future__ import annotations

from . import dialogxl_json, emorynlp_json, meld_csv, tsv_dialogues
from .base import Reader

READERS: dict[str, Reader] = {
    "meld_csv": meld_csv.read,
    "tsv_dialogues": tsv_dialogues.read,
    "dialogxl_json": dialogxl_json.read,
    "emorynlp_json": emorynlp_json.read,
}
