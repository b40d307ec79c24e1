"""Start a test server as a real OS process on a free port, wait until it answers ``/health``, stop it.

Why a process and not a thread: the client under test must talk to the server over real sockets, and a test
may kill, restart or starve the server without touching the test's own interpreter.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parents[2]
REPO_ROOT = TESTS_DIR.parent


def free_port() -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """A server module run as ``python -m <module> --port PORT <args>``, with tests/ on its path."""

    def __init__(self, module: str, args: Sequence[str] = (), *, port: int | None = None,
                 log_path: str | Path | None = None, env: dict[str, str] | None = None,
                 python: str | Path | None = None, cwd: str | Path | None = None) -> None:
        self.module = module
        #: The interpreter (another venv's, for servers whose packages live apart) and working folder.
        self.python = str(python or sys.executable)
        self.cwd = Path(cwd) if cwd else TESTS_DIR
        self.args = list(args)
        self.port = port or free_port()
        self.log_path = Path(log_path) if log_path else None
        self.env = env or {}
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> ServerProcess:
        env = {**os.environ, **self.env}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS_DIR), str(REPO_ROOT), env.get("PYTHONPATH")]))
        env.setdefault("OMP_NUM_THREADS", "1")
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [self.python, "-m", self.module, "--port", str(self.port), *self.args],
            cwd=self.cwd, env=env, stdout=log, stderr=subprocess.STDOUT if self.log_path else subprocess.DEVNULL,
        )
        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.module} exited with {self.proc.returncode} before answering /health"
                                   + (f"; log: {self.log_path}" if self.log_path else ""))
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"{self.module} did not answer {self.url}/health within {timeout:.0f}s")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> ServerProcess:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def tgi_server(model_dir: str | Path | None, *extra: str, port: int | None = None,
               log_path: str | Path | None = None) -> ServerProcess:
    """A ``helpers.servers.tgi_server`` process over the tiny model in ``model_dir`` (or ``--instant`` in ``extra``)."""
    args = ["--model-dir", str(model_dir)] if model_dir else []
    return ServerProcess("helpers.servers.tgi_server", [*args, *extra], port=port, log_path=log_path)


# -- pytest fixtures (import them into a test module; servers are shared by every module of a session) --------
_SHARED: dict[str, ServerProcess] = {}


def _shared_server(key: str, factory) -> ServerProcess:
    server = _SHARED.get(key)
    if server is None or server.proc is None or server.proc.poll() is not None:
        server = _SHARED[key] = factory().start()
    return server


try:
    import pytest
except ImportError:  # pragma: no cover - only the fixtures need pytest
    pytest = None

if pytest is not None:

    @pytest.fixture(scope="session")
    def tiny_lm_dir(request) -> Path:
        """The tiny model folder, built once and kept in pytest's cache folder between sessions."""
        from helpers.servers.tiny_lm import build_tiny_lm

        return build_tiny_lm(request.config.cache.mkdir("erc_synth_tiny_lm"))

    @pytest.fixture(scope="session")
    def tgi_url(tiny_lm_dir, tmp_path_factory) -> str:
        """URL of a TGI/OpenAI-protocol server over the tiny model, shared by the whole session."""
        log = tmp_path_factory.getbasetemp() / "tgi_server.log"
        server = _shared_server("tiny", lambda: tgi_server(tiny_lm_dir, log_path=log))
        yield server.url
        server.stop()
