"""Using every core for the main job: datasets side by side in worker processes, or more threads per forward pass.

Why: ``erc-synth run`` generates several independent datasets from one small model; a core can serve either
another dataset (a worker process of its own, one torch thread each) or the same forward pass (more intra-op
threads, one dataset at a time). This runs the real command both ways, plus today's one-thread sequential
run, on the same workload, and prints wall time, CPU time and the speed-up of each.

    python benchmarks/bench_workers.py
    python benchmarks/bench_workers.py --datasets 6 --num-dialogues 16    # the whole quickstart, each way

Each variant is ``erc-synth run --preset P --out DIR --no-progress`` in a fresh process (model loading and
the build included, as a user sees them), where P is the quickstart preset cut to its first ``--datasets``
datasets with ``--num-dialogues`` each, and ``num_threads`` / ``--workers`` set per variant. The runs happen
in a scratch folder with no real benchmark data beside it (no JS divergence or decontamination: the same for
every variant). The cores may be shared: the load average before each run is printed with it, and
``--repeats`` rounds interleave the variants (each variant's best round counts).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from erc_synth.generation_workers import machine_cores

PRESET = Path(__file__).resolve().parents[1] / "erc_synth" / "presets" / "quickstart.yaml"


def write_preset(folder: Path, datasets: int, count: int, threads: int) -> Path:
    data = yaml.safe_load(PRESET.read_text())
    data["name"] = f"bench-{threads}-threads"
    data["datasets"] = [{**spec, "num_dialogues": count} for spec in data["datasets"][:datasets]]
    data["backend_options"] = {**(data.get("backend_options") or {}), "num_threads": threads}
    path = folder / f"preset-{threads}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run(preset: Path, out: Path, workers: int) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system of the command and its workers)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "erc_synth.cli", "run", "--preset", str(preset), "--out", str(out),
                             "--no-progress", "--workers", str(workers)], cwd=out.parent, capture_output=True,
                            text=True, env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    wall = time.perf_counter() - began
    if result.returncode != 0:
        raise SystemExit(f"erc-synth run failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=int, default=2, help="the quickstart's first N datasets")
    parser.add_argument("--num-dialogues", type=int, default=8, help="dialogues per dataset")
    parser.add_argument("--cores", type=int, default=machine_cores(), help="cores to use (workers or threads)")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()

    variants = [("sequential, 1 thread", 1, 1), (f"sequential, {args.cores} threads", 1, args.cores),
                (f"{min(args.cores, args.datasets)} workers, 1 thread each", args.cores, 1)]
    best: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as scratch:
        folder = Path(scratch)
        for round_ in range(args.repeats):
            for name, workers, threads in variants:
                preset = write_preset(folder, args.datasets, args.num_dialogues, threads)
                load = os.getloadavg()[0]
                wall, cpu = run(preset, folder / f"out-{round_}-{workers}-{threads}", workers)
                print(f"round {round_ + 1}, {name}: {wall:.1f} s wall, {cpu:.1f} s CPU (load average before "
                      f"{load:.1f})", flush=True)
                if name not in best or wall < best[name][0]:
                    best[name] = (wall, cpu)
    base = best[variants[0][0]][0]
    print(f"\n{args.datasets} datasets x {args.num_dialogues} dialogues, cpus {os.cpu_count()}, load average now "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print(f"{'variant':>32} {'wall s':>8} {'CPU s':>8} {'CPU/wall':>9} {'speed-up':>9}")
    for name, (wall, cpu) in best.items():
        print(f"{name:>32} {wall:>8.1f} {cpu:>8.1f} {cpu / wall:>9.2f} {base / wall:>8.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
