"""A preset's generation runs side by side, one worker process per core, behind one combined progress bar.

Why processes and not more threads per forward pass: decoding a 135M model is a stream of small matrix products
(16 rows by 576 or 1536 columns) and per-step Python work (sampling, grammar masks); a second intra-op thread
hardly shortens a step, while a second process decoding another dataset doubles the work done per second
(``benchmarks/bench_workers.py`` measures both). Each run is independent (its own RUN_DIR, seed and requests),
and each worker decodes with the thread count the preset pins, so a run's records are the same bytes whichever
worker ran it, and the same as in a sequential run.

Why spawn: a forked child would inherit the parent's OpenMP and tokenizer threads half-initialised; a spawned
one imports torch afresh. Each worker loads the model once and keeps it for every run it is given.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

from erc_synth.dataset_scripts.core.errors import SettingError

#: Backends whose decoding runs in this process, so that more processes use more cores. Servers batch
#: requests themselves; vLLM holds a GPU (and a second engine would compete for it).
PARALLEL_BACKENDS: tuple[str, ...] = ("transformers",)
#: Most generation processes a run may ask for: each holds its own copy of the model, so more would not fit a
#: large machine's memory for any model worth running (and at most one per dataset is ever started).
MAX_GENERATION_WORKERS = 256


def machine_cores() -> int:
    """The cores this process may run on (its affinity mask, which containers and ``taskset`` narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def check_workers(requested: int | None) -> None:
    """Refuse a worker count outside [1, ``MAX_GENERATION_WORKERS``] (None: the default) before anything starts."""
    if requested is None:
        return
    if isinstance(requested, bool) or not isinstance(requested, int) or not 1 <= requested <= MAX_GENERATION_WORKERS:
        raise SettingError("workers", f"must be an integer in [1, {MAX_GENERATION_WORKERS}], got {requested!r}")


def applied_workers(requested: int | None, backend: str, datasets: int) -> int:
    """The worker processes a preset's generation really gets: ``requested`` (default: every core), at most one
    per dataset, and 1 for backends that do not decode in this process."""
    check_workers(requested)
    if backend not in PARALLEL_BACKENDS:
        return 1
    return max(1, min(requested or machine_cores(), datasets))


@dataclass(frozen=True)
class RunOutcome:
    """What the parent needs of one finished ``generate`` call (a ``RunReport`` without the unpicklable parts)."""

    requested: int
    accepted: int
    finished_now: int
    rejected_by_reason: dict[str, int]
    status: str
    error: str | None
    summary: str


class _BarProxy:
    """The progress bar a worker's request pool drives: it forwards each change to the parent's bar."""

    def __init__(self, run: str, events: Any) -> None:
        self._run = run
        self._events = events
        self._initial = 0
        self.n = 0

    @property
    def initial(self) -> int:
        return self._initial

    @initial.setter
    def initial(self, resumed: int) -> None:
        """Indices a resumed run already had: the combined bar's start, not progress made now."""
        self._events.put(("resumed", resumed - self._initial))
        self._initial = resumed

    def update(self, finished: int) -> None:
        self.n += finished
        self._events.put(("update", finished))

    def set_postfix(self, refresh: bool = False, **counts: int) -> None:
        self._events.put(("postfix", (self._run, counts)))

    def close(self) -> None:
        """The combined bar outlives every run; nothing to close here."""


_worker_state: dict[str, Any] = {}


def _init_worker(events: Any, threads: int) -> None:
    import torch
    from transformers.utils import logging as transformers_logging

    torch.set_num_threads(threads)
    transformers_logging.disable_progress_bar()  # every worker's weight-loading bar would cut into the combined one
    _worker_state["events"] = events


def _generate_in_worker(config: Any, progress: bool) -> RunOutcome:
    """Generate one run in this worker, loading the backend on the worker's first run and keeping it."""
    from erc_synth.generation.backends.factory import create_backend
    from erc_synth.generation.engine import generate

    if "backend" not in _worker_state:
        _worker_state["backend"] = create_backend(config)
    bar = _BarProxy(str(config.out), _worker_state["events"]) if progress else False
    report = generate(config, backend=_worker_state["backend"], progress=bar)
    return RunOutcome(requested=report.requested, accepted=report.accepted, finished_now=report.finished_now,
                      rejected_by_reason=dict(sorted(report.rejected_by_reason.items())), status=report.status,
                      error=report.error, summary=report.summary())


class _CombinedBar:
    """One tqdm bar for every run, fed by a parent thread that drains the workers' events.

    Its postfix sums each run's latest counts (a run's pool reports its own totals); ``smoothing=0``
    makes the estimate the mean rate of dialogues finished so far, as in a single run's bar.
    """

    def __init__(self, total: int, workers: int, events: Any, enabled: bool) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, unit="dlg", desc=f"generate ({workers} workers)", disable=not enabled,
                        dynamic_ncols=True, smoothing=0)
        self._events = events
        self._counts: dict[str, dict[str, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, name="progress", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while True:
            try:
                kind, value = self._events.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            except (EOFError, OSError):  # the manager has gone
                return
            if kind == "resumed":
                self.bar.initial += value
                self.bar.n += value
                self.bar.refresh()
            elif kind == "update":
                self.bar.update(value)
            else:
                run, counts = value
                self._counts[run] = counts
                self.bar.set_postfix(refresh=False, **{key: sum(c.get(key, 0) for c in self._counts.values())
                                                       for key in ("accepted", "rejected", "retried")})

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.bar.close()


def generate_side_by_side(runs: Sequence[tuple[str, Any]], workers: int, threads: int, progress: bool,
                          log: Callable[[str], None]) -> dict[str, RunOutcome | BaseException]:
    """Generate ``runs`` (name, ``GenerationConfig``) in ``workers`` spawned processes of ``threads`` torch
    threads each; returns each run's outcome, or the exception it raised, by name.

    Runs are handed out in order and each summary is logged as its run finishes. After a failed run, runs not
    yet started are not started (the others finish and are stored, so a rerun resumes them).
    """
    context = multiprocessing.get_context("spawn")
    manager = context.Manager()
    events = manager.Queue()
    bar = _CombinedBar(sum(config.num_dialogues for _, config in runs), workers, events, progress)
    outcomes: dict[str, RunOutcome | BaseException] = {}
    try:
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                 initargs=(events, threads)) as pool:
            futures = {pool.submit(_generate_in_worker, config, progress): name for name, config in runs}
            for future in as_completed(futures):
                name = futures[future]
                try:
                    outcomes[name] = outcome = future.result()
                except CancelledError:
                    continue
                except Exception as error:  # handed back to the caller, who reports it in the preset's order
                    outcomes[name] = error
                    failed = True
                else:
                    (bar.bar.write if progress else log)(outcome.summary)
                    failed = outcome.status == "stopped" or outcome.accepted == 0
                if failed:
                    for other in futures:
                        other.cancel()
    finally:
        bar.close()
        manager.shutdown()
    return outcomes
