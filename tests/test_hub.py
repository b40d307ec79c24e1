"""Publishing to a local Hub server process: push, load back by name, card, no-op push, faults, hf upload."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest
from datasets import load_dataset
from helpers.builder_support import make_run_dir
from helpers.hub_support import TOKEN, LocalHub, start_local_hub
from PIL import Image

from erc_synth.cli import main as erc_synth
from erc_synth.dataset_scripts.core.registry import get_benchmark
from erc_synth.hub_cards import PublishError, build_folder, push_folder

pytestmark = pytest.mark.slow

LOAD_BACK = """
import json
from datasets import load_dataset
from PIL import Image
from huggingface_hub import DatasetCard, HfApi
repo = {repo!r}
out = {{}}
for config in ("dialogues", "utterances"):
    dd = load_dataset(repo, config)
    out[config] = {{split: ds.to_list() for split, ds in dd.items()}}
    out[config + "_features"] = {{n: repr(f) for n, f in dd["train"].features.items()}}
card = DatasetCard.load(repo, repo_type="dataset")
out["card_text"] = card.text
out["card_license"] = card.data.license
out["commits"] = len(HfApi().list_repo_commits(repo, repo_type="dataset"))
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def local_hub(tmp_path_factory) -> LocalHub:
    yield from start_local_hub(tmp_path_factory)


def _local_rows(folder: Path) -> dict:
    out = {}
    for config in ("dialogues", "utterances"):
        dd = load_dataset(str(folder), config)
        out[config] = {split: ds.to_list() for split, ds in dd.items()}
        out[config + "_features"] = {n: repr(f) for n, f in dd["train"].features.items()}
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("built")
    run = make_run_dir(root / "run", "meld", "balanced", n=24)
    folder = root / "meld-synth-balanced"
    build_folder(run, folder)
    return folder


def test_push_then_load_by_name_gives_the_same_rows_labels_and_card(local_hub: LocalHub, built: Path, tmp_path):
    first = local_hub.cli("push", str(built), "--repo", "org/meld-synth-balanced", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "new commit" in first.stdout
    again = local_hub.cli("push", str(built), "--repo", "org/meld-synth-balanced", cwd=tmp_path)
    assert again.returncode == 0 and "unchanged, no commit" in again.stdout, again.stderr
    remote = local_hub.python(LOAD_BACK.format(repo="org/meld-synth-balanced"), tmp_path)
    local = _local_rows(built)
    for key in ("dialogues", "utterances", "dialogues_features", "utterances_features"):
        assert remote[key] == local[key], key
    assert "ClassLabel(names=['neutral', 'joy', 'surprise', 'anger', 'sadness', 'disgust', 'fear'])" in \
        remote["utterances_features"]["emotion"]
    assert remote["commits"] == 2  # the repo's initial commit + exactly one push commit
    text = remote["card_text"]
    assert remote["card_license"] == "cc-by-4.0"
    assert 'load_dataset("org/meld-synth-balanced")' in text  # placeholder org filled in at push time
    for section in ("## Summary", "## How to load", "## Schema", "## Generation setup", "## Quality gates",
                    "## Rejected generations", "## Statistics", "## Label distribution", "## Intended uses",
                    "## Licence", "## Citation"):
        assert section in text, section


def test_interrupted_push_fails_clearly_and_a_rerun_completes(local_hub: LocalHub, tmp_path):
    run = make_run_dir(tmp_path / "run", "iemocap", "natural", n=12, plant_duplicates=False)
    folder = tmp_path / "iemocap-synth-natural"
    build_folder(run, folder)
    # One upload dropped mid-body (huggingface_hub retries it), then the commit request dropped: the push
    # fails with a clear error; the rerun reuses the verified uploads and completes in one commit.
    local_hub.control(drop_uploads=1, drop_commits=1)
    before = local_hub.stats()
    failed = local_hub.cli("push", str(folder), "--repo", "org/iemocap-synth-natural", cwd=tmp_path)
    assert failed.returncode == 2
    assert "Traceback" not in failed.stderr
    *retries, line = [line for line in failed.stderr.splitlines() if line.strip()]
    assert [r for r in retries if "Retry" not in r and "thrown while requesting" not in r] == []  # retry notes
    assert line.startswith("erc-synth push: error: ")
    assert "push of" in line and "org/iemocap-synth-natural" in line and "rerun the same command" in line
    after_failure = local_hub.stats()
    assert after_failure["dropped"] == before["dropped"] + 2
    assert after_failure["commits"] == before["commits"] + 1  # only the repo's initial commit
    rerun = local_hub.cli("push", str(folder), "--repo", "org/iemocap-synth-natural", cwd=tmp_path)
    assert rerun.returncode == 0 and "new commit" in rerun.stdout, rerun.stderr
    assert local_hub.stats()["lfs_uploads"] == after_failure["lfs_uploads"]  # nothing uploaded twice
    rows = local_hub.python(
        "import json; from datasets import load_dataset; "
        "d = load_dataset('org/iemocap-synth-natural'); print(json.dumps({s: len(v) for s, v in d.items()}))",
        tmp_path)
    assert sum(rows.values()) == 12


def test_server_errors_and_bad_tokens_give_clear_errors_without_the_token(local_hub: LocalHub, built: Path,
                                                                            tmp_path):
    bad_token = "hf_WrongTokenThatMustNotLeak987654"
    denied = local_hub.cli("push", str(built), "--repo", "org/meld-denied", cwd=tmp_path, token=bad_token)
    assert denied.returncode == 2
    assert "401" in denied.stderr and "org/meld-denied" in denied.stderr
    assert bad_token not in denied.stderr + denied.stdout
    local_hub.control(fail={"path": "/commit/", "status": 422, "count": 1, "message": "metadata rejected"})
    refused = local_hub.cli("push", str(built), "--repo", "org/meld-refused", cwd=tmp_path)
    assert refused.returncode == 2
    assert "422" in refused.stderr and "metadata rejected" in refused.stderr
    assert TOKEN not in refused.stderr + refused.stdout
    with pytest.raises(PublishError, match="not a built dataset folder"):
        push_folder(tmp_path, "org/x", endpoint=local_hub.endpoint, token=TOKEN)
    with pytest.raises(PublishError, match="expected ORG/NAME"):
        push_folder(built, "no-org", endpoint=local_hub.endpoint, token=TOKEN)


def test_push_to_a_revision_commits_on_that_branch_only(local_hub: LocalHub, built: Path, tmp_path):
    pushed = local_hub.cli("push", str(built), "--repo", "org/meld-branch", "--revision", "v1", "--private",
                           cwd=tmp_path)
    assert pushed.returncode == 0 and "new commit" in pushed.stdout, pushed.stderr
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with urlopen(Request(f"{local_hub.endpoint}/api/datasets/org/meld-branch/refs", headers=headers)) as response:
        branches = {b["name"]: b["targetCommit"] for b in json.loads(response.read())["branches"]}
    assert set(branches) == {"main", "v1"} and branches["main"] != branches["v1"]
    with urlopen(Request(f"{local_hub.endpoint}/api/datasets/org/meld-branch/revision/main",
                         headers=headers)) as response:
        assert [f["rfilename"] for f in json.loads(response.read())["siblings"]] == [".gitattributes"]
    with pytest.raises(HTTPError) as err:  # private: invisible without the token
        urlopen(f"{local_hub.endpoint}/api/datasets/org/meld-branch")
    assert err.value.code == 404


def test_built_folder_works_with_hf_upload(local_hub: LocalHub, built: Path, tmp_path):
    hf = Path(__import__("sys").executable).with_name("hf")
    create = local_hub.run([str(hf), "repos", "create", "org/meld-via-hf", "--repo-type", "dataset"], tmp_path)
    assert create.returncode == 0, create.stderr
    upload = local_hub.run([str(hf), "upload", "org/meld-via-hf", str(built), ".", "--repo-type", "dataset"],
                           tmp_path)
    assert upload.returncode == 0, upload.stderr
    loaded = local_hub.python(
        "import json; from datasets import load_dataset; d = load_dataset('org/meld-via-hf', 'utterances'); "
        "print(json.dumps({'n': d['train'].num_rows, 'names': d['train'].features['emotion'].names}))", tmp_path)
    local = load_dataset(str(built), "utterances")["train"]
    assert loaded == {"n": local.num_rows, "names": local.features["emotion"].names}


def test_push_all_publishes_six_builds_loaded_back_by_name(local_hub: LocalHub, tmp_path):
    runs, root = tmp_path / "runs", tmp_path / "built"
    for i, benchmark in enumerate(("meld", "emorynlp", "iemocap")):
        for mode in ("natural", "balanced"):
            make_run_dir(runs / f"{benchmark}-{mode}-run", benchmark, mode, n=10, seed=i + 1, plant_duplicates=False)
    assert erc_synth(["build-all", str(runs), "--out", str(root)]) == 0
    with Image.open(root / "meld-synth-natural" / "label_distribution.png") as image:
        assert image.width >= 3 * 400  # every card carries the three-benchmark figure
    pushed = local_hub.cli("push-all", str(root), "--org", "org", cwd=tmp_path)
    assert pushed.returncode == 0, pushed.stderr
    assert pushed.stdout.count("new commit") == 6
    loaded = local_hub.python(
        "import json; from datasets import load_dataset\n"
        "out = {}\n"
        "for b in ('meld', 'emorynlp', 'iemocap'):\n"
        "    for m in ('natural', 'balanced'):\n"
        "        d = load_dataset(f'org/{b}-synth-{m}')\n"
        "        out[f'{b}-{m}'] = [sum(len(v) for v in d.values()), d['train'].features['emotions'].feature.names]\n"
        "print(json.dumps(out))", tmp_path)
    assert len(loaded) == 6
    for key, (count, names) in loaded.items():
        assert count == 10 and names == list(get_benchmark(key.split("-")[0]).labels)
    (root / "meld-synth-natural" / "README.md").unlink()
    missing = local_hub.cli("push-all", str(root), "--org", "org", cwd=tmp_path)
    assert missing.returncode == 2 and "meld-synth-natural" in missing.stderr


def test_push_uploads_only_what_the_build_wrote_and_the_hub_card_equals_the_local_one(local_hub: LocalHub, tmp_path):
    run = make_run_dir(tmp_path / "run", "meld", "natural", n=10, plant_duplicates=False)
    folder = tmp_path / "meld-synth-natural"
    report = build_folder(run, folder)
    built_card = (folder / "README.md").read_text()
    assert 'load_dataset("ORG/meld-synth-natural")' in built_card  # the build did not know the repo id
    (folder / "data" / ".env").write_text("HF_TOKEN=hf_SecretThatMustStayLocal0000\n")
    (folder / "notes.txt").write_text("mine\n")
    pushed = local_hub.cli("push", str(folder), "--repo", "org/meld-allow", cwd=tmp_path)
    assert pushed.returncode == 0, pushed.stderr
    assert "skipped (not written by the build, not uploaded): data/.env, notes.txt" in pushed.stdout
    remote = local_hub.python(
        "import json; from huggingface_hub import HfApi, hf_hub_download\n"
        "files = HfApi().list_repo_files('org/meld-allow', repo_type='dataset')\n"
        "card = open(hf_hub_download('org/meld-allow', 'README.md', repo_type='dataset')).read()\n"
        "print(json.dumps({'files': sorted(files), 'card': card}))", tmp_path)
    assert remote["files"] == sorted([".gitattributes", *report.files])
    local_card = (folder / "README.md").read_text()
    assert remote["card"] == local_card  # re-rendered for the repo id in the folder, then uploaded
    assert 'load_dataset("org/meld-allow")' in local_card
    assert local_card.replace("org/meld-allow", "ORG/meld-synth-natural") == built_card  # only the repo id changed
    again = local_hub.cli("push", str(folder), "--repo", "org/meld-allow", cwd=tmp_path)
    assert again.returncode == 0 and "unchanged, no commit" in again.stdout, again.stderr


def test_push_of_a_folder_without_its_build_report_is_refused_before_any_upload(local_hub: LocalHub, built: Path,
                                                                                 tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(built, copy)
    (copy / "build_report.json").unlink()
    before = local_hub.stats()
    refused = local_hub.cli("push", str(copy), "--repo", "org/meld-no-report", cwd=tmp_path)
    assert refused.returncode == 2 and "build_report.json is missing" in refused.stderr
    assert local_hub.stats() == before
