"""The request pool: send a source's requests to a backend concurrently, store every answer durably, retry.

A *source* (``RequestSource``) says what to ask for each index and whether an answer is acceptable; the pool does
the rest, the same way for a generation run (one dialogue per index) and an ``llm`` audit judge (one utterance's
label per index), so both resume, retry and fault-tolerate alike:

* every request's seed is a function of (run seed, index, attempt) chosen by the source, so the text of a
  request never depends on timing;
* a result counts as done only once its record is fsynced in ``records.jsonl`` (writes are group-committed:
  one fsync for every record that finished meanwhile); on resume, an index with an accepted record, or with
  ``max_attempts`` rejected ones, is skipped, and any other index continues at its next attempt;
* a rejected answer is stored with its raw text and reason, then the index is retried with the next attempt,
  up to ``max_attempts``;
* server faults (connection refused or reset, timeouts, 5xx, 429) are retried with exponential backoff and full
  jitter; after ``max_retries`` consecutive faults of one request the pool stops taking work, lets the requests
  in flight finish and be stored, and reports the error so that the caller can say how to resume.

Indices are taken in *groups* (``RequestSource.groups``): a group starts only when the previous one is finished,
and the source chooses its requests when the group starts (generation's steering uses this, see ``engine``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from erc_synth.dataset_scripts.core.errors import RunDirError
from erc_synth.dataset_scripts.run_store import RunRecord, RunStore

from .backends.base import Backend, BackendError, GenerationRequest, GenerationResult

#: Requests kept in flight per HTTP endpoint: enough to keep a continuous-batching server's batch full.
HTTP_CONCURRENCY_PER_ENDPOINT = 16
#: An in-process backend's default requests in flight, in multiples of its batch: the rows beyond the batch wait
#: in the backend for a slot, so a finished row's slot is refilled at once instead of the batch shrinking.
IN_PROCESS_QUEUE_FACTOR = 4


class RequestSource(Protocol):
    """What a pool asks for indices ``0 .. size - 1`` and how it judges each answer."""

    #: Number of indices.
    size: int
    #: Attempts per index before it is given up (``exhausted``); the RUN_DIR's ``max_attempts`` setting.
    max_attempts: int

    def groups(self) -> Sequence[range]:
        """Consecutive index ranges covering ``range(size)``, processed one after the other."""
        ...

    def restore(self, record: RunRecord) -> None:
        """Take note of a stored record before the pool starts (a resumed run)."""
        ...

    def begin_group(self, todo: Sequence[int], group: range, accepted: Mapping[int, Sequence[int]]) -> None:
        """Called when ``group`` starts, with its unfinished indices and the labels accepted so far."""
        ...

    def request(self, index: int, attempt: int) -> GenerationRequest:
        """The request for ``index`` at ``attempt`` (0-based); the same arguments must give the same request."""
        ...

    def assess(self, index: int, attempt: int, request: GenerationRequest,
               result: GenerationResult) -> dict[str, Any]:
        """The ``records.jsonl`` line for one answer; ``status`` "accepted" (with ``emotions``) or "rejected"."""
        ...


def default_concurrency(backend: Backend, endpoints: int) -> int:
    """Requests in flight when the user sets none: four times an in-process backend's batch (one call whose rows
    take the backend's decode slots in turn), or 16 per HTTP endpoint."""
    batch = max(1, int(backend.preferred_batch_size))
    return batch * IN_PROCESS_QUEUE_FACTOR if batch > 1 else HTTP_CONCURRENCY_PER_ENDPOINT * max(1, endpoints)


@dataclass(frozen=True)
class RetryPolicy:
    """Consecutive server faults tolerated per request, and the backoff between them (seconds)."""

    max_retries: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0


class _StopPool(Exception):
    """Raised inside a worker to stop the pool cleanly (faults exhausted, or a non-retryable backend error)."""


@dataclass(order=True)
class _Item:
    index: int
    attempt: int


class _GroupCommit:
    """Appends records with one fsync for everything that finished while the previous fsync ran."""

    def __init__(self, store: RunStore) -> None:
        self._store = store
        self._pending: list[tuple[list[dict[str, Any]], asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def write(self, records: list[dict[str, Any]]) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((records, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await asyncio.to_thread(self._store.append, [r for records, _ in batch for r in records])
            except BaseException as exc:  # the caller of write() sees the failure; nothing counts as done
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for _, future in batch:
                if not future.done():
                    future.set_result(None)


class RequestPool:
    """One pass over a source's unfinished indices: the state shared by the coordinator and the workers.

    ``concurrency`` requests are in flight. An in-process backend (``preferred_batch_size`` > 1) gets all of them
    as one call from one worker, so which rows share a forward pass is a function of the run alone, never of
    timing: CPU and GPU float kernels make a row's logits depend on its batch-mates in the last bits, which can
    flip a sampled token, and the same seed must give the same records byte for byte. A server batches requests
    from everywhere anyway, so it gets one request per worker.
    """

    def __init__(self, source: RequestSource, store: RunStore, backend: Backend, *, concurrency: int,
                 retry: RetryPolicy = RetryPolicy(), progress_bar: Any = None) -> None:
        self.source = source
        self.store = store
        self.backend = backend
        self.retry = retry
        self.concurrency = concurrency
        self.batch_size = concurrency if int(backend.preferred_batch_size) > 1 else 1
        self.queue: asyncio.PriorityQueue[_Item] = asyncio.PriorityQueue()
        self.writer = _GroupCommit(store)
        self.stop = asyncio.Event()
        self.error: str | None = None
        self.accepted: dict[int, list[int]] = {}  # index -> emotions of its accepted record
        self.exhausted: set[int] = set()
        self.next_attempt: dict[int, int] = {}
        self.outstanding = 0
        self.group_done = asyncio.Event()
        self.finished_now = 0
        self.retried = 0
        self.rejected_now = 0
        self._busy: set[asyncio.Task[Any] | None] = set()
        self._bar = progress_bar
        self._load_existing()

    def _load_existing(self) -> None:
        records = self.store.records()
        for record in records:
            index = record.index
            if index >= self.source.size:
                raise RunDirError(f"{self.store.records_path}: record for index {index} beyond num_dialogues")
            self.next_attempt[index] = max(self.next_attempt.get(index, 0), record.attempt + 1)
            self.source.restore(record)
            if record.is_accepted and index not in self.accepted:
                self.accepted[index] = list(record.emotions or ())
        self.exhausted.update(self.store.summary(records).exhausted)

    def finished(self, index: int) -> bool:
        return index in self.accepted or index in self.exhausted

    # -- coordinator -------------------------------------------------------------------------------------
    async def run(self) -> None:
        """Process every unfinished index; returns when all are finished or the pool stopped (``error``)."""
        self._start_bar(len(self.accepted) + len(self.exhausted))
        workers = [asyncio.create_task(self._worker()) for _ in range(-(-self.concurrency // self.batch_size))]
        clean = False
        try:
            for group in self.source.groups():
                todo = [i for i in group if not self.finished(i)]
                if not todo:
                    continue
                self.source.begin_group(todo, group, self.accepted)
                self.group_done.clear()
                self.outstanding = len(todo)
                for index in todo:
                    self.queue.put_nowait(_Item(index, self.next_attempt.get(index, 0)))
                waiters = {asyncio.create_task(self.stop.wait()), asyncio.create_task(self.group_done.wait())}
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                for waiter in waiters:
                    waiter.cancel()
                if self.stop.is_set():
                    break
            clean = True
        finally:
            self.stop.set()
            for worker in workers:
                if not clean or worker not in self._busy:  # let requests in flight finish and be stored
                    worker.cancel()
            results = await asyncio.gather(*workers, return_exceptions=True)
            if self._bar is not None:
                self._bar.close()
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result

    # -- workers -----------------------------------------------------------------------------------------
    async def _take_batch(self) -> list[_Item]:
        items = [await self.queue.get()]
        while len(items) < self.batch_size and not self.queue.empty():
            items.append(self.queue.get_nowait())
        return items

    async def _worker(self) -> None:
        me = asyncio.current_task()
        while not self.stop.is_set():
            items = await self._take_batch()
            if self.stop.is_set():
                return
            self._busy.add(me)
            try:
                await self._process(items)
            except _StopPool as exc:
                self.error = self.error or str(exc)
                self.stop.set()
                return
            except BaseException:
                self.stop.set()  # a bug or a failed write: stop everything, the coordinator re-raises
                raise
            finally:
                self._busy.discard(me)

    async def _process(self, items: list[_Item]) -> None:
        requests = [self.source.request(item.index, item.attempt) for item in items]
        if self.batch_size > 1 and hasattr(self.backend, "stream_batch"):
            await self._process_streamed(items, requests)
            return
        results = await self._generate_with_retries(requests)
        records = [self.source.assess(item.index, item.attempt, request, result)
                   for item, request, result in zip(items, requests, results, strict=True)]
        await self.writer.write(records)
        for item, record in zip(items, records, strict=True):
            self._settle(item, record)

    async def _process_streamed(self, items: list[_Item], requests: list[GenerationRequest]) -> None:
        """Store and account for each answer the moment the backend finishes it, not when the call returns.

        The progress bar then moves row by row, its rate is the rate of finished rows, and a killed process
        loses only the rows still decoding. The next call still starts only when this one is done, so which
        rows share a forward pass stays a function of the run.
        """
        async with contextlib.aclosing(self._stream_with_retries(requests)) as answers:
            async for position, result in answers:
                item, request = items[position], requests[position]
                record = self.source.assess(item.index, item.attempt, request, result)
                await self.writer.write([record])
                self._settle(item, record)

    async def _stream_with_retries(self, requests: list[GenerationRequest],
                                   ) -> AsyncIterator[tuple[int, GenerationResult]]:
        """``(position, result)`` as the backend finishes them; a server fault retries the unfinished ones."""
        waiting = list(range(len(requests)))
        done: set[int] = set()
        for failures in range(self.retry.max_retries + 1):
            try:
                stream = self.backend.stream_batch([requests[p] for p in waiting])
                async with contextlib.aclosing(stream):
                    async for offset, result in stream:
                        done.add(waiting[offset])
                        yield waiting[offset], result
                return
            except BackendError as exc:
                waiting = [p for p in waiting if p not in done]
                await self._after_fault(exc, failures)
        raise AssertionError("unreachable")

    async def _after_fault(self, exc: BackendError, failures: int) -> None:
        """Stop on a fault that retrying cannot fix or on the last allowed one; else back off before retrying."""
        if not exc.retryable:
            raise _StopPool(f"backend error that retrying cannot fix: {exc}") from exc
        if failures == self.retry.max_retries or self.stop.is_set():
            raise _StopPool(f"gave up after {failures + 1} consecutive server faults; last: {exc}") from exc
        self.retried += 1
        self._update_bar(0)
        ceiling = min(self.retry.max_delay, self.retry.base_delay * 2**failures)
        delay = random.uniform(0, ceiling)  # full jitter: affects timing only, never the text
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), timeout=delay)

    def _settle(self, item: _Item, record: Mapping[str, Any]) -> None:
        """Account for one durable record: finish the index, or queue its next attempt."""
        self.finished_now += 1
        self.next_attempt[item.index] = item.attempt + 1
        if record["status"] != "accepted":
            self.rejected_now += 1
            if item.attempt + 1 < self.source.max_attempts:
                self.queue.put_nowait(_Item(item.index, item.attempt + 1))
                self._update_bar(0)
                return
            self.exhausted.add(item.index)
        else:
            self.accepted[item.index] = list(record["emotions"])
        self._update_bar(1)
        self.outstanding -= 1
        if self.outstanding == 0:
            self.group_done.set()

    def _start_bar(self, resumed: int) -> None:
        """Count the indices a resumed run already has as the bar's start, not as progress of this run, so
        the bar's rate (and so its estimate) is that of the rows finished now."""
        if self._bar is None:
            return
        if resumed and hasattr(self._bar, "initial"):
            self._bar.initial = self._bar.n = resumed
        elif resumed:
            self._bar.update(resumed)
        self._update_bar(0)

    def _update_bar(self, finished: int) -> None:
        if self._bar is None:
            return
        # the counts first: ``update`` redraws the bar, ``set_postfix(refresh=False)`` does not
        self._bar.set_postfix(accepted=len(self.accepted), rejected=self.rejected_now, retried=self.retried,
                              refresh=False)
        if finished:
            self._bar.update(finished)

    async def _generate_with_retries(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        for failures in range(self.retry.max_retries + 1):
            try:
                return await self.backend.generate_batch(requests)
            except BackendError as exc:
                await self._after_fault(exc, failures)
        raise AssertionError("unreachable")
