"""The docs cannot rot: every ```python block in README.md and docs/*.md runs, and every relative link resolves.

Why one test per page: the blocks of a page build on each other (they run in order, in one namespace, from the
repository root, as a reader would paste them), and a broken page should name itself in the test id. A block
that cannot run here says why in the page, on the line right before its fence (``<!-- no-run: REASON -->``); it
must still parse and its imports must resolve, and it is reported as a skipped test with that reason. A page
whose blocks load real models or take more than a few seconds holds the line ``<!-- snippets: slow -->`` and runs
in the slow tier. Blocks reading the licensed benchmark copies (they name ``../shared/data`` or
``ERC_SYNTH_REAL_DATA``) run when ``../shared/data`` exists and are skipped with the reason otherwise. Tracebacks
point at the page's own line numbers.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers.torch_threads import one_thread  # noqa: F401  (autouse: snippets must not change torch's threads)

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCS = REPO_ROOT / "docs"
PAGES = [REPO_ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
#: The licensed benchmark copies, where the docs' snippets expect them (relative to the repository root).
REAL_DATA = REPO_ROOT.parent / "shared" / "data"
REAL_DATA_MENTIONS = ("../shared/data", "ERC_SYNTH_REAL_DATA")

NO_RUN = re.compile(r"^<!-- no-run:(?P<reason>.*)-->\s*$")
SLOW_PAGE = "<!-- snippets: slow -->"
FENCE = re.compile(r"^(?P<indent>\s*)(?P<ticks>`{3,}|~{3,})\s*(?P<info>[\w+-]*)")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\((?P<target>[^)\s]+)\)")


def _page_id(page: Path) -> str:
    return str(page.relative_to(REPO_ROOT)) if page.is_relative_to(REPO_ROOT) else str(page)


@dataclass(frozen=True)
class Block:
    """One fenced python block: where it starts, its code, and why it is not run (None: it runs)."""

    page: Path
    line: int  # 1-based line of the block's first code line
    code: str
    no_run: str | None

    @property
    def where(self) -> str:
        return f"{_page_id(self.page)}:{self.line}"

    @property
    def needs_real_data(self) -> bool:
        return any(mention in self.code for mention in REAL_DATA_MENTIONS)


class MalformedPage(ValueError):
    """A page whose fences or markers the runner cannot read: raised at collection, naming the page and line."""


def python_blocks(page: Path) -> list[Block]:
    """The page's ```python blocks in order; a no-run marker must sit right before a python fence."""
    lines = page.read_text(encoding="utf-8").splitlines()
    where = _page_id(page)
    blocks: list[Block] = []
    number = 0
    while number < len(lines):
        fence = FENCE.match(lines[number])
        if not fence:
            next_fence = FENCE.match(lines[number + 1]) if number + 1 < len(lines) else None
            if NO_RUN.match(lines[number]) and (next_fence is None or next_fence["info"] != "python"):
                raise MalformedPage(f"{where}:{number + 1}: a no-run marker must be the line right before a "
                                    "```python fence")
            number += 1
            continue
        indent, ticks = fence["indent"], fence["ticks"]
        end = number + 1
        while end < len(lines) and not re.match(rf"^\s*{re.escape(ticks[0])}{{{len(ticks)},}}\s*$", lines[end]):
            end += 1
        if end == len(lines):
            raise MalformedPage(f"{where}:{number + 1}: code fence never closed")
        if fence["info"] == "python":
            marker = NO_RUN.match(lines[number - 1]) if number else None
            reason = marker["reason"].strip() if marker else None
            if reason == "":
                raise MalformedPage(f"{where}:{number}: a no-run marker needs a reason")
            body = [line[len(indent):] if line.startswith(indent) else line for line in lines[number + 1:end]]
            blocks.append(Block(page, number + 2, "\n".join(body) + "\n", reason))
        number = end + 1
    return blocks


def _runnable_pages() -> list[object]:
    params = []
    for page in PAGES:
        if any(block.no_run is None for block in python_blocks(page)):
            marks = [pytest.mark.slow] if page in SLOW_PAGES else []
            params.append(pytest.param(page, id=_page_id(page), marks=marks))
    return params


NOT_RUN = [block for page in PAGES for block in python_blocks(page) if block.no_run is not None]
SLOW_PAGES = [page for page in PAGES if SLOW_PAGE in page.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("page", _runnable_pages())
def test_python_blocks_of_the_page_run(page: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    has_real_data = (REAL_DATA / "meld").is_dir()
    if has_real_data:
        monkeypatch.setenv("ERC_SYNTH_REAL_DATA", str(REAL_DATA))
    namespace: dict[str, object] = {"__name__": "__docs__"}
    runnable = [block for block in python_blocks(page) if block.no_run is None]
    for position, block in enumerate(runnable):
        if block.needs_real_data and not has_real_data:
            pytest.skip(f"{block.where} reads the licensed benchmark copies, absent at {REAL_DATA} (never "
                        f"committed); {position} block(s) of the page ran, {len(runnable) - position} not run")
        # Pad with blank lines so tracebacks name the page's own line numbers.
        exec(compile("\n" * (block.line - 1) + block.code, str(block.page), "exec"), namespace)


def _run_imports(block: Block) -> None:
    """Parse the block and run only its top-level imports: a renamed module or function shows at once."""
    tree = ast.parse(block.code, filename=str(block.page))
    ast.increment_lineno(tree, block.line - 1)
    imports = ast.Module(body=[node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)],
                         type_ignores=[])
    exec(compile(imports, str(block.page), "exec"), {"__name__": "__docs__"})


@pytest.mark.parametrize("block", NOT_RUN, ids=[block.where for block in NOT_RUN])
def test_block_marked_no_run_parses_imports_and_is_reported(block: Block) -> None:
    """A block that cannot run here still parses and its imports resolve; then it is reported as skipped, with
    the page's reason."""
    _run_imports(block)
    pytest.skip(f"{block.where} not run: {block.no_run}")


@pytest.mark.parametrize("page", SLOW_PAGES, ids=_page_id)
def test_blocks_of_a_slow_page_parse_and_import_in_the_fast_tier(page: Path) -> None:
    """The slow tier runs these pages in full; the fast tier still catches a renamed import on them."""
    for block in python_blocks(page):
        _run_imports(block)


def _heading_anchors(page: Path) -> set[str]:
    """GitHub's anchors for the page's headings (lower case, punctuation dropped, spaces to hyphens)."""
    anchors: set[str] = set()
    in_fence = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence and (heading := re.match(r"^#{1,6}\s+(.*?)\s*$", line)):
            text = re.sub(r"[^\w\- ]", "", heading[1].lower())
            anchors.add(text.replace(" ", "-"))
    return anchors


def _relative_links(page: Path) -> list[str]:
    text = re.sub(r"(?ms)^\s*(```|~~~).*?^\s*\1\s*$", "", page.read_text(encoding="utf-8"))
    text = re.sub(r"`[^`\n]*`", "", text)
    return [m["target"] for m in LINK.finditer(text) if not re.match(r"^[a-z]+:", m["target"])]


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_relative_links_of_the_page_resolve(page: Path) -> None:
    broken = []
    for target in _relative_links(page):
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        if not linked.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and linked.suffix == ".md" and anchor not in _heading_anchors(linked):
            broken.append(f"{target} (no heading with that anchor)")
    assert not broken, f"{_page_id(page)}: broken links: {', '.join(broken)}"


@pytest.mark.parametrize("index", [REPO_ROOT / "README.md", DOCS / "index.md"], ids=_page_id)
def test_every_docs_page_is_linked_from_the_readme_and_the_index(index: Path) -> None:
    linked = {(index.parent / target.partition("#")[0]).resolve() for target in _relative_links(index)}
    unlinked = [_page_id(page) for page in PAGES[1:] if page != index and page.resolve() not in linked]
    assert not unlinked, f"{_page_id(index)} does not link: {', '.join(unlinked)}"


def test_every_benchmark_script_is_on_the_benchmarks_page() -> None:
    """Measured figures live on one page, next to the script that measures them; a new script gets a row there."""
    page = (DOCS / "benchmarks.md").read_text(encoding="utf-8")
    scripts = sorted(path.relative_to(REPO_ROOT).as_posix() for path in (REPO_ROOT / "benchmarks").glob("*.py"))
    assert scripts, "no benchmark scripts found"
    missing = [script for script in scripts if f"`{script}`" not in page]
    assert not missing, f"docs/benchmarks.md does not list: {', '.join(missing)}"


def test_the_runner_reads_markers_indented_fences_and_other_languages(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# t\n\n```bash\necho '```python'\n```\n\n<!-- no-run: needs a Hub -->\n```python\nx = 1\n```\n"
                    "\n- item\n\n  ```python\n  y = 2\n  ```\n", encoding="utf-8")
    assert python_blocks(page) == [Block(page, 9, "x = 1\n", "needs a Hub"), Block(page, 15, "y = 2\n", None)]


@pytest.mark.parametrize(("text", "problem"), [
    ("<!-- no-run: why -->\n\n```python\nx = 1\n```\n", "right before"),
    ("<!-- no-run: -->\n```python\nx = 1\n```\n", "needs a reason"),
    ("```python\nx = 1\n", "never closed"),
], ids=["marker-not-before-fence", "marker-without-reason", "unclosed-fence"])
def test_the_runner_refuses_a_malformed_page(tmp_path: Path, text: str, problem: str) -> None:
    page = tmp_path / "page.md"
    page.write_text(text, encoding="utf-8")
    with pytest.raises(MalformedPage, match=problem):
        python_blocks(page)
