"""The in-process transformers backend against a local vLLM server, on the same workload, in one run.

Why: choosing an engine (docs/engines.md) needs the two measured under the same conditions. The workload is the
one of ``bench_inprocess_batch.py``: MELD balanced dialogues (seeds 0..count-1, each with its target's line
regex), the embedded SmolLM2-135M, the reference sampling parameters. The transformers backend decodes them as
one batch of ``--batch``; the vLLM server (the ``openai`` backend, vLLM's ``structured_outputs`` regex) gets them
as ``--batch`` concurrent requests, which its continuous batching runs together.

    python benchmarks/bench_vllm_server.py                    # starts vLLM from .venv-vllm (about 5 GB)
    python benchmarks/bench_vllm_server.py --endpoint http://127.0.0.1:8000 --count 32 --batch 16

Reports dialogues/minute, generated tokens/second, the share that ended cleanly and matched the grammar, and
the vLLM/transformers ratio. vLLM's start-up time is printed but not counted: a server is started once for
many runs. Typical_p is applied by the transformers backend and not by vLLM (it has none), a difference the
ratio includes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from erc_synth.dataset_scripts.core.registry import get_benchmark
from erc_synth.generation.backends.base import GenerationRequest, Grammar, SamplingParams
from erc_synth.generation.backends.openai_compat import OpenAICompatBackend
from erc_synth.generation.grammar import dialogue_regex
from erc_synth.generation.prompts import build_messages

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))
from helpers.servers.process import ServerProcess  # noqa: E402
from helpers.servers.vllm_server import VLLM_PYTHON, vllm_missing_reason, vllm_server  # noqa: E402


def start_vllm(port: int, cache_root: str, log_path: Path) -> tuple[ServerProcess, float]:
    """A vLLM server on the embedded model, started exactly as the vllm tests start theirs (the CPU flags and
    why: ``tests/helpers/servers/vllm_server.py``, docs/engines.md); returns it and its start-up seconds."""
    missing = vllm_missing_reason()
    if missing:
        raise SystemExit(f"{missing}; or pass --endpoint")
    model_dir = subprocess.run([str(VLLM_PYTHON), "-m", "erc_synth.generation.backends.vllm_model"], check=True,
                               capture_output=True, text=True).stdout.strip().splitlines()[-1]
    began = time.perf_counter()
    server = vllm_server(model_dir, cache_root, port=port, log_path=log_path)
    try:
        server.start(timeout=900)  # stops the server itself when it does not answer
    except (RuntimeError, TimeoutError) as error:
        raise SystemExit(f"{error}; see {log_path}") from None
    return server, time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=16, help="dialogues per engine")
    parser.add_argument("--batch", type=int, default=16, help="transformers batch size = vLLM requests in flight")
    parser.add_argument("--benchmark", default="meld")
    parser.add_argument("--min-turns", type=int, default=2)
    parser.add_argument("--max-turns", type=int, default=6)
    parser.add_argument("--max-utterance-chars", type=int, default=120)
    parser.add_argument("--max-new-tokens", type=int, default=400)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the transformers backend")
    parser.add_argument("--endpoint", help="an already running vLLM server on the embedded model (else one is "
                                           "started from .venv-vllm)")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()

    benchmark = get_benchmark(args.benchmark)
    turns = (args.min_turns, args.max_turns)

    def request(index: int) -> GenerationRequest:
        target = index % benchmark.num_labels
        regex = dialogue_regex(benchmark.speakers, benchmark.num_labels, *turns,
                               max_utterance_chars=args.max_utterance_chars, target_label=target)
        return GenerationRequest(build_messages(benchmark, "balanced", turns=turns, target_label=target),
                                 seed=index, params=SamplingParams(max_new_tokens=args.max_new_tokens),
                                 grammar=Grammar("regex", regex))

    requests = [request(i) for i in range(args.count)]
    rows: list[tuple[str, float, int, int]] = []

    def measure(name: str, run) -> None:
        began = time.perf_counter()
        results = run()
        seconds = time.perf_counter() - began
        clean = sum(r.finish_reason in ("eos_token", "stop") and re.fullmatch(q.grammar.value, r.text) is not None
                    for q, r in zip(requests, results, strict=True))
        rows.append((name, seconds, sum(r.generated_tokens or 0 for r in results), clean))
        print(f"{name}: {args.count} dialogues in {seconds:.1f} s", flush=True)

    from erc_synth.generation.backends.embedded import load_embedded_backend

    inprocess = load_embedded_backend(batch_size=args.batch, num_threads=args.threads)
    measure(f"transformers (batch {args.batch})", lambda: asyncio.run(inprocess.generate_batch(requests)))
    asyncio.run(inprocess.aclose())  # free the model before vLLM takes its memory

    server, started_in = None, 0.0
    with tempfile.TemporaryDirectory() as cache_root:
        endpoint = args.endpoint
        if endpoint is None:
            server, started_in = start_vllm(args.port, cache_root, Path(cache_root) / "server.log")
            endpoint = f"http://127.0.0.1:{args.port}"
            print(f"vLLM answered after {started_in:.0f} s (not counted)", flush=True)
        try:
            async def through_server():
                backend = OpenAICompatBackend([endpoint])
                try:
                    await backend.info()
                    batches = [requests[i:i + args.batch] for i in range(0, len(requests), args.batch)]
                    return [r for batch in batches for r in await backend.generate_batch(batch)]
                finally:
                    await backend.aclose()

            measure(f"vLLM server ({args.batch} in flight)", lambda: asyncio.run(through_server()))
        finally:
            if server is not None:
                server.stop(60)

    print(f"\ncpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}, python {sys.version.split()[0]}")
    print(f"{'engine':>28} {'seconds':>8} {'dial/min':>9} {'tok/s':>8} {'clean':>7}")
    for name, seconds, tokens, clean in rows:
        print(f"{name:>28} {seconds:>8.1f} {args.count / seconds * 60:>9.2f} {tokens / seconds:>8.1f} "
              f"{clean:>3}/{args.count}")
    print(f"vLLM / transformers, dialogues per minute: {rows[0][1] / rows[1][1]:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
