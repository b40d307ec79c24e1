"""push and push-all publish a build only under its own name, and their errors say when a rerun can help.

Through the real console script against the local Hub server process (tests/helpers/servers/hub_server.py): a
MELD build in ``ROOT/iemocap-synth-balanced`` is refused before any request that writes, the override flag
publishes it, a name that is no set's passes, a refused token gets advice about the token (not a rerun), an
unreachable Hub keeps the rerun advice, and ``--org 'bad org'`` is named as ``--org`` before anything runs.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest
from helpers.builder_support import make_run_dir
from helpers.hub_support import TOKEN, LocalHub, start_local_hub

from erc_synth.dataset_scripts.core.dataset_key import all_keys
from erc_synth.hub_cards.folder import build_folder

pytestmark = pytest.mark.slow

RERUN = "rerun the same command"


@pytest.fixture
def local_hub(tmp_path_factory) -> LocalHub:
    """A fresh Hub per test, so "the Hub has no such repo" is about this test's pushes only."""
    yield from start_local_hub(tmp_path_factory)


def _build(root: Path, benchmark: str, mode: str, folder_name: str) -> Path:
    run = make_run_dir(root / "runs" / f"{benchmark}-{mode}", benchmark, mode, n=4, plant_duplicates=False)
    folder = root / "built" / folder_name
    build_folder(run, folder, decontaminate=False, quality_c2st=False)
    return folder


@pytest.fixture(scope="module")
def swapped_root(tmp_path_factory) -> Path:
    """The six built folders, with the MELD natural build and the IEMOCAP balanced build in each other's folder."""
    root = tmp_path_factory.mktemp("six")
    swap = {"meld-synth-natural": "iemocap-synth-balanced", "iemocap-synth-balanced": "meld-synth-natural"}
    for key in all_keys():
        _build(root, key.benchmark, key.mode, swap.get(key.repo_name, key.repo_name))
    return root / "built"


def _copy(folder: Path, tmp_path: Path) -> Path:
    """A folder of its own per test: a push re-renders the card in place."""
    return Path(shutil.copytree(folder, tmp_path / folder.parent.name / folder.name))


def _repo_exists(hub: LocalHub, repo_id: str) -> bool:
    request = Request(f"{hub.endpoint}/api/datasets/{repo_id}", headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        with urlopen(request, timeout=10):
            return True
    except HTTPError as err:
        assert err.code == 404, err
        return False


def _error_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    return lines[-1]


def _one_line(done: subprocess.CompletedProcess[str]) -> str:
    line = _error_line(done)
    assert done.stderr.strip() == line, done.stderr
    return line


def test_push_all_refuses_a_folder_whose_build_report_names_another_set_before_any_upload(
        local_hub: LocalHub, swapped_root: Path, tmp_path: Path):
    root = Path(shutil.copytree(swapped_root, tmp_path / "built"))
    before = local_hub.stats()
    refused = local_hub.cli("push-all", str(root), "--org", "org", cwd=tmp_path)
    line = _one_line(refused)
    # registry order: meld-synth-natural is the first folder, and it holds the IEMOCAP balanced build
    assert f"{root / 'meld-synth-natural'} holds iemocap-synth-balanced (benchmark iemocap, mode balanced)" in line
    assert "org/meld-synth-natural" in line and "--allow-name-mismatch" in line
    assert local_hub.stats() == before
    assert [key.repo_name for key in all_keys() if _repo_exists(local_hub, f"org/{key.repo_name}")] == []

    allowed = local_hub.cli("push-all", str(root), "--org", "org", "--allow-name-mismatch", cwd=tmp_path)
    assert allowed.returncode == 0, allowed.stderr
    assert allowed.stdout.count("new commit") == 6
    names = local_hub.python(
        "import json; from datasets import load_dataset\n"
        "d = load_dataset('org/iemocap-synth-balanced', 'utterances')\n"
        "print(json.dumps(d['train'].features['emotion'].names))", tmp_path)
    assert names == ["neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear"]  # MELD's, as published


def test_push_refuses_the_name_of_another_set_and_the_flag_overrides_it(local_hub: LocalHub, swapped_root: Path,
                                                                        tmp_path: Path):
    folder = _copy(swapped_root / "iemocap-synth-balanced", tmp_path)  # the MELD natural build
    before = local_hub.stats()
    refused = local_hub.cli("push", str(folder), "--repo", "org/iemocap-synth-balanced", cwd=tmp_path)
    line = _one_line(refused)
    assert f"{folder} holds meld-synth-natural (benchmark meld, mode natural)" in line
    assert "org/iemocap-synth-balanced" in line and "org/meld-synth-natural" in line
    assert "--allow-name-mismatch" in line
    assert local_hub.stats() == before and not _repo_exists(local_hub, "org/iemocap-synth-balanced")
    config_name = local_hub.cli("push", str(folder), "--repo", "org/emorynlp-natural", cwd=tmp_path)
    assert "--allow-name-mismatch" in _one_line(config_name)  # a set's config name is its name too
    assert local_hub.stats() == before

    allowed = local_hub.cli("push", str(folder), "--repo", "org/iemocap-synth-balanced", "--allow-name-mismatch",
                            cwd=tmp_path)
    assert allowed.returncode == 0 and "new commit" in allowed.stdout, allowed.stderr
    assert _repo_exists(local_hub, "org/iemocap-synth-balanced")


def test_push_under_a_name_no_set_has_needs_no_flag(local_hub: LocalHub, swapped_root: Path, tmp_path: Path):
    folder = _copy(swapped_root / "iemocap-synth-balanced", tmp_path)  # the folder name is not the repo name
    for repo in ("org/my-meld-test", "org/meld-synth-natural"):
        pushed = local_hub.cli("push", str(folder), "--repo", repo, cwd=tmp_path)
        assert pushed.returncode == 0 and "new commit" in pushed.stdout, pushed.stderr
        assert _repo_exists(local_hub, repo)


def test_a_refused_token_says_what_to_fix_and_not_to_rerun(local_hub: LocalHub, swapped_root: Path, tmp_path: Path):
    folder = _copy(swapped_root / "emorynlp-synth-natural", tmp_path)
    bad_token = "hf_WrongTokenThatMustNotLeak987654"
    denied = local_hub.cli("push", str(folder), "--repo", "org/emorynlp-synth-natural", cwd=tmp_path,
                           token=bad_token)
    line = _one_line(denied)
    assert "HTTP 401" in line and "refuses the token" in line and "HF_TOKEN" in line and "hf auth login" in line
    assert RERUN not in line and "nothing is lost" not in line
    assert bad_token not in denied.stderr + denied.stdout

    other_org = local_hub.cli("push", str(folder), "--repo", "someone-else/emorynlp-synth-natural", cwd=tmp_path)
    line = _one_line(other_org)
    assert "HTTP 403" in line and "write access to someone-else" in line and RERUN not in line

    local_hub.control(fail={"path": "/api/repos/create", "status": 404, "count": 1, "message": "no such org"})
    missing = local_hub.cli("push", str(folder), "--repo", "org/emorynlp-synth-natural", cwd=tmp_path)
    line = _one_line(missing)
    assert "HTTP 404" in line and "does not exist on" in line and RERUN not in line


def test_an_unreachable_hub_keeps_the_rerun_advice(local_hub: LocalHub, swapped_root: Path, tmp_path: Path):
    folder = _copy(swapped_root / "emorynlp-synth-balanced", tmp_path)
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens on it
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**local_hub.env(), "HF_ENDPOINT": f"http://127.0.0.1:{port}"}
    done = subprocess.run([sys.executable, "-m", "erc_synth.cli", "push", str(folder), "--repo",
                           "org/emorynlp-synth-balanced"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    line = _error_line(done)
    assert line.startswith("erc-synth push: error: push of ") and RERUN in line, done.stderr
    assert TOKEN not in done.stderr + done.stdout


def test_a_bad_org_is_named_as_org_by_push_all(local_hub: LocalHub, swapped_root: Path, tmp_path: Path):
    before = local_hub.stats()
    refused = local_hub.cli("push-all", str(swapped_root), "--org", "bad org", cwd=tmp_path)
    line = _one_line(refused)
    assert "--org 'bad org'" in line and "--repo" not in line
    assert local_hub.stats() == before


def test_a_bad_org_is_refused_by_run_before_anything_is_generated(local_hub: LocalHub, tmp_path: Path):
    out = tmp_path / "out"
    refused = local_hub.cli("run", "--preset", "quickstart", "--out", str(out), "--org", "bad org", cwd=tmp_path)
    line = _one_line(refused)
    assert line.startswith("erc-synth run: error: --org 'bad org'"), line
    assert not out.exists()


def test_the_flag_is_in_the_help_of_both_commands():
    for command in ("push", "push-all"):
        done = subprocess.run([sys.executable, "-m", "erc_synth.cli", command, "--help"], capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0 and "--allow-name-mismatch" in done.stdout, done.stderr
