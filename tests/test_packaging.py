"""The installed distribution claims exactly one top-level import name, ``erc_synth``.

Why a real wheel in a fresh venv: the areas' folders sit at the repository root and reach ``erc_synth.*`` only
through setuptools' ``package-dir`` mapping, so only an actual build and install shows what a user's
site-packages gets (an editable install, or the source tree on ``sys.path``, would hide a mistake).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
from conftest import REPO_ROOT

pytestmark = pytest.mark.slow

AREAS = ("dataset_scripts", "generation", "classifiers", "evaluate_metrics", "hub_cards")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # A copy of the tracked tree: setuptools writes build/ beside the sources, never into the checkout itself.
    source = tmp_path_factory.mktemp("source")
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, check=True, capture_output=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        if (REPO_ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / name, source / name)
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*pip_wheel, str(source), "-w", str(out)], check=True, cwd=out)
    (built,) = out.glob("erc_synth-*.whl")
    return built


def test_wheel_holds_one_top_level_package_with_the_areas_and_their_data(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {"erc_synth", wheel.name.split("-py")[0] + ".dist-info"}
    for area in AREAS:
        assert f"erc_synth/{area}/__init__.py" in names
    for data_file in (
        "erc_synth/generation/templates/v1/meld_balanced.txt",
        "erc_synth/classifiers/configs/paper.yaml",
        "erc_synth/hub_cards/templates/dataset_card.md",
        "erc_synth/evaluate_metrics/erc_metrics/erc_metrics.py",
        "erc_synth/presets/quickstart.yaml",
    ):
        assert data_file in names


def _prints(python: Path, code: str, cwd: Path) -> str:
    """What ``code`` prints when the fresh venv's interpreter runs it outside the checkout."""
    done = subprocess.run([python, "-c", code], check=True, capture_output=True, text=True, cwd=cwd)
    return done.stdout.strip()


def test_fresh_venv_gets_only_erc_synth(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True)
    listing = _prints(
        python,
        "import importlib.metadata as m; print(sorted(k for k, v in m.packages_distributions().items() "
        "if 'erc-synth' in v))",
        tmp_path,
    )
    assert listing == "['erc_synth']"
    templates = _prints(
        python,
        "from importlib import resources; "
        "print((resources.files('erc_synth.generation') / 'templates' / 'v1' / 'meld_natural.txt').is_file())",
        tmp_path,
    )
    assert templates == "True"
