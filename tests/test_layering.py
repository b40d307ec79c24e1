"""The layering of docs/architecture.md holds, and the check really fails on a back-edge or a cycle.

The check is import-linter's, run by scripts/check-layers.sh on the installed layout. Planting a violation in a
temporary copy of the sources proves that the contracts are not vacuous.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "check-layers.sh"
AREAS = ("erc_synth", "dataset_scripts", "generation", "classifiers", "evaluate_metrics", "hub_cards")


def _check(source: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), str(source)], capture_output=True, text=True, timeout=120)


def _copy_sources(tmp_path: Path) -> Path:
    copy = tmp_path / "src"
    for area in AREAS:
        shutil.copytree(ROOT / area, copy / area, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    return copy


def _plant(module: Path, line: str) -> None:
    module.write_text(module.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")


def test_the_repository_keeps_every_import_contract():
    result = _check(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(("module", "line", "broken"), [
    ("hub_cards/card.py", "import erc_synth.classifiers.audit  # noqa", "Areas point one way"),
    ("generation/prompts.py", "import erc_synth.hub_cards.naming  # noqa", "Areas point one way"),
    ("dataset_scripts/core/errors.py", "import erc_synth.dataset_scripts.schema  # noqa",
     "dataset_scripts.core is the bottom"),
    ("hub_cards/naming.py", "import erc_synth.hub_cards.card  # noqa", "No cycles between sibling modules"),
])
def test_a_planted_back_edge_or_cycle_breaks_its_contract(tmp_path, module, line, broken):
    copy = _copy_sources(tmp_path)
    _plant(copy / module, line)
    result = _check(copy)
    assert result.returncode != 0
    assert f"{broken} BROKEN" in result.stdout
    assert line.split()[1].rsplit(".", 1)[-1] in result.stdout  # the report names the planted import
