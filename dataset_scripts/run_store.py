"""The on-disk store of a generation run (RUN_DIR), shared by the generator (writer) and the builder (reader).

Python API (what the engine, ``erc-synth inspect`` and the builder use)::

    store = RunStore.open(run_dir)                 # read-only; RunStore.create_or_open(...) to append
    store.records()   -> list[RunRecord]           # every record, sorted by (index, attempt), typed, validated
    store.raw_records() -> list[dict]              # the same as JSON objects (for hashing or re-serialising)
    store.accepted()  -> list[RunRecord]           # the first accepted attempt of each index, by index
    store.rejected()  -> list[RunRecord]           # every rejected attempt
    store.summary()   -> RunSummary                # the counts every consumer needs, computed in one place
    store.append([RunRecord | dict, ...])          # durable (fsynced) before it returns, or it raises

``RunRecord`` is a frozen dataclass; ``record["utterances"]`` / ``record.get("reason")`` still work (they read
the JSON form, lists included) so code written against the earlier raw-dict records keeps running;
``record.to_dict()`` (or ``raw_records()``) gives the JSON object, e.g. for ``json.dumps``.

Layout of a RUN_DIR:

``manifest.json``
    ``{"format_version": 1, "settings": {...}, "provenance": {...}, "history": [...]}``. ``settings`` is
    everything that determines the generated text (benchmark, mode, run seed, prompt templates, sampling
    parameters, backend, model, grammar, turn range, attempt limit); a RUN_DIR is reopened only with equal
    settings, except ``num_dialogues``, which may grow (the first N dialogues of a grown run are byte-identical
    to those of the run before). ``history`` lists ``{"num_dialogues", "time"}`` for the creation and every
    growth. ``provenance`` holds facts learned while running (model sha, server version, package version).
    Written with ``allow_nan=False``: a NaN or infinity in the settings is a bug, never an invalid file.
``records.jsonl``
    Append-only, one JSON object per line, one line per finished request (accepted or rejected), flushed and
    fsynced before the engine counts it as done. Why JSONL and not SQLite: a human can read and grep it, and
    an interrupted append can only leave a truncated last line, which ``create_or_open`` cuts off (that request
    was never acknowledged, so it is regenerated with the same derived seed and gives the same result).

``writer.lock``
    Held (``fcntl.flock``, exclusive) by the one process that writes the RUN_DIR, from the moment it opens it
    for writing until that process ends (or calls ``store.close()``; ``generate`` does when it returns), and
    holding that process's PID. Why an OS lock: two writers would
    request and store every (index, attempt) twice and double the counted rejections; the kernel drops the
    lock when its holder dies however it dies, so a stale file never blocks. A second writer is refused with
    one line naming the holder's PID. Readers take no lock.

Durability: every ``os.write`` is checked and looped until all bytes are down; a write or fsync that fails
(a full disk, an I/O error) truncates the file back to where the batch began and raises ``RunStoreWriteError``,
so nothing is reported durable that is not, and the RUN_DIR reopens cleanly once space is freed. A line that
splices a partial record with a whole one (left by versions that did not check their writes) reads as the whole
record.

Records are written in completion order (concurrency makes that order vary); every reader sorts by
``(index, attempt)``, so what a run yields is independent of timing.

Reading is strict, because a RUN_DIR may be damaged or edited by hand and every reader (a resume, ``build``,
``inspect``) must meet that as one ``RunDirError`` naming the file, line and field: JSON as the writers write it
(no NaN; an over-long integer or too deep a nesting is invalid JSON, not a crash), a manifest of the documented
shape, and records that fit the run (each (index, attempt) once, indices below ``num_dialogues``, labels of the
benchmark). Only the torn last line a killed writer leaves is read past.

Record fields: ``index`` (int), ``attempt`` (int, 0-based), ``seed`` (int), ``status`` ("accepted" or
"rejected"), ``reason`` (rejection reason or null), ``detail`` (text or null), ``raw_text`` (the LLM's text),
``speakers``/``utterances``/``emotions`` (lists, emotions as label indices; null when rejected before
parsing), ``target_emotion`` (label index for balanced mode, else null), ``finish_reason`` and
``generated_tokens`` (from the backend, may be null). Writers may add more keys (kept in ``RunRecord.extra``).

Keys of ``settings`` that readers (builder, cards) rely on: ``benchmark`` (registry name), ``mode``
("natural"/"balanced"), ``seed`` (run seed), ``num_dialogues``, ``turns`` ([min, max]), ``max_attempts``,
``backend`` ("tgi"/"openai"/"transformers"), ``model`` (id or path as given), ``chat_format``, ``grammar``
(bool: constrained decoding on), ``sampling`` (``SamplingParams`` as a dict), ``prompt_version`` and
``prompt_templates`` (the template texts verbatim). Keys of ``provenance``: ``model_id``, ``model_sha``,
``server_version``, ``erc_synth_version`` (each may be null when unknown).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from .core.atomic_io import write_all, write_json_atomic
from .core.errors import RunDirError
from .core.registry import BENCHMARKS

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
RECORDS = "records.jsonl"
LOCK = "writer.lock"
REQUIRED_FIELDS = ("index", "attempt", "seed", "status")
STATUSES = ("accepted", "rejected")
#: The only setting that may differ when a RUN_DIR is reopened: a larger value grows the run.
GROWABLE_SETTING = "num_dialogues"
#: Seeds, indices and attempts are stored as int64 columns downstream; the derived seeds stay below it.
INT_LIMIT = 2**63


class RunStoreWriteError(RunDirError):
    """A write to the RUN_DIR failed (disk full, I/O error, no permission); nothing of it counts as done.

    Exit status 3, like a run stopped on server faults: the user frees space or fixes the folder and reruns the
    same command, which resumes.
    """

    exit_code = 3


class RunDirLocked(RunDirError):
    """Another live process writes this RUN_DIR; one writer at a time (exit 2: wait for it, or stop it)."""


#: The writer locks this process holds: resolved RUN_DIR -> the open lock file's descriptor. Kept open for the
#: process's life (the kernel releases them when it ends), and reused when the process reopens a RUN_DIR.
_HELD_LOCKS: dict[Path, int] = {}


def _holds_lock(run_dir: Path) -> bool:
    fd = _HELD_LOCKS.get(run_dir)
    if fd is None:
        return False
    try:  # the RUN_DIR may have been deleted and made again: then the held descriptor locks nothing there
        held, current = os.fstat(fd), os.stat(run_dir / LOCK)
        return (held.st_dev, held.st_ino) == (current.st_dev, current.st_ino)
    except OSError:
        return False


def lock_run_dir(run_dir: str | Path) -> None:
    """Make this process the RUN_DIR's one writer, for the rest of its life; refuse while another holds it."""
    run_dir = Path(run_dir).resolve()
    if _holds_lock(run_dir):
        return
    path = run_dir / LOCK
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise _write_failed(path, exc) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            holder = os.read(fd, 64).decode("ascii", "replace").strip() or "unknown"
        finally:
            os.close(fd)
        raise RunDirLocked(f"{run_dir} is being written by another process (PID {holder}); one writer per "
                           "RUN_DIR: wait for that process to end (or stop it), then rerun the same command") from None
    except OSError as exc:
        os.close(fd)
        raise _write_failed(path, exc) from exc
    try:
        os.ftruncate(fd, 0)
        write_all(fd, f"{os.getpid()}\n".encode())
    except OSError as exc:
        os.close(fd)
        raise _write_failed(path, exc) from exc
    stale = _HELD_LOCKS.pop(run_dir, None)
    if stale is not None:
        os.close(stale)
    _HELD_LOCKS[run_dir] = fd


def release_run_dir(run_dir: str | Path) -> None:
    """Give up this process's writer lock of RUN_DIR, if it holds one (the file stays; it locks nothing)."""
    fd = _HELD_LOCKS.pop(Path(run_dir).resolve(), None)
    if fd is not None:
        os.close(fd)  # closing the only descriptor of the open file releases its flock


def _has_content(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds anything besides a writer lock."""
    return any(entry.name != LOCK for entry in run_dir.iterdir())


# -- records ---------------------------------------------------------------------------------------------------
_RECORD_KEYS = ("index", "attempt", "seed", "status", "reason", "detail", "raw_text", "speakers", "utterances",
                "emotions", "target_emotion", "finish_reason", "generated_tokens")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _optional_list(data: Mapping[str, Any], key: str, item_ok: Any, where: str) -> tuple[Any, ...] | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not all(item_ok(v) for v in value):
        raise RunDirError(f"{where}: field {key!r} must be a list of {item_ok.__doc__} or null, got {value!r:.80}")
    return tuple(value)


def _str_item(value: Any) -> bool:
    """strings"""
    return isinstance(value, str)


def _int_item(value: Any) -> bool:
    """integers"""
    return _is_int(value)


@dataclass(frozen=True)
class RunRecord:
    """One line of ``records.jsonl``: one finished request, accepted or rejected (fields in the module doc)."""

    index: int
    attempt: int
    seed: int
    status: Literal["accepted", "rejected"]
    reason: str | None = None
    detail: str | None = None
    raw_text: str | None = None
    speakers: tuple[str, ...] | None = None
    utterances: tuple[str, ...] | None = None
    emotions: tuple[int, ...] | None = None
    target_emotion: int | None = None
    finish_reason: str | None = None
    generated_tokens: int | None = None
    #: Keys a writer added beyond the documented ones, kept so that a record round-trips unchanged.
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_accepted(self) -> bool:
        return self.status == "accepted"

    @classmethod
    def from_dict(cls, data: Any, where: str) -> RunRecord:
        """Validate one decoded JSON value; ``where`` (``file:line``) starts every error message."""
        if not isinstance(data, Mapping):
            raise RunDirError(f"{where}: a record must be a JSON object, got {type(data).__name__} {data!r:.60}")
        missing = [f for f in REQUIRED_FIELDS if f not in data]
        if missing:
            raise RunDirError(f"{where}: record lacks field(s) {', '.join(missing)}")
        for key in ("index", "attempt", "seed"):
            if not _is_int(data[key]) or not 0 <= data[key] < INT_LIMIT:
                raise RunDirError(f"{where}: field {key!r} must be a non-negative integer below 2**63, "
                                  f"got {data[key]!r:.60}")
        if data["status"] not in STATUSES:
            raise RunDirError(f"{where}: field 'status' must be one of {', '.join(STATUSES)}, "
                              f"got {data['status']!r:.60}")
        for key in ("reason", "detail", "raw_text", "finish_reason"):
            if data.get(key) is not None and not isinstance(data[key], str):
                raise RunDirError(f"{where}: field {key!r} must be text or null, got {data[key]!r:.60}")
        for key in ("target_emotion", "generated_tokens"):
            if data.get(key) is not None and not _is_int(data[key]):
                raise RunDirError(f"{where}: field {key!r} must be an integer or null, got {data[key]!r:.60}")
        return cls(
            index=data["index"], attempt=data["attempt"], seed=data["seed"], status=data["status"],
            reason=data.get("reason"), detail=data.get("detail"), raw_text=data.get("raw_text"),
            speakers=_optional_list(data, "speakers", _str_item, where),
            utterances=_optional_list(data, "utterances", _str_item, where),
            emotions=_optional_list(data, "emotions", _int_item, where),
            target_emotion=data.get("target_emotion"), finish_reason=data.get("finish_reason"),
            generated_tokens=data.get("generated_tokens"),
            extra={k: v for k, v in data.items() if k not in _RECORD_KEYS},
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (lists, not tuples), as written to ``records.jsonl``."""
        out: dict[str, Any] = dict(self.extra)
        for key in _RECORD_KEYS:
            value = getattr(self, key)
            out[key] = list(value) if isinstance(value, tuple) else value
        return out

    @cached_property
    def _json_form(self) -> dict[str, Any]:
        return self.to_dict()

    # Read access by key, for code written against the raw-dict records (the JSON form: lists, not tuples).
    # The returned lists are shared between calls: read them, do not change them.
    def __getitem__(self, key: str) -> Any:
        return self._json_form[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._json_form.get(key, default)


@dataclass(frozen=True)
class RunSummary:
    """What a RUN_DIR holds, counted once for the engine, ``erc-synth inspect`` and the builder."""

    #: ``settings.num_dialogues`` (None when the manifest lacks it).
    requested: int | None
    #: Indices with an accepted dialogue.
    accepted: int
    #: Indices that used up ``max_attempts`` without an accepted dialogue, sorted.
    exhausted: tuple[int, ...]
    #: Indices with at least one record but no accepted one (exhausted or still in progress), sorted.
    failed: tuple[int, ...]
    #: Indices with at least one record.
    attempted: int
    #: Records (finished requests), accepted and rejected.
    requests: int
    #: Rejected records, and their count by reason (sorted by reason; a missing reason counts as "unknown").
    rejected: int
    rejected_by_reason: dict[str, int]
    #: Utterances of the accepted dialogues, and their count per label index (sorted by index).
    utterances: int
    label_counts: dict[int, int]
    #: Balanced runs: accepted dialogues per target label index; empty when no record names a target.
    targeted_dialogues: dict[int, int]
    #: Balanced runs: of the accepted dialogues with a target, the share that carry it at least once, and the
    #: share of their utterances labelled with it; None when no accepted record names a target.
    target_hit_share: float | None
    target_utterance_share: float | None

    @property
    def unfinished(self) -> int:
        """Requested indices neither accepted nor exhausted (never tried, or tried and still retrying)."""
        return max(0, (self.requested or 0) - self.accepted - len(self.exhausted))

    @property
    def complete(self) -> bool:
        return self.requested is not None and self.accepted == self.requested


def summarize(records: Sequence[RunRecord], requested: int | None, max_attempts: int | None) -> RunSummary:
    """The ``RunSummary`` of records sorted by (index, attempt); ``max_attempts`` None means never exhausted."""
    accepted: dict[int, RunRecord] = {}
    next_attempt: dict[int, int] = {}
    for record in records:
        next_attempt[record.index] = max(next_attempt.get(record.index, 0), record.attempt + 1)
        if record.is_accepted and record.index not in accepted:
            accepted[record.index] = record
    failed = sorted(set(next_attempt) - set(accepted))
    exhausted = [i for i in failed if max_attempts is not None and next_attempt[i] >= max_attempts]
    rejected = [r for r in records if not r.is_accepted]
    labels: Counter[int] = Counter(e for r in accepted.values() for e in (r.emotions or ()))
    targeted = [r for r in accepted.values() if r.target_emotion is not None]
    target_utterances = sum(len(r.emotions or ()) for r in targeted)
    return RunSummary(
        requested=requested,
        accepted=len(accepted),
        exhausted=tuple(exhausted),
        failed=tuple(failed),
        attempted=len(next_attempt),
        requests=len(records),
        rejected=len(rejected),
        rejected_by_reason=dict(sorted(Counter(r.reason or "unknown" for r in rejected).items())),
        utterances=sum(labels.values()),
        label_counts=dict(sorted(labels.items())),
        targeted_dialogues=dict(sorted(Counter(r.target_emotion for r in targeted).items())),
        target_hit_share=(sum(r.target_emotion in (r.emotions or ()) for r in targeted) / len(targeted)
                          if targeted else None),
        target_utterance_share=(sum((r.emotions or ()).count(r.target_emotion) for r in targeted)
                                / target_utterances if target_utterances else None),
    )


# -- files -----------------------------------------------------------------------------------------------------
def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _parse_json(raw: bytes | str) -> Any:
    """``json.loads`` held to what the writers write (``allow_nan=False``): NaN and infinities are refused.

    Every way a text fails to be such JSON raises ``ValueError``: bad syntax, bytes that are not UTF-8, an
    integer too long to convert (Python's digit limit) and nesting too deep for the parser (a
    ``RecursionError`` otherwise), so a reader has one exception to turn into its one-line error.
    """
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError as exc:
        raise ValueError("nested too deeply to read") from exc


def _folder_in_place(path: Path) -> RunDirError:
    return RunDirError(f"{path} is a folder, not a file; a RUN_DIR keeps its {path.name} as a file: move the "
                       "folder out of the RUN_DIR, then rerun the command")


def _after_lost_partial_write(line: bytes) -> dict[str, Any] | None:
    """The whole record at the end of a line that starts with a partial one, else None.

    Why: before every write was checked, a write cut short by a full disk left a partial line, and the next
    append landed right after it, splicing the two. The partial record was never acknowledged (it is simply
    generated again); the record after it was, and must not be lost.
    """
    if not line.startswith(b"{"):
        return None
    start = line.find(b'{"', 1)
    while start != -1:
        try:
            data = _parse_json(line[start:])
        except ValueError:
            data = None
        if isinstance(data, dict) and all(key in data for key in REQUIRED_FIELDS):
            return data
        start = line.find(b'{"', start + 1)
    return None


def _write_failed(path: Path, exc: OSError) -> RunDirError:
    """The error of a failed write: exit 3 (free space and resume) unless a folder stands where a file goes."""
    if exc.errno == errno.EISDIR:
        return _folder_in_place(path)
    hint = {errno.ENOSPC: "free disk space", errno.EDQUOT: "free disk space (quota exceeded)",
            errno.EACCES: "make the folder writable", errno.EROFS: "use a writable filesystem"}
    what = hint.get(exc.errno or 0, "fix the cause")
    return RunStoreWriteError(f"could not write {path}: {exc.strerror or exc}; nothing from this write counts as "
                              f"done. {what[0].upper() + what[1:]} and rerun the same command to resume")


def _atomic_write_json(path: Path, payload: Mapping[str, Any]) -> None:
    try:
        write_json_atomic(path, payload, allow_nan=False)
    except OSError as exc:
        raise _write_failed(path, exc) from exc


def _describe_difference(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    keys = sorted(set(old) | set(new))
    diffs = [f"{k}: {old.get(k)!r} (in RUN_DIR) != {new.get(k)!r} (requested)" for k in keys
             if old.get(k) != new.get(k)]
    return "; ".join(diffs[:5]) + (" ..." if len(diffs) > 5 else "")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _settings_change(old: Mapping[str, Any], new: Mapping[str, Any], allow_growth: bool,
                     manifest_path: Path) -> int | None:
    """None when ``new`` equals the RUN_DIR's settings, the grown ``num_dialogues`` when only that grew (and
    growth is allowed); any other difference, or a smaller count, is refused."""
    others = [k for k in set(old) | set(new) if k != GROWABLE_SETTING]
    before, after = old.get(GROWABLE_SETTING), new.get(GROWABLE_SETTING)
    if any(old.get(k) != new.get(k) for k in others) or (not allow_growth and before != after):
        raise RunDirError(
            f"{manifest_path} was made with other settings, refusing to mix runs: "
            f"{_describe_difference(old, new)}. "
            "Use a new RUN_DIR, or rerun with the original settings to resume."
        )
    if before == after:
        return None
    if not (_is_int(before) and _is_int(after)) or after < before:
        raise RunDirError(
            f"{manifest_path} holds a run of {before} dialogues; refusing to shrink it to {after} (its records "
            f"stay as they are). Ask for num_dialogues {before} or more, or use a new RUN_DIR; "
            "to use fewer, build it and take a subset"
        )
    return after


def check_run_dir_target(run_dir: str | Path, settings: Mapping[str, Any]) -> None:
    """Refuse, without writing anything, a RUN_DIR that ``create_or_open(..., allow_growth=True)`` would refuse.

    Why a separate dry check: the engine calls it before loading a model or contacting a server (seconds to
    minutes), and creates the RUN_DIR only once the server has answered, so a failed first contact leaves
    nothing behind that a corrected retry would trip over.
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"{run_dir} is a file, not a folder; choose a new or existing RUN_DIR folder")
    manifest_path = run_dir / MANIFEST
    if manifest_path.exists():
        lock_run_dir(run_dir)
        try:
            normalised = json.loads(json.dumps(dict(settings), sort_keys=True, allow_nan=False))
        except ValueError as exc:
            raise RunDirError(f"{manifest_path}: settings hold a value JSON cannot store ({exc})") from exc
        store = RunStore.open(run_dir)
        _settings_change(store.settings, normalised, True, manifest_path)
        store.records()  # damaged records are refused now, not after a model has loaded
    elif run_dir.exists() and _has_content(run_dir):
        raise RunDirError(f"{run_dir} exists, is not empty and has no {MANIFEST}; refusing to write there")
    existing = run_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RunStoreWriteError(f"{existing} is not writable, so {run_dir} cannot be written; choose another "
                                 "RUN_DIR or make the folder writable")


class _RunFit:
    """Checks that the records of one reading fit the run the manifest describes, and each other."""

    def __init__(self, settings: Mapping[str, Any]) -> None:
        size = settings.get(GROWABLE_SETTING)
        self.size = size if _is_int(size) else None
        name = settings.get("benchmark")
        self.benchmark = BENCHMARKS.get(name) if isinstance(name, str) else None
        self.seen: dict[tuple[int, int], int] = {}

    def check(self, record: RunRecord, lineno: int, path: Path) -> None:
        where = f"{path}:{lineno}"
        first = self.seen.setdefault((record.index, record.attempt), lineno)
        if first != lineno:
            raise RunDirError(f"{where}: index {record.index} attempt {record.attempt} is stored twice (first at "
                              f"line {first}); each request is stored once: remove one of the two lines")
        if self.size is not None and record.index >= self.size:
            raise RunDirError(f"{where}: index {record.index} is beyond the run's {self.size} dialogues "
                              f"(settings.{GROWABLE_SETTING} in {MANIFEST})")
        if self.benchmark is None:
            return
        labels = {"emotions": record.emotions if record.is_accepted else None,
                  "target_emotion": None if record.target_emotion is None else (record.target_emotion,)}
        for key, values in labels.items():
            wrong = next((v for v in values or () if not 0 <= v < self.benchmark.num_labels), None)
            if wrong is not None:
                raise RunDirError(f"{where}: field {key!r} holds label {wrong}; {self.benchmark.name} has labels "
                                  f"0 to {self.benchmark.num_labels - 1}")


def _check_manifest(manifest: Any, manifest_path: Path) -> None:
    """The manifest's shape, as far as any reader or a resuming writer relies on it."""
    if not isinstance(manifest, dict):
        raise RunDirError(f"{manifest_path}: must hold a JSON object, got {type(manifest).__name__}")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise RunDirError(f"{manifest_path}: format_version {version!r:.60}, expected {FORMAT_VERSION}")
    if not isinstance(manifest.get("settings"), dict):
        raise RunDirError(f"{manifest_path}: field 'settings' is missing or not an object")
    if not isinstance(manifest.get("provenance", {}), dict):
        raise RunDirError(f"{manifest_path}: field 'provenance' must be an object, got {manifest['provenance']!r:.60}")
    history = manifest.get("history") or []
    if not isinstance(history, list) or not all(isinstance(entry, dict) for entry in history):
        raise RunDirError(f"{manifest_path}: field 'history' must be a list of objects, got {history!r:.60}")
    count = manifest["settings"].get(GROWABLE_SETTING)
    if count is not None and not (_is_int(count) and count >= 0):
        raise RunDirError(f"{manifest_path}: field 'settings.{GROWABLE_SETTING}' must be a non-negative integer, "
                          f"got {count!r:.60}")


@dataclass
class RunStore:
    """A RUN_DIR opened for reading, or for reading and appending."""

    run_dir: Path
    manifest: dict[str, Any]
    writable: bool = False
    #: Set when a write failed part way: the next append first cuts the file back to its last whole line.
    _tail_suspect: bool = field(default=False, repr=False)

    # -- opening ---------------------------------------------------------------------------------------
    @classmethod
    def create_or_open(cls, run_dir: str | Path, settings: Mapping[str, Any],
                       provenance: Mapping[str, Any] | None = None, *, allow_growth: bool = False) -> RunStore:
        """Open RUN_DIR for appending, creating it when new; refuse one made with other settings.

        With ``allow_growth`` a larger ``num_dialogues`` than the manifest's grows the run (recorded in the
        manifest's history); a smaller one is refused (a run is never shrunk: its records stay as they are).
        """
        run_dir = Path(run_dir)
        manifest_path = run_dir / MANIFEST
        try:
            settings = json.loads(json.dumps(dict(settings), sort_keys=True, allow_nan=False))  # tuples, key order
        except ValueError as exc:
            raise RunDirError(f"{manifest_path}: settings hold a value JSON cannot store ({exc})") from exc
        if run_dir.exists() and not run_dir.is_dir():
            raise RunDirError(f"{run_dir} is a file, not a folder; choose a new or existing RUN_DIR folder")
        if manifest_path.exists():
            lock_run_dir(run_dir)
            store = cls.open(run_dir)
            store._check_settings(settings, allow_growth)
            store.writable = True
            store._require_write_access()
            store._repair_truncated_tail()
            return store
        if run_dir.exists() and _has_content(run_dir):
            raise RunDirError(f"{run_dir} exists, is not empty and has no {MANIFEST}; refusing to write there")
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _write_failed(run_dir, exc) from exc
        lock_run_dir(run_dir)
        if manifest_path.exists():  # another writer created it between our look and our lock
            return cls.create_or_open(run_dir, settings, provenance, allow_growth=allow_growth)
        manifest = {"format_version": FORMAT_VERSION, "settings": settings, "provenance": dict(provenance or {}),
                    "history": [{GROWABLE_SETTING: settings.get(GROWABLE_SETTING), "time": _now()}]}
        _atomic_write_json(manifest_path, manifest)
        store = cls(run_dir=run_dir, manifest=manifest, writable=True)
        store._require_write_access()
        return store

    @classmethod
    def open(cls, run_dir: str | Path) -> RunStore:
        """Open an existing RUN_DIR read-only."""
        run_dir = Path(run_dir)
        manifest_path = run_dir / MANIFEST
        if manifest_path.is_dir():
            raise _folder_in_place(manifest_path)
        if not manifest_path.is_file():
            raise RunDirError(f"{run_dir} is not a generation RUN_DIR: {manifest_path} is missing")
        try:
            manifest = _parse_json(manifest_path.read_bytes())
        except ValueError as exc:
            raise RunDirError(f"{manifest_path}: not valid JSON ({exc})") from exc
        except OSError as exc:
            raise RunDirError(f"{manifest_path}: cannot be read ({exc.strerror or exc})") from exc
        _check_manifest(manifest, manifest_path)
        return cls(run_dir=run_dir, manifest=manifest)

    def _check_settings(self, settings: dict[str, Any], allow_growth: bool) -> None:
        after = _settings_change(self.settings, settings, allow_growth, self.run_dir / MANIFEST)
        if after is None:
            return
        self.manifest["settings"] = {**self.settings, GROWABLE_SETTING: after}
        self.manifest["history"] = [*self.history, {GROWABLE_SETTING: after, "time": _now()}]
        self.writable = True
        _atomic_write_json(self.run_dir / MANIFEST, self.manifest)

    # -- manifest --------------------------------------------------------------------------------------
    @property
    def settings(self) -> dict[str, Any]:
        return self.manifest["settings"]

    @property
    def provenance(self) -> dict[str, Any]:
        return self.manifest.setdefault("provenance", {})

    @property
    def history(self) -> list[dict[str, Any]]:
        """``[{"num_dialogues", "time"}, ...]``: the creation, then every growth (empty for older RUN_DIRs)."""
        return list(self.manifest.get("history") or [])

    def update_provenance(self, **facts: Any) -> None:
        """Record facts learned while running (model sha, server version); written atomically."""
        self._require_writable()
        self.provenance.update(facts)
        _atomic_write_json(self.run_dir / MANIFEST, self.manifest)

    # -- records ---------------------------------------------------------------------------------------
    @property
    def records_path(self) -> Path:
        return self.run_dir / RECORDS

    def append(self, records: Iterable[RunRecord | Mapping[str, Any]]) -> None:
        """Append records and fsync once, so a batch is durable before the caller counts it done.

        Raises ``RunStoreWriteError`` when the batch could not be made durable; the file is then cut back to
        where the batch began, so no part of the batch is on disk to be mistaken for done.
        """
        self._require_writable()
        lines = []
        for record in records:
            if isinstance(record, RunRecord):
                record = record.to_dict()
            missing = [f for f in REQUIRED_FIELDS if f not in record]
            if missing or record["status"] not in STATUSES:
                raise ValueError(f"malformed run record (missing {missing}, status {record.get('status')!r})")
            lines.append(json.dumps(record, ensure_ascii=False, sort_keys=True, allow_nan=False) + "\n")
        if not lines:
            return
        if self._tail_suspect:
            self._repair_truncated_tail()
        data = "".join(lines).encode("utf-8")
        path = self.records_path
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise _write_failed(path, exc) from exc
        start = None
        try:
            start = os.fstat(fd).st_size
            write_all(fd, data)
            os.fsync(fd)
        except OSError as exc:
            self._tail_suspect = True
            if start is not None:
                try:
                    os.ftruncate(fd, start)
                    os.fsync(fd)
                    self._tail_suspect = False
                except OSError:
                    pass  # the next append or create_or_open cuts the partial line
            raise _write_failed(path, exc) from exc
        finally:
            os.close(fd)

    def records(self) -> list[RunRecord]:
        """Every record, sorted by (index, attempt); a truncated last line is ignored.

        Beyond each line's own types, the lines must fit the run: each (index, attempt) once (the engine stores
        each finished request once), indices within ``num_dialogues``, labels within the benchmark's.
        """
        path = self.records_path
        if path.is_dir():
            raise _folder_in_place(path)
        if not path.exists():
            return []
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise RunDirError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
        lines = raw.split(b"\n")
        complete = lines[:-1]  # the part after the last newline is an unacknowledged partial write
        fits = _RunFit(self.settings)
        out = []
        for lineno, line in enumerate(complete, start=1):
            if not line.strip():
                continue
            try:
                data = _parse_json(line)
            except ValueError as exc:
                data = _after_lost_partial_write(line)
                if data is None:
                    raise RunDirError(f"{path}:{lineno}: corrupt record ({exc}); value {line[:80]!r}") from exc
            record = RunRecord.from_dict(data, f"{path}:{lineno}")
            fits.check(record, lineno, path)
            out.append(record)
        out.sort(key=lambda r: (r.index, r.attempt))
        return out

    def raw_records(self) -> list[dict[str, Any]]:
        """``records()`` as JSON objects (the documented keys always present, null when absent)."""
        return [record.to_dict() for record in self.records()]

    def accepted(self) -> list[RunRecord]:
        """The accepted record of each index (the first accepted attempt), sorted by index."""
        chosen: dict[int, RunRecord] = {}
        for record in self.records():
            if record.is_accepted and record.index not in chosen:
                chosen[record.index] = record
        return [chosen[i] for i in sorted(chosen)]

    def rejected(self) -> list[RunRecord]:
        """Every rejected attempt, sorted by (index, attempt)."""
        return [r for r in self.records() if not r.is_accepted]

    def summary(self, records: Sequence[RunRecord] | None = None) -> RunSummary:
        """Counts of this RUN_DIR (see ``RunSummary``); pass ``records`` already read to avoid a second read."""
        requested = self.settings.get(GROWABLE_SETTING)
        max_attempts = self.settings.get("max_attempts")
        return summarize(self.records() if records is None else records,
                         requested if _is_int(requested) else None,
                         max_attempts if _is_int(max_attempts) else None)

    def close(self) -> None:
        """Stop writing: release the writer lock so that another process may write the RUN_DIR."""
        if self.writable:
            release_run_dir(self.run_dir)
            self.writable = False

    # -- internals -------------------------------------------------------------------------------------
    def _require_writable(self) -> None:
        if not self.writable:
            raise RunDirError(f"{self.run_dir} was opened read-only")

    def _require_write_access(self) -> None:
        """Fail now, with one line, if RUN_DIR cannot be written, rather than after the first generation."""
        path = self.records_path
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.close(fd)
        except OSError as exc:
            raise _write_failed(path, exc) from exc

    def _repair_truncated_tail(self) -> None:
        path = self.records_path
        try:
            if not path.exists():
                path.touch()
                return
            raw = path.read_bytes()
            if raw and not raw.endswith(b"\n"):
                keep = raw.rfind(b"\n") + 1
                with open(path, "r+b") as fh:
                    fh.truncate(keep)
                    fh.flush()
                    os.fsync(fh.fileno())
        except OSError as exc:
            raise _write_failed(path, exc) from exc
        self._tail_suspect = False
