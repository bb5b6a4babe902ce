"""The batcher on a plain numpy predict function: merge, split, cap, queue bound, latency, failures."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from zoo.server.batcher import Batcher, BatchReport
from zoo.server.errors import InvalidInput, Overloaded


class Recorder:
    """predict = row sums and row ids, remembering each call's batch size (optionally slow or gated)."""

    def __init__(self, delay_s: float = 0.0, gate: threading.Event | None = None):
        self.calls: list[int] = []
        self.delay_s = delay_s
        self.gate = gate

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        if self.gate is not None:
            self.gate.wait(5)
        if self.delay_s:
            time.sleep(self.delay_s)
        self.calls.append(len(x))
        return {"sum": x.sum(axis=1), "id": x[:, 0].astype(np.int64)}


def rows(start: int, n: int) -> np.ndarray:
    """n rows whose first column is a unique id."""
    ids = np.arange(start, start + n, dtype=np.float32)
    return np.stack([ids, np.ones_like(ids)], axis=1)


def test_concurrent_requests_merge_and_each_caller_gets_its_own_rows():
    async def main():
        predict = Recorder(delay_s=0.02)
        reports: list[BatchReport] = []
        b = Batcher(predict, max_batch_size=1024, max_queue_delay_us=20000, on_batch=reports.append)
        # The first call runs alone (nothing else waits); the next 20 queue behind it and merge.
        results = await asyncio.gather(*(b.submit(rows(100 * i, i + 1)) for i in range(20)))
        await b.close()
        return predict, reports, results

    predict, reports, results = asyncio.run(main())
    for i, out in enumerate(results):
        np.testing.assert_array_equal(out["id"], np.arange(100 * i, 100 * i + i + 1))
        np.testing.assert_allclose(out["sum"], np.arange(100 * i, 100 * i + i + 1) + 1)
    assert sum(predict.calls) == sum(range(1, 21))
    assert max(predict.calls) > 1 and len(predict.calls) < 20  # merged
    assert sum(r.requests for r in reports) == 20 and all(r.ok for r in reports)


def test_batches_are_capped_by_max_batch_size():
    async def main():
        predict = Recorder(delay_s=0.01)
        b = Batcher(predict, max_batch_size=8, max_queue_delay_us=10000)
        results = await asyncio.gather(*(b.submit(rows(10 * i, 3)) for i in range(10)))
        await b.close()
        return predict, results

    predict, results = asyncio.run(main())
    assert max(predict.calls) <= 8
    assert sum(predict.calls) == 30
    for i, out in enumerate(results):
        np.testing.assert_array_equal(out["id"], np.arange(10 * i, 10 * i + 3))


def test_request_larger_than_cap_is_split_and_reassembled():
    async def main():
        predict = Recorder()
        b = Batcher(predict, max_batch_size=4, max_queue_delay_us=0)
        out = await b.submit(rows(0, 10))
        await b.close()
        return predict, out

    predict, out = asyncio.run(main())
    assert predict.calls == [4, 4, 2]
    np.testing.assert_array_equal(out["id"], np.arange(10))


def test_full_queue_raises_overloaded_and_the_queued_still_succeed():
    async def main():
        gate = threading.Event()
        b = Batcher(Recorder(gate=gate), max_batch_size=4, max_queue_delay_us=0, max_queue_rows=8)
        first = asyncio.ensure_future(b.submit(rows(0, 4)))
        await asyncio.sleep(0.05)  # the first batch is now running (held by the gate)
        queued = [asyncio.ensure_future(b.submit(rows(10, 4))), asyncio.ensure_future(b.submit(rows(20, 4)))]
        await asyncio.sleep(0)
        with pytest.raises(Overloaded):
            await b.submit(rows(30, 1))
        with pytest.raises(InvalidInput):
            await b.submit(rows(30, 9))  # can never fit: a client error, not back-pressure
        gate.set()
        done = await asyncio.gather(first, *queued)
        await b.close()
        return done

    done = asyncio.run(main())
    assert [list(d["id"]) for d in done] == [[0, 1, 2, 3], [10, 11, 12, 13], [20, 21, 22, 23]]


def test_lone_request_is_flushed_at_once_not_after_the_queue_delay():
    async def main():
        b = Batcher(Recorder(), max_batch_size=1024, max_queue_delay_us=500_000)  # 0.5 s delay
        await b.submit(rows(0, 1))  # warm the worker thread
        started = time.perf_counter()
        for i in range(5):
            await b.submit(rows(i, 1))
        elapsed = time.perf_counter() - started
        await b.close()
        return elapsed

    assert asyncio.run(main()) < 0.25  # five sequential requests, none waited 0.5 s


def test_batch_failure_reaches_every_caller_of_that_batch_and_not_later_ones():
    class Flaky(Recorder):
        def __call__(self, x):
            if (x[:, 0] < 0).any():
                time.sleep(0.02)
                raise ValueError("boom")
            return super().__call__(x)

    async def main():
        b = Batcher(Flaky(), max_batch_size=1024, max_queue_delay_us=20000)
        bad = asyncio.ensure_future(b.submit(-rows(1, 1)))
        await asyncio.sleep(0.005)
        # These queue while the bad batch runs and merge into a later, good batch.
        results = await asyncio.gather(bad, *(b.submit(rows(10 * i, 2)) for i in range(3)), return_exceptions=True)
        again = await b.submit(rows(50, 1))
        await b.close()
        return results, again

    results, again = asyncio.run(main())
    assert isinstance(results[0], ValueError)
    assert all(isinstance(r, dict) for r in results[1:])
    assert list(again["id"]) == [50]

    async def together():
        b = Batcher(Flaky(), max_batch_size=1024, max_queue_delay_us=50000)
        gate_batch = await asyncio.gather(b.submit(rows(1, 1)), b.submit(-rows(2, 1)), b.submit(rows(3, 1)), return_exceptions=True)
        await b.close()
        return gate_batch

    merged = asyncio.run(together())
    # Whatever shared the failing call got its error; nothing hangs.
    assert any(isinstance(r, ValueError) for r in merged)


def test_wrong_row_count_from_predict_fails_the_batch_instead_of_mixing_rows():
    async def main():
        b = Batcher(lambda x: {"y": x[:-1]}, max_batch_size=8, max_queue_delay_us=0)
        with pytest.raises(RuntimeError, match="rows"):
            await b.submit(rows(0, 3))
        await b.close()

    asyncio.run(main())


def test_cancelled_caller_does_not_break_the_others():
    async def main():
        gate = threading.Event()
        b = Batcher(Recorder(gate=gate), max_batch_size=64, max_queue_delay_us=0)
        first = asyncio.ensure_future(b.submit(rows(0, 1)))
        await asyncio.sleep(0.02)
        doomed = asyncio.ensure_future(b.submit(rows(10, 1)))
        kept = asyncio.ensure_future(b.submit(rows(20, 1)))
        await asyncio.sleep(0)
        doomed.cancel()
        gate.set()
        out = await asyncio.gather(first, kept)
        await b.close()
        return out

    first, kept = asyncio.run(main())
    assert list(first["id"]) == [0] and list(kept["id"]) == [20]


def test_closed_batcher_refuses_new_requests():
    from zoo.server.errors import ModelNotReady

    async def main():
        b = Batcher(Recorder(), max_batch_size=4)
        await b.submit(rows(0, 1))
        await b.close()
        with pytest.raises(ModelNotReady):
            await b.submit(rows(0, 1))

    asyncio.run(main())


def test_lone_small_requests_run_on_the_loop_others_in_the_executor():
    from zoo.server.batcher import LONE_STREAK

    calls: list[tuple[str, int, int]] = []  # (phase, rows, thread)
    phase = ["warm-up"]

    def predict(x):
        calls.append((phase[0], len(x), threading.get_ident()))
        return {"id": x[:, 0].astype(np.int64)}

    async def main():
        b = Batcher(predict, max_batch_size=64, max_queue_delay_us=2000, inline_elements=20)
        for i in range(LONE_STREAK + 3):  # one caller at a time: after the streak, on the loop
            phase[0] = "lone" if i + 1 >= LONE_STREAK else "warm-up"  # the streak counts this caller too
            assert (await b.submit(rows(i, 1)))["id"].tolist() == [i]
        phase[0] = "big"
        assert (await b.submit(rows(100, 50)))["id"].tolist() == list(range(100, 150))  # 100 values: too big
        phase[0] = "concurrent"
        outs = await asyncio.gather(*[b.submit(rows(200 + 3 * i, 3)) for i in range(3)])  # callers overlap
        await b.close()
        return outs, threading.get_ident()

    outs, loop_thread = asyncio.run(main())
    for i, out in enumerate(outs):
        assert out["id"].tolist() == list(range(200 + 3 * i, 203 + 3 * i))
    by_phase = {p: {t for q, _, t in calls if q == p} for p in ("warm-up", "lone", "big", "concurrent")}
    assert by_phase["lone"] == {loop_thread}
    assert loop_thread not in by_phase["warm-up"] | by_phase["big"] | by_phase["concurrent"]
