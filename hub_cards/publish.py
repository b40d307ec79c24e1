"""Publish built folders to the Hub: one commit per push, nothing committed when nothing changed.

Why ``create_commit`` with explicit operations rather than ``upload_folder``: the push also deletes remote
data files that a rebuild no longer has (a split that became empty), and still lets huggingface_hub drop
unchanged files by comparing the remote oids from ``preupload`` — so a second push of the same folder
makes no commit at all. The token comes from the caller, ``HF_TOKEN`` or the ``hf auth login`` store, and is
scrubbed from every error message this module raises.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from erc_synth.dataset_scripts.errors import ErcSynthError
from erc_synth.dataset_scripts.registry import BENCHMARKS, MODES

from .naming import ORG_PLACEHOLDER, repo_name

REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
#: Remote paths a push owns: stale ones are deleted when the local folder no longer has them.
OWNED_PREFIXES = ("data/",)


class PublishError(ErcSynthError):
    """A push that the Hub refused or that could not reach it; the message never contains the token."""


@dataclass(frozen=True)
class PushResult:
    repo_id: str
    committed: bool
    commit_oid: str
    url: str


def _scrub(text: str, token: str | None) -> str:
    if token:
        text = text.replace(token, "***")
    return re.sub(r"hf_[A-Za-z0-9]{8,}", "hf_***", text)


def _check_folder(folder: Path) -> None:
    if not (folder / "README.md").is_file() or not (folder / "data").is_dir():
        raise PublishError(f"{folder} is not a built dataset folder (README.md and data/ expected); "
                           "run `erc-synth build RUN_DIR --out DIR` first")


def _readme_for(folder: Path, repo_id: str) -> bytes:
    """The card with the load snippet's placeholder organisation replaced by the real repo id."""
    text = (folder / "README.md").read_text(encoding="utf-8")
    name = repo_id.split("/")[1]
    return text.replace(f'"{ORG_PLACEHOLDER}/{name}"', f'"{repo_id}"').replace(
        f"datasets/{ORG_PLACEHOLDER}/{name}", f"datasets/{repo_id}").encode("utf-8")


def push_folder(folder: str | Path, repo_id: str, *, private: bool = False, revision: str | None = None,
                token: str | None = None, endpoint: str | None = None) -> PushResult:
    """Push a built folder to the dataset repo ``repo_id`` in one commit (none when nothing changed)."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
    from huggingface_hub.errors import HfHubHTTPError
    from huggingface_hub.utils import get_token

    folder = Path(folder)
    if not REPO_ID.match(repo_id):
        raise PublishError(f"--repo {repo_id!r}: expected ORG/NAME")
    _check_folder(folder)
    token = token or get_token()
    api = HfApi(endpoint=endpoint, token=token)
    branch = revision or "main"
    try:
        url = str(api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True))
        if revision:
            api.create_branch(repo_id, branch=revision, repo_type="dataset", exist_ok=True)
        head = api.dataset_info(repo_id, revision=branch).sha
        local = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        operations: list = [
            CommitOperationAdd(path, _readme_for(folder, repo_id) if path == "README.md" else str(folder / path))
            for path in local
        ]
        remote = api.list_repo_files(repo_id, repo_type="dataset", revision=branch)
        operations += [CommitOperationDelete(path) for path in sorted(set(remote) - set(local))
                       if path.startswith(OWNED_PREFIXES)]
        info = api.create_commit(repo_id, operations, repo_type="dataset", revision=branch,
                                 commit_message=f"Publish {repo_id.split('/')[1]} built by erc-synth")
    except (HfHubHTTPError, OSError, ValueError) as exc:
        raise PublishError(_scrub(f"push of {folder} to {repo_id} failed: {type(exc).__name__}: {exc}",
                                  token)) from None
    except Exception as exc:  # httpx transport errors and the like: still never leak the token
        if type(exc).__module__.split(".")[0] not in ("httpx", "httpcore", "httpx2", "huggingface_hub"):
            raise
        raise PublishError(_scrub(f"push of {folder} to {repo_id} failed: {type(exc).__name__}: {exc}",
                                  token)) from None
    return PushResult(repo_id=repo_id, committed=info.oid != head, commit_oid=info.oid, url=url)


def built_folders(root: str | Path) -> Iterator[tuple[str, Path]]:
    """``(repo name, folder)`` for the six ``{benchmark}-synth-{mode}`` folders under ROOT, in registry order."""
    root = Path(root)
    for benchmark in BENCHMARKS:
        for mode in MODES:
            name = repo_name(benchmark, mode)
            yield name, root / name


def push_all(root: str | Path, org: str, *, private: bool = False, revision: str | None = None,
             token: str | None = None, endpoint: str | None = None, allow_missing: bool = False) -> list[PushResult]:
    """Push every ``ROOT/{benchmark}-synth-{mode}`` folder to ``ORG/{benchmark}-synth-{mode}``.

    All six folders are checked before the first push, so a missing build fails fast instead of leaving the
    organisation half published (``allow_missing`` pushes whatever exists).
    """
    folders = list(built_folders(root))
    missing = [str(path) for _, path in folders if not (path / "README.md").is_file()]
    if missing and (not allow_missing or len(missing) == len(folders)):
        raise PublishError(f"{root}: missing built folder(s) {', '.join(missing)}; build each run with "
                           "`erc-synth build RUN_DIR --out ROOT/{benchmark}-synth-{mode}`")
    return [push_folder(path, f"{org}/{name}", private=private, revision=revision, token=token, endpoint=endpoint)
            for name, path in folders if str(path) not in missing]
