"""Dynamic batching: merge concurrent requests for one model into one call of a plain predict function.

Knows nothing of gRPC or ONNX. One worker task per batcher takes queued requests, concatenates
their rows (capped by max_batch_size), runs predict off the event loop on the batcher's own
single thread, and hands each caller back exactly its own rows.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from zoo.server.errors import InvalidInput, ModelNotReady, Overloaded

Outputs = dict[str, np.ndarray]
LONE_STREAK = 8  # callers in a row arriving alone before small batches run on the loop itself
Predict = Callable[[np.ndarray], Outputs]


@dataclass
class BatchReport:
    """What one executed batch looked like, for metrics and statistics."""

    rows: int
    requests: int
    queue_s: list[float]  # per request: enqueue -> start of its batch
    compute_s: float
    ok: bool


@dataclass
class _Item:
    rows: np.ndarray
    future: asyncio.Future
    enqueued: float = field(default_factory=time.perf_counter)


class Batcher:
    """Queue + worker merging requests into batches of at most max_batch_size rows."""

    def __init__(
        self,
        predict: Predict,
        *,
        max_batch_size: int = 1024,
        max_queue_delay_us: int = 500,
        max_queue_rows: int = 65536,
        on_batch: Callable[[BatchReport], None] | None = None,
        name: str = "model",
        inline_elements: int = 0,  # batches of at most this many values run on the loop itself, not the executor
    ):
        self._predict = predict
        self.max_batch_size = max_batch_size
        self.max_queue_delay_s = max_queue_delay_us / 1e6
        self.max_queue_rows = max_queue_rows
        self._on_batch = on_batch
        self._name = name
        self.inline_elements = inline_elements
        # One thread per model: onnxruntime already parallelises inside a call, and one
        # in-flight batch keeps per-model ordering simple.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"batch-{name}")
        self._queue: deque[_Item] = deque()
        self._queued_rows = 0
        self._wakeup: asyncio.Event | None = None  # made inside the running loop, on first use
        self._worker: asyncio.Task | None = None
        self._closed = False
        self._busy = False
        # Requests merged into the last batch: the concurrency we expect to see again. At 1,
        # a lone request is flushed at once instead of waiting max_queue_delay for company.
        self._expected_requests = 1
        self._outstanding = 0  # submit() calls not yet returned
        self._lone_arrivals = 0  # consecutive submit() calls that found no other caller in flight

    @property
    def queued_rows(self) -> int:
        """Rows waiting in the queue (not yet running)."""
        return self._queued_rows

    async def submit(self, rows: np.ndarray) -> Outputs:
        """Predict `rows` ([N, F] already validated); returns this caller's [N, ...] outputs."""
        futures = self._enqueue_all(rows)  # synchronous: nothing runs between a registry lookup and the enqueue
        # Callers arriving while none is in flight, in a row: concurrency 1. One overlap resets the streak.
        self._lone_arrivals = self._lone_arrivals + 1 if self._outstanding == 0 else 0
        self._outstanding += 1
        try:
            return await self._gather(futures)
        finally:
            self._outstanding -= 1

    def _enqueue_all(self, rows: np.ndarray) -> list[asyncio.Future]:
        if self._closed:
            raise ModelNotReady(f"model {self._name} is shutting down; retry")
        n = int(rows.shape[0])
        if n == 0:
            raise InvalidInput("the request holds no rows")
        if n > self.max_queue_rows:
            raise InvalidInput(f"request of {n} rows exceeds this model's queue of {self.max_queue_rows} rows: split it")
        if self._queued_rows + n > self.max_queue_rows:
            raise Overloaded(f"model {self._name} is overloaded ({self._queued_rows} rows queued); retry later")
        self._ensure_worker()
        loop = asyncio.get_running_loop()
        futures = []
        # A request above the cap is split into cap-sized chunks and reassembled in _gather.
        for start in range(0, n, self.max_batch_size):
            chunk = rows[start : start + self.max_batch_size]
            fut = loop.create_future()
            self._queue.append(_Item(chunk, fut))
            futures.append(fut)
        self._queued_rows += n
        self._wakeup.set()
        return futures

    async def _gather(self, futures: list[asyncio.Future]) -> Outputs:
        try:
            parts = [await f for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()  # the worker skips cancelled items
            raise
        if len(parts) == 1:
            return parts[0]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def _ensure_worker(self) -> None:
        if self._worker is None:
            self._wakeup = asyncio.Event()
            self._worker = asyncio.get_running_loop().create_task(self._run(), name=f"batcher-{self._name}")

    def _take_batch(self) -> list[_Item]:
        batch: list[_Item] = []
        total = 0
        while self._queue:
            item = self._queue[0]
            if item.future.done():  # cancelled by its caller: drop it
                self._queue.popleft()
                self._queued_rows -= len(item.rows)
                continue
            if batch and total + len(item.rows) > self.max_batch_size:
                break
            self._queue.popleft()
            self._queued_rows -= len(item.rows)
            batch.append(item)
            total += len(item.rows)
        return batch

    def _live_requests(self) -> tuple[int, int]:
        alive = [i for i in self._queue if not i.future.done()]
        return len(alive), sum(len(i.rows) for i in alive)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._wait_for_company()
            batch = self._take_batch()
            if not batch:
                continue
            self._expected_requests = len(batch)
            started = time.perf_counter()
            x = batch[0].rows if len(batch) == 1 else np.concatenate([i.rows for i in batch])
            self._busy = True
            try:
                if x.size <= self.inline_elements and self._lone_arrivals >= LONE_STREAK:
                    # Callers come one at a time (concurrency 1): a small batch runs in tens of microseconds,
                    # cheaper on the loop than the two thread hand-offs of the executor. While callers
                    # overlap the executor is worth its cost: the loop keeps accepting requests while the
                    # model runs, which is what lets the next batch merge them.
                    out = self._call(x)
                else:
                    out = await loop.run_in_executor(self._executor, self._call, x)
                ok = True
            except Exception as e:  # every waiting caller of this batch gets the error
                ok = False
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(e)
            finally:
                self._busy = False
            if ok:
                offset = 0
                for item in batch:
                    n = len(item.rows)
                    if not item.future.done():
                        item.future.set_result({k: v[offset : offset + n] for k, v in out.items()})
                    offset += n
            if self._on_batch is not None:
                report = BatchReport(len(x), len(batch), [started - i.enqueued for i in batch], time.perf_counter() - started, ok)
                try:
                    self._on_batch(report)
                except Exception:  # metrics must never break serving
                    pass

    async def _wait_for_company(self) -> None:
        """Wait up to max_queue_delay for the requests we expect, unless the batch is already full."""
        if self.max_queue_delay_s <= 0:
            return
        deadline = self._queue[0].enqueued + self.max_queue_delay_s
        while True:
            n, rows = self._live_requests()
            if n >= self._expected_requests or rows >= self.max_batch_size or self._closed:
                return
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except asyncio.TimeoutError:
                return

    def _call(self, x: np.ndarray) -> Outputs:
        out = self._predict(x)
        for k, v in out.items():
            if len(v) != len(x):  # slicing by offsets would hand callers someone else's rows
                raise RuntimeError(f"predict returned {len(v)} rows of {k!r} for {len(x)} inputs")
        return out

    async def close(self, timeout: float | None = None) -> None:
        """Refuse new requests, let queued and running ones finish (up to timeout), then stop the worker."""
        self._closed = True
        if self._wakeup is not None:
            self._wakeup.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        while (self._queue or self._busy) and (deadline is None or time.monotonic() < deadline):
            await asyncio.sleep(0.005)
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except (asyncio.CancelledError, Exception):
                pass
        for item in self._queue:
            if not item.future.done():
                item.future.set_exception(ModelNotReady(f"model {self._name} shut down before this request ran"))
        self._queue.clear()
        self._executor.shutdown(wait=False)
