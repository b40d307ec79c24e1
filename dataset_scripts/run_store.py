"""The on-disk store of a generation run (RUN_DIR), shared by the generator (writer) and the builder (reader).

Layout of a RUN_DIR:

``manifest.json``
    ``{"format_version": 1, "settings": {...}, "provenance": {...}}``. ``settings`` is everything that
    determines the generated text (benchmark, mode, run seed, prompt templates, sampling parameters, backend,
    model, grammar, turn range, attempt limit); a RUN_DIR is reopened only with equal settings.
    ``provenance`` holds facts learned while running (model sha, server version, package version).
``records.jsonl``
    Append-only, one JSON object per line, one line per finished request (accepted or rejected), flushed and
    fsynced before the engine counts it as done. Why JSONL and not SQLite: a human can read and grep it, and
    an interrupted append can only leave a truncated last line, which ``open`` cuts off (that request was never
    acknowledged, so it is regenerated with the same derived seed and gives the same result).

Records are written in completion order (concurrency makes that order vary); every reader sorts by
``(index, attempt)``, so what a run yields is independent of timing.

Record fields: ``index`` (int), ``attempt`` (int, 0-based), ``seed`` (int), ``status`` ("accepted" or
"rejected"), ``reason`` (rejection reason or null), ``detail`` (text or null), ``raw_text`` (the LLM's text),
``speakers``/``utterances``/``emotions`` (lists, emotions as label indices; null when rejected before
parsing), ``target_emotion`` (label index for balanced mode, else null). Writers may add more keys.

Keys of ``settings`` that readers (builder, cards) rely on: ``benchmark`` (registry name), ``mode``
("natural"/"balanced"), ``seed`` (run seed), ``num_dialogues``, ``turns`` ([min, max]), ``max_attempts``,
``backend`` ("tgi"/"openai"/"transformers"), ``model`` (id or path as given), ``chat_format``, ``grammar``
(bool: constrained decoding on), ``sampling`` (``SamplingParams`` as a dict), ``prompt_version`` and
``prompt_templates`` (the template texts verbatim). Keys of ``provenance``: ``model_id``, ``model_sha``,
``server_version``, ``erc_synth_version`` (each may be null when unknown).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import RunDirError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
RECORDS = "records.jsonl"
REQUIRED_FIELDS = ("index", "attempt", "seed", "status")
STATUSES = ("accepted", "rejected")


def _atomic_write_json(path: Path, payload: Mapping[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(payload, fh, indent=2, sort_keys=True, ensure_ascii=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _describe_difference(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    keys = sorted(set(old) | set(new))
    diffs = [f"{k}: {old.get(k)!r} (in RUN_DIR) != {new.get(k)!r} (requested)" for k in keys
             if old.get(k) != new.get(k)]
    return "; ".join(diffs[:5]) + (" ..." if len(diffs) > 5 else "")


@dataclass
class RunStore:
    """A RUN_DIR opened for reading, or for reading and appending."""

    run_dir: Path
    manifest: dict[str, Any]
    writable: bool = False

    # -- opening ---------------------------------------------------------------------------------------
    @classmethod
    def create_or_open(cls, run_dir: str | Path, settings: Mapping[str, Any],
                       provenance: Mapping[str, Any] | None = None) -> RunStore:
        """Open RUN_DIR for appending, creating it when new; refuse one made with other settings."""
        run_dir = Path(run_dir)
        manifest_path = run_dir / MANIFEST
        settings = json.loads(json.dumps(dict(settings), sort_keys=True))  # normalise tuples, key order
        if manifest_path.exists():
            store = cls.open(run_dir)
            if store.manifest.get("settings") != settings:
                raise RunDirError(
                    f"{manifest_path} was made with other settings, refusing to mix runs: "
                    f"{_describe_difference(store.manifest.get('settings', {}), settings)}. "
                    "Use a new --out directory, or rerun with the original settings to resume."
                )
            store.writable = True
            store._repair_truncated_tail()
            return store
        if run_dir.exists() and any(run_dir.iterdir()):
            raise RunDirError(f"{run_dir} exists, is not empty and has no {MANIFEST}; refusing to write there")
        run_dir.mkdir(parents=True, exist_ok=True)
        manifest = {"format_version": FORMAT_VERSION, "settings": settings, "provenance": dict(provenance or {})}
        _atomic_write_json(manifest_path, manifest)
        (run_dir / RECORDS).touch()
        return cls(run_dir=run_dir, manifest=manifest, writable=True)

    @classmethod
    def open(cls, run_dir: str | Path) -> RunStore:
        """Open an existing RUN_DIR read-only."""
        run_dir = Path(run_dir)
        manifest_path = run_dir / MANIFEST
        if not manifest_path.is_file():
            raise RunDirError(f"{run_dir} is not a generation RUN_DIR: {manifest_path} is missing")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RunDirError(f"{manifest_path}: not valid JSON ({exc})") from exc
        version = manifest.get("format_version")
        if version != FORMAT_VERSION:
            raise RunDirError(f"{manifest_path}: format_version {version!r}, expected {FORMAT_VERSION}")
        if not isinstance(manifest.get("settings"), dict):
            raise RunDirError(f"{manifest_path}: field 'settings' is missing or not an object")
        return cls(run_dir=run_dir, manifest=manifest)

    # -- manifest --------------------------------------------------------------------------------------
    @property
    def settings(self) -> dict[str, Any]:
        return self.manifest["settings"]

    @property
    def provenance(self) -> dict[str, Any]:
        return self.manifest.setdefault("provenance", {})

    def update_provenance(self, **facts: Any) -> None:
        """Record facts learned while running (model sha, server version); written atomically."""
        self._require_writable()
        self.provenance.update(facts)
        _atomic_write_json(self.run_dir / MANIFEST, self.manifest)

    # -- records ---------------------------------------------------------------------------------------
    @property
    def records_path(self) -> Path:
        return self.run_dir / RECORDS

    def append(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Append records and fsync once, so a batch is durable before the caller counts it done."""
        self._require_writable()
        lines = []
        for record in records:
            missing = [f for f in REQUIRED_FIELDS if f not in record]
            if missing or record["status"] not in STATUSES:
                raise ValueError(f"malformed run record (missing {missing}, status {record.get('status')!r})")
            lines.append(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
        if not lines:
            return
        data = "".join(lines).encode("utf-8")
        fd = os.open(self.records_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    def records(self) -> list[dict[str, Any]]:
        """Every record, sorted by (index, attempt); a truncated last line is ignored."""
        path = self.records_path
        if not path.exists():
            return []
        raw = path.read_bytes()
        lines = raw.split(b"\n")
        complete = lines[:-1]  # the part after the last newline is an unacknowledged partial write
        out = []
        for lineno, line in enumerate(complete, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise RunDirError(f"{path}:{lineno}: corrupt record ({exc}); value {line[:80]!r}") from exc
            missing = [f for f in REQUIRED_FIELDS if f not in record]
            if missing:
                raise RunDirError(f"{path}:{lineno}: record lacks field(s) {', '.join(missing)}")
            out.append(record)
        out.sort(key=lambda r: (r["index"], r["attempt"]))
        return out

    def accepted(self) -> list[dict[str, Any]]:
        """The accepted record of each index (the first accepted attempt), sorted by index."""
        chosen: dict[int, dict[str, Any]] = {}
        for record in self.records():
            if record["status"] == "accepted" and record["index"] not in chosen:
                chosen[record["index"]] = record
        return [chosen[i] for i in sorted(chosen)]

    def rejected(self) -> list[dict[str, Any]]:
        """Every rejected attempt, sorted by (index, attempt)."""
        return [r for r in self.records() if r["status"] == "rejected"]

    # -- internals -------------------------------------------------------------------------------------
    def _require_writable(self) -> None:
        if not self.writable:
            raise RunDirError(f"{self.run_dir} was opened read-only")

    def _repair_truncated_tail(self) -> None:
        path = self.records_path
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
