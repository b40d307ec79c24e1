"""A results page's tables written by ``erc-synth tables --markdown PAGE`` from the results CSV, never typed.

Why a marked block in a page rather than a page of its own: a results page is mostly prose (what ran, what it
means, what limits it) that a person writes, around tables that a person must not write. The command replaces
only the text between :data:`BEGIN` and :data:`END`, so rerunning it after a grid grows or a CSV is corrected
updates the numbers and leaves the prose alone. The block names the CSV (relative to the page) and its SHA-256,
so a test or a reader can check that the page shows the file it names.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

from erc_synth.dataset_scripts.core.errors import ErcSynthError

BEGIN = "<!-- begin: erc-synth tables (generated from the CSV named below; edit that, not this block) -->"
END = "<!-- end: erc-synth tables -->"
#: Which written tables go into the block, in order, with their headings.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("main_md", "Main table"),
    ("extended_md", "Extended table"),
    ("fraction_md", "Low-resource curve"),
    ("paper_comparison", "Beside the study's Table III"),
)


def csv_digest(path: Path) -> str:
    """The first 12 hex digits of the file's SHA-256: enough to tell two versions of a results CSV apart."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def results_block(page: Path, results: Path, written: Mapping[str, Path], command: str) -> str:
    """The generated block: where it came from, then each written table under its heading."""
    source = Path(os.path.relpath(results.resolve(), page.resolve().parent)).as_posix()
    lines = [BEGIN, "",
             f"Generated from `{source}` (SHA-256 `{csv_digest(results)}`, path relative to this page) by "
             f"`{command}`.", ""]
    for key, heading in SECTIONS:
        # A grid with real fractions has one main and one extended table per fraction ("main_md@0.25").
        for name in [key, *sorted(k for k in written if k.startswith(f"{key}@"))]:
            if name in written:
                fraction = name.partition("@")[2]
                title = f"{heading} at real fraction {fraction}" if fraction else heading
                lines += [f"### {title}", "", written[name].read_text(encoding="utf-8").strip(), ""]
    return "\n".join([*lines, END])


def write_results_page(page: Path, results: Path, written: Mapping[str, Path], command: str) -> Path:
    """Replace the page's generated block (or write a page holding only the block, if there is no page yet)."""
    block = results_block(page, results, written, command)
    if not page.exists():
        page.write_text(block + "\n", encoding="utf-8")
        return page
    try:
        text = page.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ErcSynthError(f"results page {page}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ErcSynthError(f"results page {page}: cannot read the page: {exc.strerror}") from None
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start or text.count(BEGIN) != 1 or text.count(END) != 1:
        raise ErcSynthError(f"results page {page}: the page needs exactly one {BEGIN!r} line and one later {END!r} "
                            "line around the block to replace (add both where the tables go)")
    page.write_text(text[:start] + block + text[end + len(END):], encoding="utf-8")
    return page
