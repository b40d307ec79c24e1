"""``erc-synth tables --markdown``: the results page's tables are the ones its named CSV gives, never typed."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

from erc_synth.classifiers.results_page import BEGIN, END, csv_digest
from erc_synth.cli import main

DOCS = Path(__file__).resolve().parents[1] / "docs"
GENERATED = re.compile(r"Generated from `(?P<csv>[^`]+)` \(SHA-256 `(?P<digest>[0-9a-f]{12})`, path relative to "
                       r"this page\) by `(?P<command>[^`]+)`\.")


@pytest.mark.parametrize("page", ["results-cpu-study.md", "results-pilot-low-resource.md"])
def test_the_page_is_what_its_named_csv_and_command_give(page, tmp_path, monkeypatch, capsys):
    text = (DOCS / page).read_text(encoding="utf-8")
    found = GENERATED.search(text)
    assert found, f"docs/{page} has no generated block"
    named = DOCS / found["csv"]
    assert csv_digest(named) == found["digest"]
    copy = tmp_path / "docs"
    (copy / Path(found["csv"]).parent).mkdir(parents=True)
    shutil.copy(named, copy / found["csv"])
    (copy / page).write_text(text.replace(found["digest"], "000000000000").replace("| meld |", "| typed |"),
                             encoding="utf-8")
    words = shlex.split(found["command"])
    assert words[:2] == ["erc-synth", "tables"]
    words[words.index("OUT")] = str(tmp_path / "out")
    monkeypatch.chdir(copy)  # the command's paths are relative to the page's folder
    assert main(words[1:]) == 0
    assert (copy / page).read_text(encoding="utf-8") == text


def test_a_new_page_holds_the_block_and_a_rerun_replaces_only_the_block(tmp_path, capsys):
    results = DOCS / "data" / "cpu-study-v1-results_long.csv"
    page = tmp_path / "page.md"
    args = ["tables", str(results), "--out", str(tmp_path / "out"), "--markdown", str(page)]
    assert main(args) == 0
    block = page.read_text(encoding="utf-8")
    assert block.startswith(BEGIN) and block.rstrip().endswith(END) and "### Extended table" in block
    page.write_text("# My study\n\nProse above.\n\n" + block + "\nProse below.\n", encoding="utf-8")
    assert main(args) == 0
    assert page.read_text(encoding="utf-8") == "# My study\n\nProse above.\n\n" + block + "\nProse below.\n"


@pytest.mark.parametrize("content, message", [
    ("# a page without the markers\n", "needs exactly one"),
    (f"{BEGIN}\n{END}\n{BEGIN}\n{END}\n", "needs exactly one"),
    (f"{END}\n{BEGIN}\n", "needs exactly one"),
])
def test_a_page_without_one_block_is_refused_untouched(content, message, tmp_path, capsys):
    page = tmp_path / "page.md"
    page.write_text(content, encoding="utf-8")
    results = DOCS / "data" / "cpu-study-v1-results_long.csv"
    assert main(["tables", str(results), "--out", str(tmp_path / "out"), "--markdown", str(page)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(page) in err[0] and message in err[0]
    assert page.read_text(encoding="utf-8") == content
