"""Claims on experiment cells, shared by workers on one machine or on many nodes over a shared filesystem.

Why generation files: a claim on a cell is the file ``claims/<cell>/gen-<n>``, created with
``O_CREAT | O_EXCL``, which is atomic on local filesystems and on NFS (v3 and later). Taking over a dead
worker's claim means creating the *next* generation, again exclusively, so two workers that both find a claim
expired cannot both win, and a claim taken over can never be stolen back by a worker acting on an old view.

Why the observer's own clock: a live worker refreshes its claim file's modification time from a thread (the
heartbeat). Another worker declares the claim expired only after seeing that modification time unchanged for
``expiry`` seconds of *its own* monotonic clock, so clock skew between nodes (and NFS servers that stamp their
own time) cannot expire a live claim. The price: a worker that arrives after a crash waits one expiry before
taking the dead claim over.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

_PREFIX = "gen-"


def worker_name() -> str:
    """``host:pid``: enough to tell workers apart in claim files and logs."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Claim:
    """A claim this worker holds; :meth:`release` drops it, the heartbeat thread keeps it alive until then."""

    path: Path
    generation: int
    heartbeat: float
    lost: bool = False
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start_heartbeat(self) -> None:
        def beat() -> None:
            while not self._stop.wait(self.heartbeat):
                try:
                    os.utime(self.path)
                except FileNotFoundError:  # taken over after a stall, or removed: this worker no longer owns it
                    self.lost = True
                    return

        self._thread = threading.Thread(target=beat, name=f"heartbeat {self.path.parent.name}", daemon=True)
        self._thread.start()

    def release(self, *, done: bool) -> None:
        """Stop the heartbeat; ``done``: the cell is finished, remove its whole claim folder (history included)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if done:
            shutil.rmtree(self.path.parent, ignore_errors=True)
            return
        try:
            self.path.unlink()
            self.path.parent.rmdir()  # only succeeds when no other generation is left
        except OSError:
            pass


class CellClaims:
    """Claims under ``root`` (one folder per cell key); ``heartbeat`` and ``expiry`` in seconds."""

    def __init__(self, root: str | Path, heartbeat: float = 30.0, expiry: float = 300.0) -> None:
        if heartbeat <= 0 or expiry <= 2 * heartbeat:
            raise ValueError(f"claim expiry ({expiry} s) must exceed twice the heartbeat ({heartbeat} s)")
        self.root = Path(root)
        self.heartbeat = heartbeat
        self.expiry = expiry
        self.worker = worker_name()
        # Per claim file: the last modification time seen and when (monotonic, this process) it was first seen.
        self._seen: dict[Path, tuple[int, float]] = {}

    def folder(self, key: str) -> Path:
        return self.root / key

    def _generations(self, folder: Path) -> list[int]:
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return []
        return sorted(int(n[len(_PREFIX):]) for n in names if n.startswith(_PREFIX) and n[len(_PREFIX):].isdigit())

    def _expired(self, path: Path) -> bool:
        try:
            mtime = path.stat().st_mtime_ns
        except FileNotFoundError:
            return True  # released between listing and looking
        now = time.monotonic()
        seen = self._seen.get(path)
        if seen is None or seen[0] != mtime:
            self._seen[path] = (mtime, now)
            return False
        return now - seen[1] >= self.expiry

    def holder(self, key: str) -> str | None:
        """Who holds the cell's newest claim (``host:pid``), or None when unclaimed."""
        generations = self._generations(self.folder(key))
        if not generations:
            return None
        try:
            return json.loads((self.folder(key) / f"{_PREFIX}{generations[-1]:06d}").read_text())["worker"]
        except (OSError, ValueError, KeyError):
            return "?"

    def try_claim(self, key: str) -> Claim | None:
        """Claim ``key`` if nobody holds it or its holder's heartbeat stopped; None if a live worker holds it."""
        folder = self.folder(key)
        generations = self._generations(folder)
        if generations and not self._expired(folder / f"{_PREFIX}{generations[-1]:06d}"):
            return None
        generation = generations[-1] + 1 if generations else 1
        if generation == 1:
            folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{_PREFIX}{generation:06d}"
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except (FileExistsError, FileNotFoundError):  # another worker won this generation, or finished the cell
            return None
        with os.fdopen(descriptor, "w") as handle:
            json.dump({"worker": self.worker, "generation": generation, "claimed_at": time.time(),
                       "taken_over": generation > 1}, handle)
        claim = Claim(path, generation, self.heartbeat)
        claim.start_heartbeat()
        return claim
