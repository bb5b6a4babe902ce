"""Dynamic batching: merge concurrent requests for one model into calls of a plain predict function.

Knows nothing of gRPC, HTTP or ONNX. The rule: when the model is free and a request waits, a batch takes every
waiting request in arrival order, up to max_batch_size rows, once as many requests wait as the previous batch
held (or the batch is full, or its oldest request has waited max_queue_delay). A lone caller therefore never
waits, and callers that come in groups are served in groups: each model call then answers many requests, which
matters because a call costs far more inside a busy server than its compute (bench/RESULTS.md).

Where a batch runs is fixed by its size: batches of at most `inline_rows` rows run on the event loop (the
registry sets that from the model's measured cost, so they take microseconds: cheaper than two thread hand-offs),
larger ones on the model's own thread, so the loop keeps accepting requests, which queue for the next batch.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from zoo.server.errors import InvalidInput, ModelNotReady, Overloaded

Outputs = dict[str, np.ndarray]
Predict = Callable[[np.ndarray], Outputs]
CHUNKS_IN_FLIGHT = 2  # a request above max_batch_size keeps this many chunks queued or running at a time


@dataclass
class BatchReport:
    """What one executed batch looked like, for metrics and statistics."""

    rows: int
    requests: int
    queue_s: list[float]  # per request: enqueue -> start of its batch
    compute_s: float
    ok: bool


class TimedFuture(asyncio.Future):
    """The future of a queued item; once answered, `batch` holds (started, done, rows) of the batch that answered it
    (time.perf_counter()), for a trace's queue and model spans."""

    batch: tuple[float, float, int] | None = None


@dataclass(eq=False)
class _Item:
    rows: np.ndarray
    future: TimedFuture
    enqueued: float


class Batcher:
    """A queue and one worker task turning queued requests into batches of at most max_batch_size rows."""

    def __init__(
        self,
        predict: Predict,
        *,
        max_batch_size: int = 1024,
        max_queue_delay_us: int = 0,
        max_queue_rows: int = 65536,
        inline_rows: int = 0,
        on_batch: Callable[[BatchReport], None] | None = None,
        name: str = "model",
    ):
        self.predict = predict  # public: tests wrap it with gates
        self.max_batch_size = max_batch_size
        self.max_queue_delay_s = max_queue_delay_us / 1e6
        self.max_queue_rows = max(max_queue_rows, max_batch_size)
        self.inline_rows = inline_rows
        self._on_batch = on_batch
        self._name = name
        # One thread per model: onnxruntime parallelises inside a call, and one batch at a time keeps order simple.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"batch-{name}")
        self._queue: deque[_Item] = deque()
        self._queued_rows = 0
        self._expected = 1  # requests the last batch held: how many the next one waits for
        self._closed = False
        self._stopped = False  # close() is past its wait: not even an admitted request's chunk is queued now
        # asyncio Events bind to the loop that first awaits them, so they can be made here, outside it.
        self._arrived = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._space = asyncio.Event()  # set whenever the worker takes rows off the queue
        self._filled = asyncio.Event()  # set when the waiting batch has its company (or is full)
        self._worker: asyncio.Task | None = None
        self._chunked = 0  # requests above max_batch_size still streaming their chunks: close() waits for them
        self._no_chunked = asyncio.Event()
        self._no_chunked.set()

    @property
    def queued_rows(self) -> int:
        """Rows waiting in the queue (not yet running)."""
        return self._queued_rows

    def enqueue(self, rows: np.ndarray) -> asyncio.Future:
        """Queue `rows` now (synchronously: nothing runs between a registry lookup and this) and return the future
        of their outputs; a request above max_batch_size becomes a task streaming its chunks through the queue."""
        n = int(rows.shape[0])
        if n <= self.max_batch_size:
            return self._enqueue(rows, admit=n)
        if self._closed:
            raise ModelNotReady(f"model {self._name} is shutting down; retry")
        task = asyncio.ensure_future(self._submit_chunks(rows))
        self._chunked += 1
        self._no_chunked.clear()
        task.add_done_callback(self._chunked_done)
        return task

    def _chunked_done(self, _task: asyncio.Future) -> None:
        self._chunked -= 1
        if not self._chunked:
            self._no_chunked.set()

    async def _submit_chunks(self, rows: np.ndarray) -> Outputs:
        """A request above max_batch_size, streamed through the queue a few chunks at a time and reassembled."""
        n, size = int(rows.shape[0]), self.max_batch_size
        starts = range(0, n, size)
        pending: deque[asyncio.Future] = deque()
        parts: list[Outputs] = []
        try:
            for i, start in enumerate(starts):
                if i == 0:  # admission is decided once, for the whole request, like any other
                    pending.append(self._enqueue(rows[start : start + size], admit=min(n, CHUNKS_IN_FLIGHT * size)))
                    continue
                if len(pending) >= CHUNKS_IN_FLIGHT:
                    parts.append(await pending.popleft())
                await self._wait_for_space(min(size, n - start))
                # A later chunk belongs to a request already admitted: queued even after close() began.
                pending.append(self._enqueue(rows[start : start + size], admit=0, admitted=True))
            while pending:
                parts.append(await pending.popleft())
        except BaseException:
            for f in pending:
                f.cancel()
            raise
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    async def _wait_for_space(self, rows: int) -> None:
        """Wait until `rows` more fit the queue (a streamed request never pushes others into RESOURCE_EXHAUSTED)."""
        while not self._closed and self._queued_rows + rows > self.max_queue_rows:
            self._space.clear()
            await self._space.wait()

    def _enqueue(self, rows: np.ndarray, *, admit: int, admitted: bool = False) -> asyncio.Future:
        """Queue one item; `admit` rows must fit the queue or the request is refused as Overloaded."""
        if self._stopped or (self._closed and not admitted):
            raise ModelNotReady(f"model {self._name} is shutting down; retry")
        if len(rows) == 0:
            raise InvalidInput("the request holds no rows")
        if self._queued_rows + admit > self.max_queue_rows:
            raise Overloaded(f"model {self._name} is overloaded ({self._queued_rows} rows queued); retry later")
        if self._worker is None:
            self._start()
        future = TimedFuture(loop=asyncio.get_running_loop())
        self._queue.append(_Item(rows, future, time.perf_counter()))
        self._queued_rows += len(rows)
        self._idle.clear()
        self._arrived.set()
        if len(self._queue) >= self._expected or self._queued_rows >= self.max_batch_size:
            self._filled.set()  # one wake-up per batch, not one per arrival
        return future

    def _start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._run(), name=f"batcher-{self._name}")

    def _take_batch(self) -> list[_Item]:
        """Waiting items in arrival order, up to max_batch_size rows (the first is always taken)."""
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

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._idle.set()
                self._arrived.clear()
                await self._arrived.wait()
                continue
            if self.max_queue_delay_s > 0:
                await self._wait_to_fill()
            batch = self._take_batch()
            self._space.set()
            if batch:
                self._expected = len(batch)
                await self._execute(loop, batch)

    async def _wait_to_fill(self) -> None:
        """Wait until as many requests wait as the last batch held, the batch is full, or the oldest is max_queue_delay old."""
        if self._closed or self._queued_rows >= self.max_batch_size or len(self._queue) >= self._expected:
            return
        remaining = self._queue[0].enqueued + self.max_queue_delay_s - time.perf_counter()
        if remaining <= 0:
            return
        # One timer and one event per batch (asyncio.wait_for would make a task per wait).
        self._filled.clear()
        timer = asyncio.get_running_loop().call_later(remaining, self._filled.set)
        try:
            await self._filled.wait()
        finally:
            timer.cancel()

    async def _execute(self, loop: asyncio.AbstractEventLoop, batch: list[_Item]) -> None:
        """Run one batch and hand each caller exactly its own rows; a failure reaches every caller of this batch."""
        started = time.perf_counter()
        x = batch[0].rows if len(batch) == 1 else np.concatenate([i.rows for i in batch])
        try:
            out = self._call(x) if len(x) <= self.inline_rows else await loop.run_in_executor(self._executor, self._call, x)
            ok = True
        except Exception as e:
            ok = False
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(e)
        except asyncio.CancelledError:  # close() gave up on a batch stuck in the model: its callers must not hang
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(ModelNotReady(f"model {self._name} shut down while this request ran"))
            raise
        if ok:
            done = time.perf_counter()
            offset = 0
            for item in batch:
                n = len(item.rows)
                item.future.batch = (started, done, len(x))
                if not item.future.done():
                    item.future.set_result(out if len(batch) == 1 else {k: v[offset : offset + n] for k, v in out.items()})
                offset += n
        if self._on_batch is not None:
            report = BatchReport(len(x), len(batch), [started - i.enqueued for i in batch], time.perf_counter() - started, ok)
            try:
                self._on_batch(report)
            except Exception:  # metrics must never break serving
                pass

    def _call(self, x: np.ndarray) -> Outputs:
        out = self.predict(x)
        for k, v in out.items():
            if len(v) != len(x):  # slicing by offsets would hand callers someone else's rows
                raise RuntimeError(f"predict returned {len(v)} rows of {k!r} for {len(x)} inputs")
        return out

    async def _settled(self) -> None:
        """Wait until nothing is queued or running and no split request has chunks still to send."""
        while not (self._idle.is_set() and self._no_chunked.is_set()):
            await self._no_chunked.wait()
            await self._idle.wait()

    async def close(self, timeout: float | None = None) -> None:
        """Refuse new requests, let queued and running ones finish (up to timeout), then stop the worker."""
        self._closed = True
        if self._worker is not None:
            self._arrived.set()
            self._space.set()
            self._filled.set()
            try:
                await asyncio.wait_for(self._settled(), timeout)
            except TimeoutError:
                pass
            self._stopped = True
            self._worker.cancel()
            try:
                await self._worker
            except (asyncio.CancelledError, Exception):
                pass
        self._stopped = True
        for item in self._queue:
            if not item.future.done():
                item.future.set_exception(ModelNotReady(f"model {self._name} shut down before this request ran"))
        self._queue.clear()
        self._queued_rows = 0
        self._executor.shutdown(wait=False)
