"""Throughput against the tiny-model test server: concurrency 1 (the reference study's sequential way) versus
the engine's default (16 requests in flight, which the server batches like TGI's continuous batching).

Run: python benchmarks/bench_concurrency.py [--num-dialogues 32]
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
from helpers.servers.tiny_lm import build_tiny_lm  # noqa: E402

from erc_synth.generation.backends.base import SamplingParams  # noqa: E402
from erc_synth.generation.engine import GenerationConfig, generate  # noqa: E402


def measure(url: str, num: int, concurrency: int | None, out: Path) -> tuple[float, int]:
    shutil.rmtree(out, ignore_errors=True)
    config = GenerationConfig(benchmark="meld", mode="natural", num_dialogues=num, seed=2, out=out, backend="tgi",
                              endpoints=[url], chat_format="chatml", concurrency=concurrency, turns=(2, 6),
                              max_utterance_chars=60, sampling=SamplingParams(max_new_tokens=160))
    started = time.perf_counter()
    report = generate(config, progress=False)
    return report.finished_now / (time.perf_counter() - started), report.finished_now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num-dialogues", type=int, default=32)
    parser.add_argument("--model-dir", default=str(Path(tempfile.gettempdir()) / "erc_synth_tiny_lm"))
    args = parser.parse_args()
    build_tiny_lm(args.model_dir)
    with tempfile.TemporaryDirectory() as tmp, tgi_server(args.model_dir) as server:
        measure(server.url, 4, 4, Path(tmp) / "warmup")  # grammar compilation, first batches
        sequential, n1 = measure(server.url, args.num_dialogues, 1, Path(tmp) / "c1")
        default, nd = measure(server.url, args.num_dialogues, None, Path(tmp) / "cdefault")
    print(f"tiny-model test server, {args.num_dialogues} dialogues (requests incl. retries of rejections):")
    print(f"  concurrency 1      : {sequential:6.2f} requests/s ({n1} requests)")
    print(f"  default (16)       : {default:6.2f} requests/s ({nd} requests)")
    print(f"  ratio default / 1  : {default / sequential:.2f}x")


if __name__ == "__main__":
    main()
