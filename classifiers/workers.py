"""The experiment grid's engine: every unfinished cell as a Ray task, or one cell at a time in this process.

Why Ray: placing a cell on a free GPU, retrying it when its worker process or node dies, and queueing the rest
is what a distributed engine does and has tested on many clusters; labs that run grids of Trainer runs already
run Ray on a workstation, a cluster, SLURM or Kubernetes. The grid joins such a cluster (``--ray-address``) or
starts a local instance for the run.

Why plain tasks rather than Ray Tune: a cell's only state is its result file under ``OUT/cells`` (written
atomically by :meth:`Experiment.run_cell`), and a rerun skips every cell that has one. Tune would keep a second
record of the same grid (its trials, its experiment state, ``Tuner.restore``) that can disagree with the files,
and its search and scheduling features have nothing to do in a fixed grid. A task per cell with
``max_retries`` gives exactly the needed control: which cells are submitted, how many at once, what is retried.

Why the driver checks the cluster first: Ray queues a task whose resources no node has (it waits for an
autoscaler), so a cell asking for a GPU on a GPU-less cluster would hang; the driver refuses it with one line.

Under a data-parallel launcher (``torchrun``, ``accelerate launch``) the grid runs in this process, one cell at a
time, every rank training each cell together; rank 0 decides which cell and broadcasts it (see :mod:`.ranks`).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from erc_synth.dataset_scripts.core.errors import ErcSynthError, SettingError

from . import ranks
from .experiment import Cell, Experiment, ExperimentConfig
from .settings import check_cell_workers

#: Ray re-runs a cell whose worker process or node died this many times (an exception in the cell is not retried).
MAX_RETRIES = 3
#: Seconds the driver waits between looks at its cells in flight (the progress bar's refresh).
POLL_SECONDS = 0.5
Log = Callable[[str], None]


def _estimate(bar, completed_here: int) -> None:
    """Once a cell is done, show the whole grid's expected duration beside tqdm's own remaining time."""
    from tqdm import tqdm

    if not bar.disable and completed_here and bar.n > bar.initial:
        elapsed = bar.format_dict["elapsed"]
        rate = (bar.n - bar.initial) / max(elapsed, 1e-9)
        bar.set_postfix_str(f"grid total ~{tqdm.format_interval(elapsed + (bar.total - bar.n) / rate)}")


def _announce(experiment: Experiment, log: Log, where: str) -> tuple[list[Cell], list[Cell]]:
    """Print the grid's size before anything trains; returns (all cells, cells still to run)."""
    cells = list(experiment.config.cells())
    pending = []
    for number, cell in enumerate(cells, 1):
        if experiment.finished(cell):
            log(f"[{number}/{len(cells)}] {cell.key}: done earlier, skipped")
        else:
            pending.append(cell)
    log(f"{experiment.config.name}: {len(cells)} cells, {len(cells) - len(pending)} done earlier, {len(pending)} to "
        f"run{where}, in {experiment.out_dir}")
    return cells, pending


def _progress_bar(cells: list[Cell], pending: list[Cell], progress: bool):
    from tqdm import tqdm

    return tqdm(total=len(cells), initial=len(cells) - len(pending), unit="cell", dynamic_ncols=True,
                disable=not progress)


def run_in_process(experiment: Experiment, log: Log = print, progress: bool = True) -> dict[str, Path]:
    """Train the unfinished cells one after another in this process, then write the tables.

    The reference the Ray engine is measured against, the path without Ray installed, and the loop every rank
    of a data-parallel launcher runs (rank 0 chooses each cell and broadcasts it; the others follow).
    """
    ranks.start()
    if not ranks.is_main_process():
        _follow(experiment)
        return {}
    experiment.check_grid_record()
    cells, pending = _announce(experiment, log, " one at a time in this process")
    bar = _progress_bar(cells, pending, progress)
    say = log if bar.disable else (lambda line: bar.write(line, file=sys.stdout))
    try:
        for done, cell in enumerate(pending, 1):
            number = cells.index(cell) + 1
            say(f"[{number}/{len(cells)}] {cell.key}: training")
            ranks.broadcast(cell.key)
            payload = experiment.run_cell(cell)
            say(f"[{number}/{len(cells)}] {cell.key}: real test weighted F1 "
                f"{payload['scores']['real']['weighted_f1'] * 100:.2f}")
            bar.update(1)
            _estimate(bar, done)
    finally:
        bar.close()
    ranks.broadcast(None)
    return experiment.write_tables()


def _follow(experiment: Experiment) -> None:
    """Ranks other than 0: train each cell rank 0 broadcasts (None means the grid is done)."""
    by_key = {cell.key: cell for cell in experiment.config.cells()}
    while (key := ranks.broadcast(None)) is not None:
        experiment.run_cell(by_key[key])


# --- the Ray engine --------------------------------------------------------------------------------------------

#: One Experiment per (config, folder) in each Ray worker process: a reused worker keeps the benchmark's data
#: loaded between the cells it trains.
_WORKER_EXPERIMENTS: dict[tuple, Experiment] = {}


def train_cell(config: ExperimentConfig, out_dir: str, key: str) -> dict[str, Any]:
    """The Ray task: train one cell into ``out_dir`` (atomic result file) and return a short summary.

    A retried attempt whose predecessor had already written the result (it died after the rename) returns the
    stored result instead of training the cell again.
    """
    import json

    slot = (out_dir, config.source, tuple(config.fingerprint(cell) for cell in config.cells()))
    experiment = _WORKER_EXPERIMENTS.get(slot)
    if experiment is None:
        _WORKER_EXPERIMENTS.clear()
        experiment = _WORKER_EXPERIMENTS[slot] = Experiment(config, out_dir)
    cell = next(cell for cell in config.cells() if cell.key == key)
    if experiment.finished(cell):
        payload, trained = json.loads(experiment.cell_path(cell).read_text()), False
    else:
        payload, trained = experiment.run_cell(cell), True
    return {"key": key, "real_weighted_f1": payload["scores"]["real"]["weighted_f1"], "trained": trained,
            "pid": os.getpid()}


def _connect(address: str | None, log: Log) -> bool:
    """Join the cluster at ``address`` (``auto`` or ``HOST:PORT``) or start a local instance; True if started here.

    A caller that initialised Ray itself (a notebook, a test) keeps its instance.
    """
    import logging

    import ray

    if ray.is_initialized():
        return False
    try:
        if address:
            if address != "auto":
                _check_reachable(address)
            ray.init(address=address, logging_level=logging.WARNING)
            return True
        ray.init(address="local", include_dashboard=False, logging_level=logging.WARNING)
    except ConnectionError as exc:
        raise SettingError("ray_address", f"{address}: cannot join a Ray cluster there ({exc}); start one with "
                                          "`ray start --head` or check the address `ray status` prints") from None
    log("started a local Ray instance for this run (join a running cluster with --ray-address auto|HOST:PORT)")
    return True


def _check_reachable(address: str) -> None:
    """Fail fast on an address where nothing listens: Ray itself keeps retrying for minutes."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise SettingError("ray_address", f"{address}: expected auto or HOST:PORT (e.g. 10.0.0.1:6379)")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise SettingError("ray_address", f"{address}: no Ray cluster answers there ({exc.strerror or exc}); "
                                          "start one with `ray start --head` or check the address `ray status` "
                                          "prints") from None


def _cluster(experiment: Experiment, workers: int | None) -> tuple[dict[str, float], int, str]:
    """The resources one cell asks (Ray's names), how many cells to keep in flight, and a line on the cluster.

    Refuses a cell that no live node can hold, instead of letting Ray wait for it forever.
    """
    import ray

    nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    cpus = sum(node.get("CPU", 0) for node in nodes)
    gpus = sum(node.get("GPU", 0) for node in nodes)
    wanted = experiment.config.resources
    gpu = wanted.gpu if wanted.gpu is not None else (1.0 if gpus else 0.0)
    ask = {"CPU": wanted.cpu, "GPU": gpu}
    names = {"CPU": "cpu", "GPU": "gpu"}
    for resource, amount in ask.items():
        largest = max((node.get(resource, 0) for node in nodes), default=0)
        if amount > largest:
            total = cpus if resource == "CPU" else gpus
            raise ErcSynthError(
                f"{experiment.config.source}: resources.{names[resource]}: each cell asks for {amount:g} "
                f"{resource}(s), but no node of the Ray cluster has that many ({len(nodes)} node(s), {total:g} "
                f"{resource}(s) in all, at most {largest:g} on one); lower resources.{names[resource]} in the "
                "config or join a cluster that has them (--ray-address)")
    fits = min(int(sum(node.get(r, 0) // a for node in nodes)) for r, a in ask.items() if a > 0) or 1
    in_flight = workers if workers is not None else fits
    line = (f" on Ray ({len(nodes)} node(s), {cpus:g} CPU(s), {gpus:g} GPU(s); {wanted.cpu:g} CPU and {gpu:g} "
            f"GPU a cell; {in_flight} at a time)")
    return ask, in_flight, line


def _discard_attempt(experiment: Experiment, cell: Cell) -> None:
    """What a cancelled or crashed attempt may leave: its scratch folder and a staged result never renamed."""
    if experiment.finished(cell):
        return
    shutil.rmtree(experiment.out_dir / "work" / cell.key, ignore_errors=True)
    path = experiment.cell_path(cell)
    for staged in path.parent.glob(f".{path.name}.*.tmp"):
        staged.unlink(missing_ok=True)


def _failure_reason(error: BaseException) -> tuple[str, bool]:
    """(one line on why a cell failed, whether it is the user's error): a cell's exception or Ray's own."""
    import ray.exceptions

    cause = error.cause if isinstance(error, ray.exceptions.RayTaskError) else error
    if isinstance(cause, ErcSynthError):
        return str(cause), True
    first = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {first[-1] if first else ''}", False


def run_on_ray(experiment: Experiment, address: str | None = None, workers: int | None = None, log: Log = print,
               progress: bool = True) -> dict[str, Path]:
    """Run every unfinished cell as a Ray task (at most ``workers`` at once), then write the tables.

    Ctrl-C cancels the cells in flight (their workers are stopped; no result file is half-written, since a
    result appears only by rename, and their scratch folders are removed) and re-raises KeyboardInterrupt.
    """
    import ray
    import ray.exceptions

    experiment.check_grid_record()  # before Ray starts: another config's folder costs nothing
    started = _connect(address, log)
    try:
        ask, in_flight_limit, where = _cluster(experiment, workers)
        cells, pending = _announce(experiment, log, where)
        remote = ray.remote(train_cell).options(num_cpus=ask["CPU"], num_gpus=ask["GPU"], max_retries=MAX_RETRIES,
                                                name="erc_synth_cell")
        config_ref = ray.put(experiment.config)
        out_dir = str(experiment.out_dir.resolve())
        queue, in_flight, failures = deque(pending), {}, []
        bar = _progress_bar(cells, pending, progress)
        say = log if bar.disable else (lambda line: bar.write(line, file=sys.stdout))
        completed = 0
        try:
            while queue or in_flight:
                while queue and len(in_flight) < in_flight_limit:
                    cell = queue.popleft()
                    in_flight[remote.remote(config_ref, out_dir, cell.key)] = cell
                    say(f"[{cells.index(cell) + 1}/{len(cells)}] {cell.key}: training")
                ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=POLL_SECONDS)
                for ref in ready:
                    cell = in_flight.pop(ref)
                    number = f"[{cells.index(cell) + 1}/{len(cells)}] {cell.key}"
                    try:
                        summary = ray.get(ref)
                    except ray.exceptions.RayError as error:
                        reason = _failure_reason(error)[0]
                        failures.append((cell, error))
                        _discard_attempt(experiment, cell)
                        say(f"{number}: failed: {reason}")
                        continue
                    completed += 1
                    say(f"{number}: real test weighted F1 {summary['real_weighted_f1'] * 100:.2f}")
                    bar.update(1)
                    _estimate(bar, completed)
        except KeyboardInterrupt:
            _cancel(experiment, in_flight, say)
            raise
        finally:
            bar.close()
    finally:
        if started:
            ray.shutdown()
    if failures:
        cell, error = failures[0]
        reason, user = _failure_reason(error)
        if not user:
            print(error, file=sys.stderr)  # the cell's own traceback, as Ray relayed it
        raise GridIncomplete(f"{len(failures)} of {len(pending)} cell(s) failed, the first {cell.key}: {reason}; the "
                             f"other cells' results are kept; rerun the same command to retry the failed ones",
                             user=user)
    return experiment.write_tables()


class GridIncomplete(ErcSynthError):
    """Some cells failed: exit 2 when a cell met a user error, 1 when it met a bug (its traceback is printed)."""

    def __init__(self, message: str, user: bool) -> None:
        super().__init__(message)
        self.exit_code = 2 if user else 1


def _cancel(experiment: Experiment, in_flight: dict, say: Log) -> None:
    import ray

    if not in_flight:
        return
    say(f"interrupted: cancelling {len(in_flight)} cell(s) in flight "
        f"({', '.join(cell.key for cell in in_flight.values())}); rerun the same command to resume")
    for ref in in_flight:
        ray.cancel(ref, force=True)
    deadline = time.monotonic() + 30
    waiting = list(in_flight)
    while waiting and time.monotonic() < deadline:
        _, waiting = ray.wait(waiting, num_returns=len(waiting), timeout=1.0)
    for cell in in_flight.values():
        _discard_attempt(experiment, cell)


# --- the command -----------------------------------------------------------------------------------------------

def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def run_grid(experiment: Experiment, ray_address: str | None = None, workers: int | None = None,
             log: Log = print, progress: bool = True) -> dict[str, Path]:
    """``erc-synth experiment``: the grid on Ray; in this process under a data-parallel launcher or without Ray."""
    check_cell_workers(workers)
    given = "ray_address" if ray_address else "workers"  # the setting a refusal below names
    if ranks.world_size() > 1:
        if ray_address or workers is not None:
            raise SettingError(given, "does not apply under torchrun/accelerate launch: every rank trains each "
                                      "cell together, one cell at a time")
        return run_in_process(experiment, log=log, progress=progress)
    if not ray_available():
        if ray_address or workers is not None:
            raise SettingError(given, "needs Ray: pip install 'erc-synth[ray]'")
        log("Ray is not installed (pip install 'erc-synth[ray]'): the cells run one at a time in this process")
        return run_in_process(experiment, log=log, progress=progress)
    address = ray_address or os.environ.get("RAY_ADDRESS") or None
    return run_on_ray(experiment, address, workers, log=log, progress=progress)

