"""The local Hub as a real process, and client code run in subprocesses with the Hub's environment.

Why subprocesses for clients: huggingface_hub and datasets read HF_ENDPOINT, HF_TOKEN, HF_HOME and
HF_HUB_DISABLE_XET at import time, and this pytest process has imported them already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.request import Request, urlopen

import pytest

TESTS_DIR = Path(__file__).resolve().parents[1]
TOKEN = "hf_LocalHubSecretToken0123456789"


@dataclass
class LocalHub:
    endpoint: str
    token: str
    home: Path

    def env(self, token: str | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "HF_ENDPOINT": self.endpoint, "HF_TOKEN": token or self.token, "HF_HOME": str(self.home),
            "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1", "TQDM_DISABLE": "1", "PYTHONPATH": str(TESTS_DIR),
        })
        return env

    def control(self, **settings: Any) -> dict[str, Any]:
        request = Request(f"{self.endpoint}/__control", data=json.dumps(settings).encode(), method="POST",
                          headers={"Content-Type": "application/json"})
        with urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def stats(self) -> dict[str, int]:
        with urlopen(f"{self.endpoint}/__stats", timeout=10) as response:
            return json.loads(response.read())

    def run(self, args: list[str], cwd: Path, token: str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, cwd=cwd, env=self.env(token), capture_output=True, text=True, timeout=timeout)

    def cli(self, *args: str, cwd: Path, token: str | None = None) -> subprocess.CompletedProcess[str]:
        return self.run([sys.executable, "-m", "erc_synth.cli", *args], cwd, token)

    def python(self, code: str, cwd: Path) -> Any:
        """Run client code; it must print one JSON document as its last line of stdout."""
        result = self.run([sys.executable, "-c", code], cwd)
        assert result.returncode == 0, result.stderr[-3000:]
        return json.loads(result.stdout.strip().splitlines()[-1])


def start_local_hub(tmp_path_factory: pytest.TempPathFactory, startup_s: float = 20) -> Iterator[LocalHub]:
    """Run a Hub server process for as long as the generator is open; stopped (by its own pid) afterwards.

    ``startup_s`` bounds the wait for the server's port file (it is written atomically, so it is whole once it exists).
    """
    workdir = tmp_path_factory.mktemp("hub")
    port_file = workdir / "port"
    command = [sys.executable, "-m", "helpers.servers.hub_server", "--token", TOKEN, "--org", "org"]
    process = subprocess.Popen(
        [*command, "--port-file", str(port_file)],
        cwd=TESTS_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + startup_s
        while not port_file.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"hub server did not start: {process.stderr.read().decode()[-2000:]}")
            time.sleep(0.05)
        yield LocalHub(f"http://127.0.0.1:{port_file.read_text()}", TOKEN, workdir / "hf_home")
    finally:
        process.terminate()
        process.wait(timeout=10)
