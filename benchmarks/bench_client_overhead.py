"""Client overhead: dialogues per second the engine sustains against a server that answers instantly.

The server (tests/servers/tgi_server.py --instant) returns a canned valid dialogue without a model, so the
figure measures the client side alone: prompt rendering, the huggingface_hub HTTP client, parsing, validation
and the fsynced group-committed store. Goal: thousands per second, far above what any real LLM server yields.
It also measures a bare httpx client against the same server (the transport's ceiling on this machine, where
server and client share the cores) and the engine with no HTTP at all, so the ratios say where the time goes.

Run: python benchmarks/bench_client_overhead.py [--num-dialogues 3000] [--concurrency 16 64]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from helpers.servers.process import tgi_server  # noqa: E402
from helpers.servers.tgi_server import canned_dialogue  # noqa: E402

from erc_synth.generation.backends.base import GenerationResult, ModelInfo  # noqa: E402
from erc_synth.generation.engine import GenerationConfig, generate  # noqa: E402


class InstantBackend:
    """No HTTP at all: isolates the engine (prompts, seeds, parsing, fsynced store) from transport costs."""

    name, supports_grammar, preferred_batch_size = "instant", False, 1

    async def info(self) -> ModelInfo:
        return ModelInfo("instant", "instant")

    async def generate_batch(self, requests):
        return [GenerationResult(canned_dialogue("meld", False), "eos_token", 1) for _ in requests]

    async def aclose(self) -> None:
        pass


def engine_only(num: int, workdir: Path) -> float:
    out = workdir / "engine-only"
    config = GenerationConfig(benchmark="meld", mode="balanced", num_dialogues=num, seed=1, out=out, concurrency=16)
    started = time.perf_counter()
    generate(config, backend=InstantBackend(), progress=False)
    return num / (time.perf_counter() - started)


def raw_httpx(url: str, num: int, concurrency: int) -> float:
    """The same server with a bare httpx client: the transport's own ceiling on this machine."""
    import asyncio

    import httpx2

    async def run() -> float:
        semaphore = asyncio.Semaphore(concurrency)
        async with httpx2.AsyncClient() as client:
            async def one(i: int) -> None:
                async with semaphore:
                    response = await client.post(f"{url}/generate", json={"inputs": "x", "parameters": {
                        "seed": i, "details": True}})
                    response.raise_for_status()

            started = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(num)))
            return num / (time.perf_counter() - started)

    return asyncio.run(run())


def measure(url: str, backend: str, num: int, concurrency: int, workdir: Path) -> float:
    out = workdir / f"{backend}-{concurrency}"
    shutil.rmtree(out, ignore_errors=True)
    config = GenerationConfig(benchmark="meld", mode="balanced", num_dialogues=num, seed=1, out=out,
                              backend=backend, endpoints=[url], chat_format="raw" if backend == "tgi" else "auto",
                              concurrency=concurrency)
    started = time.perf_counter()
    report = generate(config, progress=False)
    elapsed = time.perf_counter() - started
    assert report.status == "complete" and report.accepted == num, report.summary()
    return num / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num-dialogues", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, tgi_server(None, "--instant") as server:
        workdir = Path(tmp)
        measure(server.url, "tgi", 200, 16, workdir)  # warm-up: imports, connection pool
        print(f"instant server at {server.url}; {args.num_dialogues} dialogues per measurement")
        rates = {}
        for backend in ("tgi", "openai"):
            for concurrency in args.concurrency:
                rate = measure(server.url, backend, args.num_dialogues, concurrency, workdir)
                rates[(backend, concurrency)] = rate
                print(f"  {backend:<7} concurrency {concurrency:>3}: {rate:8.0f} dialogues/s")
        ceiling = raw_httpx(server.url, args.num_dialogues, 16)
        alone = engine_only(args.num_dialogues, workdir)
        print(f"  bare httpx, same server, concurrency 16: {ceiling:8.0f} requests/s (transport ceiling)")
        print(f"  engine alone, no HTTP (in-process instant backend): {alone:8.0f} dialogues/s")
        best = max(rates.values())
        print(f"  ratio best engine-over-HTTP / bare httpx: {best / ceiling:.2f}x")
        print(f"  ratio engine alone / best engine-over-HTTP: {alone / best:.2f}x")
        base = rates[("tgi", args.concurrency[0])]
        for (backend, concurrency), rate in rates.items():
            print(f"  ratio {backend} c={concurrency} / tgi c={args.concurrency[0]}: {rate / base:.2f}x")


if __name__ == "__main__":
    main()
