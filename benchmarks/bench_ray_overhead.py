"""Per-cell overhead of the Ray grid engine against the in-process loop, on the same tiny grid, in one run.

The grid is classifiers/configs/smoke.yaml made CI-sized (its three architectures x org and nat x ``--seeds``
seeds, the tiny random encoder, toy MELD-shaped data: about a second of training a cell), so what differs between
the runs is the engine. Runs, each into a fresh output folder:

1. in-process: the cells one after another in this process (the reference);
2. Ray, cold: ``ray.init`` of a local instance with ``--cpus`` CPUs, then the grid with one cell in flight (the
   first cell pays for its worker process importing torch and transformers);
3. Ray, warm: the same grid again on the same instance (its worker processes are reused);
4. Ray, ``--cpus`` cells in flight.

Printed: each wall time, the per-cell overhead ((Ray - in-process) / cells) cold and warm, their ratios, whether
every run wrote byte-identical tables, and the speed-up of several cells in flight. Goal: warm overhead at most
2 s a cell on 2 cores.

Run: python benchmarks/bench_ray_overhead.py [--seeds 2] [--cpus 2]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

import ray  # noqa: E402
from helpers.experiment_configs import smoke_ci_config  # noqa: E402

from erc_synth.classifiers.experiment import Experiment, ExperimentConfig  # noqa: E402
from erc_synth.classifiers.workers import run_in_process, run_on_ray  # noqa: E402

TABLES = ("results_long.csv", "main_table.md", "extended_table.csv")


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def tables(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in TABLES}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=2, help="seeds of the grid (6 cells each)")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray instance")
    args = parser.parse_args()
    quiet = lambda _line: None  # noqa: E731
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        config = ExperimentConfig.load(smoke_ci_config(root / "grid", regimes=["org", "nat"],
                                                       seeds=list(range(args.seeds))))
        cells = len(list(config.cells()))

        def grid(name: str) -> Experiment:
            return Experiment(config, root / name)

        in_process = timed(lambda: run_in_process(grid("in-process"), log=quiet, progress=False))
        start_up = timed(lambda: ray.init(num_cpus=args.cpus, include_dashboard=False,
                                          logging_level=logging.WARNING))
        try:
            cold = timed(lambda: run_on_ray(grid("ray-cold"), workers=1, log=quiet, progress=False))
            warm = timed(lambda: run_on_ray(grid("ray-warm"), workers=1, log=quiet, progress=False))
            parallel = timed(lambda: run_on_ray(grid("ray-parallel"), workers=args.cpus, log=quiet,
                                                progress=False))
        finally:
            ray.shutdown()
        reference = tables(root / "in-process")
        identical = all(tables(root / name) == reference for name in ("ray-cold", "ray-warm", "ray-parallel"))

    print(f"grid: {cells} cells (smoke.yaml's architectures x org, nat x {args.seeds} seed(s), tiny encoder); "
          f"local Ray instance with {args.cpus} CPU(s); OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    print(f"in-process loop:            {in_process:7.2f} s  ({in_process / cells:.2f} s a cell)")
    print(f"ray.init (local instance):  {start_up:7.2f} s")
    print(f"Ray, 1 in flight, cold:     {cold:7.2f} s  ratio to in-process {cold / in_process:.2f}; overhead "
          f"{(cold - in_process) / cells:+.2f} s a cell ({(start_up + cold - in_process) / cells:+.2f} with ray.init)")
    print(f"Ray, 1 in flight, warm:     {warm:7.2f} s  ratio to in-process {warm / in_process:.2f}; overhead "
          f"{(warm - in_process) / cells:+.2f} s a cell (goal <= 2 s)")
    print(f"Ray, {args.cpus} in flight, warm:     {parallel:7.2f} s  speed-up over in-process "
          f"{in_process / parallel:.2f}x")
    print(f"tables byte-identical to the in-process run in every Ray run: {identical}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
