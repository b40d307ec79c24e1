"""Publish built folders to the Hub: one commit per push, nothing committed when nothing changed.

A push is ``upload_folder`` with an allow-list: exactly the files the build wrote, as its ``build_report.json``
lists them (data files, card, plot, audit files, the report itself), each checked against the size and sha256
the build recorded (a folder edited or damaged after its build is refused, naming the first file that differs).
Anything else in the folder (notes, a ``data/.env``) is listed and skipped, never uploaded.
``delete_patterns`` removes remote data and audit files a
rebuild no longer has (a split that became empty), and huggingface_hub drops unchanged files by comparing
remote oids, so a second push of the same folder makes no commit at all.

When the build did not know the repo id, the push first re-renders the card from the stored build report for
this repo id and writes it into the folder, so the local folder is always what the Hub holds. The token comes
from the caller, ``HF_TOKEN`` or the ``hf auth login`` store, and is scrubbed from every error message this
module raises.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from erc_synth.dataset_scripts.core.dataset_key import DatasetKey, all_keys
from erc_synth.dataset_scripts.core.errors import ErcSynthError, SettingError

REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
#: Remote paths a push owns: stale ones are deleted when the local folder no longer has them.
OWNED_PATTERNS: tuple[str, ...] = ("data/**", "audit/**")
RETRY_HINT = ("nothing is lost: files already uploaded are reused, so rerun the same command to finish the push "
              "(check the network and HF_ENDPOINT if it keeps failing)")
#: HTTP statuses a later attempt can get past (besides 5xx): a timeout, rate limiting, a commit raced by another.
RETRYABLE_STATUSES = frozenset({408, 409, 412, 423, 425, 429})


class PublishError(ErcSynthError):
    """A push that the Hub refused or that could not reach it; the message never contains the token."""


class PublishSettingError(SettingError, PublishError):
    """A push refused for one of its arguments (``repo_id``, ``holds_iemocap_rights``), named so that the
    command can give its flag."""


@dataclass(frozen=True)
class PushResult:
    repo_id: str
    committed: bool
    commit_oid: str
    url: str
    #: Files in the folder that the build did not write, so were not uploaded (relative paths).
    skipped: tuple[str, ...] = ()


def _scrub(text: str, token: str | None) -> str:
    if token:
        text = text.replace(token, "***")
    return re.sub(r"hf_[A-Za-z0-9]{8,}", "hf_***", text)


def _literal(value: object) -> str:
    """``value`` inside a ``SettingError`` template, whose ``{name}`` fields are filled in later."""
    return str(value).replace("{", "{{").replace("}", "}}")


def _check_folder(folder: Path) -> None:
    if not (folder / "README.md").is_file() or not (folder / "data").is_dir():
        raise PublishError(f"{folder} is not a built dataset folder (README.md and data/ expected); "
                           "run `erc-synth build RUN_DIR --out DIR` first")


def allowed_files(folder: str | Path) -> tuple[list[str], list[str]]:
    """``(uploaded, skipped)``: the files the build wrote, and every other file in the folder (hidden included)."""
    from .folder import read_build_report, verify_folder

    folder = Path(folder)
    report = read_build_report(folder)
    files = report.get("files")
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise PublishError(f"{folder}/build_report.json: field 'files' must be a list of paths; rebuild the "
                           "folder from its RUN_DIR")
    written = set(files)
    present = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    missing = sorted(written - set(present))
    if missing:
        raise PublishError(f"{folder}: file(s) the build wrote are gone ({', '.join(missing[:5])}); rebuild the "
                           "folder from its RUN_DIR")
    verify_folder(folder)  # sizes and sha256 as the build wrote them, or nothing is pushed
    return [p for p in present if p in written], [p for p in present if p not in written]


def _status(exc: BaseException) -> int | None:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def _advice(exc: BaseException, repo_id: str, endpoint: str) -> str:
    """What to do next; the rerun advice only where a rerun can succeed (no answer, a timeout, 5xx, 429).

    Why not always: a refused token or a missing organisation fails the same way on every rerun, and advice to
    rerun sends the user round that loop instead of to the cause.
    """
    org = repo_id.split("/")[0]
    status = _status(exc)
    if status == 401:
        return (f"the Hub at {endpoint} refuses the token (HTTP 401), so rerunning cannot help: check HF_TOKEN or "
                f"run `hf auth login` with a token that has write access to {org}")
    if status == 403:
        return (f"the Hub at {endpoint} refuses the token for {org} (HTTP 403), so rerunning cannot help: check "
                f"HF_TOKEN or run `hf auth login` with a token that has write access to {org}, or check the "
                "organisation name")
    if status == 404:
        return (f"{repo_id} or its organisation {org} does not exist on {endpoint} (HTTP 404), so rerunning cannot "
                "help: check the organisation name and HF_ENDPOINT")
    if status is not None and status < 500 and status not in RETRYABLE_STATUSES:
        return f"the Hub refused the push (HTTP {status}), so rerunning cannot help until its cause is fixed"
    if status is None and isinstance(exc, ValueError):  # an argument huggingface_hub refused before any request
        return "rerunning the same command cannot help until its cause is fixed"
    return RETRY_HINT


def _fail(folder: Path, repo_id: str, exc: BaseException, token: str | None, endpoint: str) -> PublishError:
    said = " ".join(str(exc).split())  # the Hub's multi-line answers, kept to the one-line error
    return PublishError(_scrub(f"push of {folder} to {repo_id} failed: {type(exc).__name__}: {said}; "
                               f"{_advice(exc, repo_id, endpoint)}", token))


def check_org(org: str) -> None:
    """Refuse an organisation (or user) name the Hub cannot hold, before anything is generated, built or pushed.

    Checked with huggingface_hub's own repo id validator on ``ORG/x``, so the rule is the Hub's, not a copy.
    """
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        valid = "/" not in org and bool(REPO_ID.match(f"{org}/x")) and validate_repo_id(f"{org}/x") is None
    except HFValidationError:
        valid = False
    if not valid:
        raise PublishSettingError("org", f"{org!r} is not a Hub organisation or user name: use letters, digits, "
                                  "'-', '_' and '.' only (no spaces or '/', no '--' or '..', at most 94 "
                                  "characters)")


def built_key(folder: str | Path) -> DatasetKey:
    """Which set the folder holds, as its build report says (not as its folder name says)."""
    from .folder import BUILD_REPORT_FILE, read_build_report

    card = read_build_report(folder).get("card") or {}
    try:
        return DatasetKey(str(card.get("benchmark")), str(card.get("mode")))
    except ErcSynthError as exc:
        raise PublishError(f"{Path(folder) / BUILD_REPORT_FILE}: field 'card' names no synthetic set ({exc}); "
                           "rebuild the folder from its RUN_DIR") from None


def named_key(repo_id: str) -> DatasetKey | None:
    """The set whose canonical name (``meld-synth-natural``, or ``meld-natural``) the repo has; None for any other."""
    name = repo_id.split("/")[-1].lower()
    return next((key for key in all_keys() if name in (key.repo_name, key.config_name)), None)


def check_identity(folder: str | Path, repo_id: str, allow_name_mismatch: bool) -> None:
    """Refuse to publish a build under the canonical name of another set (a MELD build as ``org/iemocap-...``).

    A name that is no set's (``org/my-meld-test``) is the user's choice and passes; only a name that tells
    readers of the Hub a benchmark or mode the data does not have is refused.
    """
    built, named = built_key(folder), named_key(repo_id)
    if allow_name_mismatch or named is None or named == built:
        return
    raise PublishSettingError(
        "allow_name_mismatch", f"is off, but {_literal(folder)} holds {built.repo_name} (benchmark {built.benchmark}, "
        f"mode {built.mode}) by its build_report.json, and the repo name {_literal(repo_id)} is that of "
        f"{named.repo_name}; push it as {_literal(repo_id.split('/')[0])}/{built.repo_name}, or turn "
        "{allow_name_mismatch} on to publish it under that name anyway (nothing was pushed)",
        related=("allow_name_mismatch",))


def check_derived_rights(folder: str | Path, holds_iemocap_rights: bool) -> None:
    """Refuse a set written by a generator tuned on IEMOCAP: its release form forbids redistributing the text,
    and such a generator's output is derived from it; the user must state that they hold the rights."""
    from .folder import read_build_report

    manifest = (read_build_report(folder).get("card") or {}).get("manifest") or {}
    tuning = (manifest.get("provenance") or {}).get("generator_tuning") or {}
    if tuning.get("benchmark") == "iemocap" and not holds_iemocap_rights:
        raise PublishSettingError(
            "holds_iemocap_rights", f"is off, but {folder} was written by a generator tuned on the IEMOCAP train "
            "split, whose release form forbids redistribution; turn {holds_iemocap_rights} on only if your "
            "IEMOCAP licence lets you publish data derived from it", related=("holds_iemocap_rights",))


def push_folder(folder: str | Path, repo_id: str, *, private: bool = False, revision: str | None = None,
                token: str | None = None, endpoint: str | None = None,
                holds_iemocap_rights: bool = False, allow_name_mismatch: bool = False) -> PushResult:
    """Push what the build wrote in ``folder`` to the dataset repo ``repo_id`` in one commit (none when unchanged).

    A set from an IEMOCAP-tuned generator is refused unless ``holds_iemocap_rights`` (``check_derived_rights``),
    and a repo named as another set is refused unless ``allow_name_mismatch`` (``check_identity``)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError
    from huggingface_hub.utils import get_token, validate_repo_id

    from .folder import rerender_card

    folder = Path(folder)
    if not REPO_ID.match(repo_id):
        raise PublishSettingError("repo_id", f"expected ORG/NAME, got {repo_id!r}")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise PublishSettingError("repo_id", f"{repo_id!r} is not a Hub repo id ({exc})") from None
    _check_folder(folder)
    check_identity(folder, repo_id, allow_name_mismatch)
    check_derived_rights(folder, holds_iemocap_rights)
    rerender_card(folder, repo_id)
    upload, skipped = allowed_files(folder)
    token = token or get_token()
    api = HfApi(endpoint=endpoint, token=token)
    branch = revision or "main"
    try:
        url = str(api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True))
        if revision:
            api.create_branch(repo_id, branch=revision, repo_type="dataset", exist_ok=True)
        head = api.dataset_info(repo_id, revision=branch).sha
        info = api.upload_folder(repo_id=repo_id, folder_path=folder, repo_type="dataset", revision=branch,
                                 allow_patterns=upload, delete_patterns=list(OWNED_PATTERNS),
                                 commit_message=f"Publish {repo_id.split('/')[1]} built by erc-synth")
    except (HfHubHTTPError, OSError, ValueError, RuntimeError) as exc:
        raise _fail(folder, repo_id, exc, token, api.endpoint) from None
    except Exception as exc:  # httpx transport errors and the like: still never leak the token
        if type(exc).__module__.split(".")[0] not in ("httpx", "httpcore", "httpx2", "huggingface_hub"):
            raise
        raise _fail(folder, repo_id, exc, token, api.endpoint) from None
    return PushResult(repo_id=repo_id, committed=info.oid != head, commit_oid=info.oid, url=url,
                      skipped=tuple(skipped))


def built_folders(root: str | Path) -> Iterator[tuple[str, Path]]:
    """``(repo name, folder)`` for the six ``{benchmark}-synth-{mode}`` folders under ROOT, in registry order."""
    root = Path(root)
    for key in all_keys():
        yield key.repo_name, root / key.folder_name


def push_all(root: str | Path, org: str, *, private: bool = False, revision: str | None = None,
             token: str | None = None, endpoint: str | None = None, allow_missing: bool = False,
             holds_iemocap_rights: bool = False, allow_name_mismatch: bool = False) -> list[PushResult]:
    """Push every ``ROOT/{benchmark}-synth-{mode}`` folder to ``ORG/{benchmark}-synth-{mode}``.

    All six folders are checked before the first push, so a missing build, or one whose build report names
    another set than its folder does, fails fast instead of leaving the organisation half published
    (``allow_missing`` pushes whatever exists; ``allow_name_mismatch`` publishes each under its folder name).
    """
    check_org(org)
    folders = list(built_folders(root))
    missing = [str(path) for _, path in folders if not (path / "README.md").is_file()]
    if missing and (not allow_missing or len(missing) == len(folders)):
        raise PublishError(f"{root}: missing built folder(s) {', '.join(missing)}; build each run with "
                           "`erc-synth build RUN_DIR --out ROOT/{benchmark}-synth-{mode}`")
    present = [(name, path) for name, path in folders if str(path) not in missing]
    for name, path in present:  # refused before anything is pushed, like a missing folder
        _check_folder_identity(root, path, f"{org}/{name}", allow_name_mismatch)
        check_derived_rights(path, holds_iemocap_rights)
    return [push_folder(path, f"{org}/{name}", private=private, revision=revision, token=token, endpoint=endpoint,
                        holds_iemocap_rights=holds_iemocap_rights, allow_name_mismatch=allow_name_mismatch)
            for name, path in present]


def _check_folder_identity(root: str | Path, folder: Path, repo_id: str, allow_name_mismatch: bool) -> None:
    """push-all's form of ``check_identity``: the folder name is the repo name, so the advice is to move it."""
    built = built_key(folder)
    if allow_name_mismatch or built.repo_name == folder.name:
        return
    raise PublishSettingError(
        "allow_name_mismatch", f"is off, but {_literal(folder)} holds {built.repo_name} (benchmark {built.benchmark}, "
        f"mode {built.mode}) by its build_report.json, so push-all would publish it as {_literal(repo_id)}; build "
        f"or move it to {_literal(Path(root) / built.repo_name)}, or turn {{allow_name_mismatch}} on to publish it "
        "under its folder name (nothing was pushed)", related=("allow_name_mismatch",))
