"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Why one implementation: the run store's manifest, the experiment's cell results and grid record, and the build's
files all need the same guarantee (a temporary file in the same folder, fsynced, then renamed over the target),
and three copies of it had drifted apart in their temporary names and error handling.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def temporary_sibling(path: Path) -> Path:
    """The staging name for ``path``: hidden, in the same folder (so the rename stays on one filesystem)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is down: a short write (signals, a nearly full disk) is not an error."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:  # not expected from a regular file, but never loop forever
            raise OSError(errno.EIO, "write returned 0 bytes")
        view = view[written:]


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically; on any ``OSError`` the temporary file is removed and it re-raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def json_text(payload: Mapping[str, Any], *, allow_nan: bool = True) -> str:
    """The one JSON layout erc-synth writes: indented, keys sorted, UTF-8 kept readable, a final newline."""
    return json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=allow_nan, default=str) + "\n"


def write_json_atomic(path: Path, payload: Mapping[str, Any], *, allow_nan: bool = True) -> None:
    """Write ``payload`` as JSON to ``path`` atomically (see :func:`json_text` for the layout)."""
    write_bytes_atomic(Path(path), json_text(payload, allow_nan=allow_nan).encode("utf-8"))


#: errno values that mean "the disk (or the quota, or the file-size limit) is full": nothing the program can fix.
DISK_FULL_ERRNOS: frozenset[int] = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk is full, including writers that wrap the OS error in their own class.

    Why the message check: safetensors (model weights) raises ``SafetensorError`` with the OS text, not an
    ``OSError``, so its errno is lost.
    """
    if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
        return True
    text = str(exc)
    return any(marker in text for marker in ("No space left on device", "Disk quota exceeded", "File too large"))
