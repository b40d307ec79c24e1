"""A real Label Studio server process from ``.venv-labelstudio``, for the review tests.

Label Studio lives in its own venv (``scripts/install-labelstudio.sh``), so the server runs on that venv's
interpreter. Settings, and why:

* ``--no-browser``, ``--internal-host 127.0.0.1``: nothing opens, and the server listens on loopback only;
* ``--data-dir`` and ``LABEL_STUDIO_BASE_DATA_DIR`` in a temporary folder: a fresh SQLite database per server,
  never the user's ``~/.local/share/label-studio``;
* ``--username/--password/--user-token``: the admin user and its token exist from the start;
  ``LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true`` lets that fixed token authenticate (1.23 disables legacy tokens
  by default and issues JWT personal access tokens from the web page instead);
* ``LATEST_VERSION_CHECK=false``: no call to the package index at every start.

Most of the start-up time is Django's migrations of the new database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from helpers.servers.process import REPO_ROOT, free_port

LABELSTUDIO_BIN = Path(os.environ.get("ERC_SYNTH_LABELSTUDIO_VENV", REPO_ROOT / ".venv-labelstudio")) / "bin"
START_TIMEOUT_S = 420.0
USERNAME = "reviewer@example.com"
PASSWORD = "review-pass-1234"
TOKEN = "0123456789abcdef0123456789abcdef01234567"


def labelstudio_missing_reason() -> str | None:
    """Why the Label Studio tests cannot run here, or None when ``.venv-labelstudio`` has it."""
    if not (LABELSTUDIO_BIN / "label-studio").exists():
        return (f"no Label Studio venv at {LABELSTUDIO_BIN.parent} (make it with: bash "
                "scripts/install-labelstudio.sh)")
    return None


class LabelStudioServer:
    """``label-studio start`` on a free loopback port with a fresh data folder."""

    def __init__(self, data_dir: str | Path, *, port: int | None = None, log_path: str | Path | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.log_path = Path(log_path) if log_path else self.data_dir.parent / "label-studio.log"
        self.proc: subprocess.Popen | None = None
        self.started_in_s: float | None = None
        self.username, self.password, self.token = USERNAME, PASSWORD, TOKEN

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = START_TIMEOUT_S) -> LabelStudioServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(self.data_dir), "LATEST_VERSION_CHECK": "false",
               "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true", "SECRET_KEY": "erc-synth-tests-only"}
        started = time.monotonic()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(LABELSTUDIO_BIN / "label-studio"), "start", "--no-browser", "--internal-host", "127.0.0.1",
                 "--port", str(self.port), "--data-dir", str(self.data_dir), "--username", self.username,
                 "--password", self.password, "--user-token", self.token],
                cwd=self.data_dir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"label-studio exited with {self.proc.returncode}; log: {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        self.started_in_s = time.monotonic() - started
                        return self
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"label-studio did not answer {self.url}/health within {timeout:.0f}s; log: "
                           f"{self.log_path}")

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM to the server's process group (Django's dev server runs a child), then SIGKILL."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
