"""The experiment's run loop: one worker, N workers on one machine, or workers on many nodes, one output folder.

Why claims rather than a scheduler: a lab's GPUs come as one machine with several cards, a SLURM array, or
both, and the only thing every setting shares is a filesystem. Each worker repeatedly claims an unfinished cell
(see :mod:`.cell_claims`), trains it, writes its result atomically, and drops the claim; a worker that dies
leaves a claim whose heartbeat stops, and another worker takes the cell over after the expiry. When no cell is
left, the first worker to claim the tables assembles them; ``--tables-only`` does it by hand.

Why a grid record: ``OUT/grid.json`` holds every cell's settings fingerprint, written once by the first worker.
A worker started with another config on the same folder is refused before it trains anything, so two configs
can never mix their cells in one set of tables.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from erc_synth.dataset_scripts.core.errors import ErcSynthError

from . import ranks
from .cell_claims import CellClaims

if TYPE_CHECKING:
    from .experiment import Cell, Experiment

GRID_RECORD = "grid.json"
TABLES_KEY = "_tables"
#: Set by ``--workers N`` on the worker processes it starts: the worker's index (logs, no progress bar of its own).
WORKER_INDEX_ENV = "ERC_SYNTH_WORKER_INDEX"


@dataclass(frozen=True)
class ClaimTiming:
    """Seconds between heartbeats, and of silence after which a claim counts as its worker's death."""

    heartbeat: float = 30.0
    expiry: float = 300.0

    def check(self) -> ClaimTiming:
        if self.heartbeat <= 0:
            raise ErcSynthError(f"--heartbeat must be positive, got {self.heartbeat:g}")
        if self.expiry <= 2 * self.heartbeat:
            raise ErcSynthError(f"--claim-expiry ({self.expiry:g} s) must be more than twice --heartbeat "
                                f"({self.heartbeat:g} s), or a slow heartbeat would pass for a dead worker")
        return self


def check_grid_record(experiment: Experiment) -> Path:
    """Create ``OUT/grid.json`` for this config, or refuse a folder that another config's workers started."""
    config = experiment.config
    cells = {cell.key: config.fingerprint(cell) for cell in config.cells()}
    record = experiment.out_dir / GRID_RECORD
    record.parent.mkdir(parents=True, exist_ok=True)
    if not record.exists():
        draft = record.with_name(f".{GRID_RECORD}.{os.getpid()}.tmp")
        draft.write_text(json.dumps({"name": config.name, "config": config.source, "cells": cells},
                                    indent=2, sort_keys=True) + "\n")
        try:
            os.link(draft, record)  # atomic create-if-absent, NFS included; the record is whole when it appears
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    stored = json.loads(record.read_text())
    if stored["cells"] != cells:
        differing = sorted(set(cells) ^ set(stored["cells"])) or sorted(
            k for k in cells if cells[k] != stored["cells"][k])
        raise ErcSynthError(
            f"{experiment.out_dir} was started with other settings than {config.source} (config "
            f"{stored['config']}; {len(differing)} cell(s) differ, e.g. {differing[0]}); use another output folder, "
            f"or delete {record} to extend the grid (finished cells with the same settings are kept)")
    return record


def _estimate(bar, completed_here: int) -> None:
    """Once a cell is done, show the whole grid's expected duration beside tqdm's own remaining time."""
    from tqdm import tqdm

    if not bar.disable and completed_here and bar.n > bar.initial:
        elapsed = bar.format_dict["elapsed"]
        rate = (bar.n - bar.initial) / max(elapsed, 1e-9)
        bar.set_postfix_str(f"grid total ~{tqdm.format_interval(elapsed + (bar.total - bar.n) / rate)}")


def run_worker(experiment: Experiment, timing: ClaimTiming = ClaimTiming(), log: Callable[[str], None] = print,
               progress: bool = True) -> dict[str, Path]:
    """Claim and train cells until none is left; returns the tables' paths if this worker assembled them.

    Under a data-parallel launcher only rank 0 runs this logic; the other ranks follow its broadcasts.
    """
    ranks.start()
    if not ranks.is_main_process():
        _follow(experiment)
        return {}
    from tqdm import tqdm

    timing.check()
    check_grid_record(experiment)
    index = os.environ.get(WORKER_INDEX_ENV)
    prefix = f"[worker {index}] " if index is not None else ""
    cells = list(experiment.config.cells())
    done_before = [cell for cell in cells if experiment.finished(cell)]
    for number, cell in enumerate(cells, 1):
        if cell in done_before:
            log(f"{prefix}[{number}/{len(cells)}] {cell.key}: done earlier, skipped")
    log(f"{prefix}{experiment.config.name}: {len(cells)} cells, {len(done_before)} done earlier, "
        f"{len(cells) - len(done_before)} to run, in {experiment.out_dir}")
    claims = CellClaims(experiment.out_dir / "claims", timing.heartbeat, timing.expiry)
    previous_handler = _exit_on_sigterm()
    bar = tqdm(total=len(cells), initial=len(done_before), unit="cell", dynamic_ncols=True,
               disable=not progress or index is not None)
    say = log if bar.disable else (lambda line: bar.write(line, file=sys.stdout))
    completed_here = 0
    try:
        while True:
            pending = [cell for cell in cells if not experiment.finished(cell)]
            bar.n = len(cells) - len(pending)
            _estimate(bar, completed_here)
            bar.refresh()
            if not pending:
                break
            picked = _claim_one(experiment, claims, pending)
            if picked is None:  # every unfinished cell is held by a live worker: wait, then look again
                ranks.broadcast("")
                time.sleep(timing.heartbeat)
                continue
            cell, claim = picked
            number = cells.index(cell) + 1
            taken = f" (taken over from a silent worker, claim generation {claim.generation})" \
                if claim.generation > 1 else ""
            say(f"{prefix}[{number}/{len(cells)}] {cell.key}: training{taken}")
            ranks.broadcast(cell.key)
            finished = False
            try:
                payload = experiment.run_cell(cell)
                finished = True
            finally:
                claim.release(done=finished)
            completed_here += 1
            real = payload["scores"]["real"]["weighted_f1"]
            say(f"{prefix}[{number}/{len(cells)}] {cell.key}: real test weighted F1 {real * 100:.2f}")
    finally:
        bar.close()
        _restore_sigterm(previous_handler)
    ranks.broadcast(None)
    if not completed_here and _tables_current(experiment, cells):
        log(f"{prefix}every cell is finished and the tables in {experiment.out_dir} are up to date")
        return {}
    tables = claims.try_claim(TABLES_KEY)
    if tables is None:
        log(f"{prefix}every cell is finished; {claims.holder(TABLES_KEY)} is assembling the tables")
        return {}
    try:
        return experiment.write_tables()
    finally:
        tables.release(done=True)


def _exit_on_sigterm():
    """SIGTERM (a SLURM preemption, ``kill``) unwinds like Ctrl-C, so the cell's claim is dropped at once instead of
    waiting out its expiry. Returns the handler it replaced (None off the main thread, where none can be set)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))


def _restore_sigterm(handler) -> None:
    import signal

    if handler is not None:
        signal.signal(signal.SIGTERM, handler)


def _tables_current(experiment: Experiment, cells: list[Cell]) -> bool:
    """Whether the tables were written after the newest cell (another worker assembled them already)."""
    long = experiment.out_dir / "results_long.csv"
    if not long.is_file():
        return False
    newest = max(experiment.cell_path(cell).stat().st_mtime_ns for cell in cells)
    return long.stat().st_mtime_ns >= newest


def _claim_one(experiment: Experiment, claims: CellClaims, pending: list[Cell]):
    for cell in pending:
        claim = claims.try_claim(cell.key)
        if claim is None:
            continue
        if experiment.finished(cell):  # finished by another worker between the listing and the claim
            claim.release(done=True)
            continue
        return cell, claim
    return None


def _follow(experiment: Experiment) -> None:
    """Ranks other than 0: train each cell rank 0 broadcasts ("" means wait, None means the grid is done)."""
    by_key = {cell.key: cell for cell in experiment.config.cells()}
    while (key := ranks.broadcast(None)) is not None:
        if key:
            experiment.run_cell(by_key[key])


def default_worker_count() -> int:
    """One worker per visible GPU; one on a CPU-only machine."""
    import torch

    return max(1, torch.cuda.device_count()) if torch.cuda.is_available() else 1


def run_local_workers(experiment: Experiment, config_path: str, count: int, timing: ClaimTiming,
                      progress: bool = True) -> int:
    """Start ``count`` worker processes on this machine (one GPU each when there are GPUs) and wait for them.

    The workers claim cells from the shared output folder exactly as workers on other nodes would; this process
    only shows the grid's progress and reports a worker that failed.
    """
    from tqdm import tqdm

    timing.check()
    check_grid_record(experiment)
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    # The user's own CUDA_VISIBLE_DEVICES (e.g. "2,3") names the cards to spread over; default: every card.
    visible = [d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()] or \
        [str(i) for i in range(gpus)]
    cells = list(experiment.config.cells())
    done = sum(experiment.finished(cell) for cell in cells)
    print(f"{experiment.config.name}: {len(cells)} cells, {done} done earlier, {len(cells) - done} to run, "
          f"{count} workers{f' on {gpus} GPU(s)' if gpus else ' on CPU'}, in {experiment.out_dir}", flush=True)
    processes = []
    for index in range(count):
        env = {**os.environ, WORKER_INDEX_ENV: str(index), "PYTHONUNBUFFERED": "1"}
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = visible[index % len(visible)]
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "erc_synth.cli", "experiment", config_path, "--out", str(experiment.out_dir),
             "--worker", "--heartbeat", str(timing.heartbeat), "--claim-expiry", str(timing.expiry)], env=env))
    bar = tqdm(total=len(cells), initial=done, unit="cell", dynamic_ncols=True, disable=not progress)
    try:
        while any(process.poll() is None for process in processes):
            time.sleep(1.0)
            bar.n = sum(experiment.cell_path(cell).is_file() for cell in cells)
            _estimate(bar, bar.n - done)
            bar.refresh()
    except KeyboardInterrupt:  # the workers got the same Ctrl-C: let them drop their claims
        for process in processes:
            process.wait()
        raise
    finally:
        bar.close()
    failed = [(index, process.returncode) for index, process in enumerate(processes) if process.returncode]
    if failed:
        index, status = failed[0]
        raise ErcSynthError(f"worker {index} exited with status {status} ({len(failed)} of {count} failed; their "
                            "errors are above); rerun the same command to resume")
    return 0


def run_grid(experiment: Experiment, config_path: str, workers: int | None, worker: bool, heartbeat: float,
             expiry: float) -> dict[str, Path]:
    """``erc-synth experiment``: one in-process worker, ``--workers N`` processes, or ``--worker`` joining others."""
    timing = ClaimTiming(heartbeat, expiry).check()
    if workers is not None and worker:
        raise ErcSynthError("--workers and --worker exclude each other: --workers N starts N workers here, "
                            "--worker makes this process one of them")
    if workers is not None and workers < 1:
        raise ErcSynthError(f"--workers must be at least 1, got {workers}")
    count = workers if workers is not None else default_worker_count()
    if worker or count == 1 or ranks.world_size() > 1:
        return experiment.run(timing=timing)
    run_local_workers(experiment, config_path, count, timing)
    tables = {"long": "results_long.csv", "main_md": "main_table.md", "extended_md": "extended_table.md"}
    return {name: experiment.out_dir / file for name, file in tables.items() if (experiment.out_dir / file).is_file()}
