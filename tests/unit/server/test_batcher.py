"""The batcher on a plain numpy predict function, driven by explicit gates: merging, caps, splitting, the queue
bound, failures, cancellation, closing, and where batches run. No test depends on timing."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from zoo.server.batcher import Batcher, BatchReport
from zoo.server.errors import ModelNotReady, Overloaded

from tests.unit.server.batcher_calls import submit

HANG_GUARD_S = 60  # only ever reached if the batcher hangs: a failure, not a timing assumption


class Recorder:
    """predict = row ids and sums, remembering each call's batch size; with a gate, each call waits for it."""

    def __init__(self, gate: threading.Event | None = None, fail_on_negative: bool = False):
        self.calls: list[int] = []
        self.threads: list[int] = []
        self.gate = gate
        self.fail_on_negative = fail_on_negative
        self.entered = threading.Event()  # set once a call is running (and held by the gate)

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(HANG_GUARD_S), "the test never opened the gate"
        self.calls.append(len(x))
        self.threads.append(threading.get_ident())
        if self.fail_on_negative and (x[:, 0] < 0).any():
            raise ValueError("boom")
        return {"id": x[:, 0].astype(np.int64), "sum": x.sum(axis=1)}


def rows(start: int, n: int) -> np.ndarray:
    """n rows whose first column is a unique id."""
    ids = np.arange(start, start + n, dtype=np.float32)
    return np.stack([ids, np.ones_like(ids)], axis=1)


async def running(predict: Recorder) -> None:
    """Wait until the first batch is inside predict (held there by its gate)."""
    await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(None, predict.entered.wait), HANG_GUARD_S)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, HANG_GUARD_S))


def test_requests_waiting_while_the_model_runs_form_the_next_batch_and_get_their_own_rows():
    async def main():
        predict, reports = Recorder(threading.Event()), []
        b = Batcher(predict, max_batch_size=1024, on_batch=reports.append)
        first = asyncio.ensure_future(submit(b, rows(0, 1)))
        await running(predict)
        rest = [asyncio.ensure_future(submit(b, rows(100 * i, i))) for i in range(1, 21)]
        await asyncio.sleep(0)  # let them enqueue (they do so synchronously when they start)
        predict.gate.set()
        results = await asyncio.gather(first, *rest)
        await b.close()
        return predict, reports, results

    predict, reports, results = run(main())
    assert predict.calls == [1, sum(range(1, 21))]  # the lone first ran at once; the other 20 became one batch
    for i, out in enumerate(results[1:], start=1):
        np.testing.assert_array_equal(out["id"], np.arange(100 * i, 100 * i + i))
        np.testing.assert_allclose(out["sum"], np.arange(100 * i, 100 * i + i) + 1)
    assert [r.requests for r in reports] == [1, 20] and all(r.ok for r in reports)


def test_batches_are_capped_by_max_batch_size_in_arrival_order():
    async def main():
        predict = Recorder(threading.Event())
        b = Batcher(predict, max_batch_size=8)
        first = asyncio.ensure_future(submit(b, rows(0, 3)))
        await running(predict)
        queued = [asyncio.ensure_future(submit(b, rows(10 * i, 3))) for i in range(1, 11)]
        await asyncio.sleep(0)
        predict.gate.set()
        results = await asyncio.gather(first, *queued)
        await b.close()
        return predict, results

    predict, results = run(main())
    assert predict.calls == [3, 6, 6, 6, 6, 6]  # 3 + 3 + 3 > 8: two requests per batch
    for i, out in enumerate(results[1:], start=1):
        np.testing.assert_array_equal(out["id"], np.arange(10 * i, 10 * i + 3))


def test_request_larger_than_the_cap_is_split_and_reassembled():
    async def main():
        predict = Recorder()
        b = Batcher(predict, max_batch_size=4)
        out = await submit(b, rows(0, 10))
        await b.close()
        return predict, out

    predict, out = run(main())
    assert predict.calls == [4, 4, 2]
    np.testing.assert_array_equal(out["id"], np.arange(10))


HOUR_US = 3_600_000_000  # a queue delay no test can outlast: whatever runs, runs because the rule says so


def test_a_lone_caller_never_waits_for_company():
    async def main():
        predict = Recorder()
        b = Batcher(predict, max_batch_size=64, max_queue_delay_us=HOUR_US)
        outs = [await submit(b, rows(i, 1)) for i in range(5)]  # one at a time: each would hang an hour if it waited
        await b.close()
        return predict, outs

    predict, outs = run(main())
    assert predict.calls == [1, 1, 1, 1, 1]
    assert [list(o["id"]) for o in outs] == [[i] for i in range(5)]


def test_after_a_batch_of_three_the_next_batch_waits_for_three_requests():
    async def main():
        predict = Recorder(threading.Event())
        b = Batcher(predict, max_batch_size=64, max_queue_delay_us=HOUR_US)
        await _after_a_batch_of_three(b, predict)  # the model has seen company of three
        second = [asyncio.ensure_future(submit(b, rows(100, 1))), asyncio.ensure_future(submit(b, rows(200, 1)))]
        for _ in range(10):
            await asyncio.sleep(0)
        held = list(predict.calls)  # two of three are waiting: nothing ran
        third = asyncio.ensure_future(submit(b, rows(300, 1)))
        outs = await asyncio.gather(*second, third)
        await b.close()
        return predict, held, outs

    predict, held, outs = run(main())
    assert held == [1, 3]
    assert predict.calls == [1, 3, 3]
    assert [list(o["id"]) for o in outs] == [[100], [200], [300]]


async def _after_a_batch_of_three(b: Batcher, predict: Recorder) -> None:
    """Run batches [1] and [3] through b, so that the next batch expects three requests."""
    first = asyncio.ensure_future(submit(b, rows(0, 1)))
    await running(predict)
    group = [asyncio.ensure_future(submit(b, rows(10 * i, 1))) for i in range(1, 4)]
    await asyncio.sleep(0)
    predict.gate.set()
    await asyncio.gather(first, *group)


@pytest.mark.parametrize("delay_us, rows_sent, calls", [
    (HOUR_US, 4, [1, 3, 4]),  # one request filling the batch runs at once, whatever the delay
    (1000, 1, [1, 3, 1]),  # a lone request waits no longer than the delay for the company that does not come
])
def test_a_full_batch_does_not_wait_and_the_delay_bounds_the_wait(delay_us, rows_sent, calls):
    async def main():
        predict = Recorder(threading.Event())
        b = Batcher(predict, max_batch_size=4, max_queue_delay_us=HOUR_US)
        await _after_a_batch_of_three(b, predict)
        b.max_queue_delay_s = delay_us / 1e6
        out = await submit(b, rows(50, rows_sent))
        await b.close()
        return predict, out

    predict, out = run(main())
    assert predict.calls == calls
    assert list(out["id"]) == list(range(50, 50 + rows_sent))


def test_full_queue_raises_overloaded_and_the_queued_still_succeed():
    async def main():
        predict = Recorder(threading.Event())
        b = Batcher(predict, max_batch_size=4, max_queue_rows=8)
        first = asyncio.ensure_future(submit(b, rows(0, 4)))
        await running(predict)
        queued = [asyncio.ensure_future(submit(b, rows(10, 4))), asyncio.ensure_future(submit(b, rows(20, 4)))]
        await asyncio.sleep(0)
        assert b.queued_rows == 8
        with pytest.raises(Overloaded, match="overloaded"):
            await submit(b, rows(30, 1))
        predict.gate.set()
        done = await asyncio.gather(first, *queued)
        await b.close()
        return done

    done = run(main())
    assert [list(d["id"]) for d in done] == [[0, 1, 2, 3], [10, 11, 12, 13], [20, 21, 22, 23]]


def test_a_request_larger_than_the_queue_is_streamed_through_it_in_chunks():
    async def main():
        seen: list[int] = []
        holder: list[Batcher] = []

        def predict(x):
            seen.append(holder[0].queued_rows)
            return {"id": x[:, 0].astype(np.int64)}

        b = Batcher(predict, max_batch_size=4, max_queue_rows=8)
        holder.append(b)
        big = await submit(b, rows(0, 70))  # 70 rows through a queue of 8: accepted, a few chunks at a time
        small = await submit(b, rows(500, 2))
        await b.close()
        return seen, big, small

    seen, big, small = run(main())
    np.testing.assert_array_equal(big["id"], np.arange(70))
    assert list(small["id"]) == [500, 501]
    assert max(seen) <= 8  # never more queued than the bound


def test_batch_failure_reaches_every_caller_of_that_batch_and_not_later_ones():
    async def alone():
        predict = Recorder(threading.Event(), fail_on_negative=True)
        b = Batcher(predict, max_batch_size=1024)
        bad = asyncio.ensure_future(submit(b, -rows(1, 1)))
        await running(predict)
        good = [asyncio.ensure_future(submit(b, rows(10 * i, 2))) for i in range(3)]
        await asyncio.sleep(0)
        predict.gate.set()
        results = await asyncio.gather(bad, *good, return_exceptions=True)
        again = await submit(b, rows(50, 1))
        await b.close()
        return predict, results, again

    predict, results, again = run(alone())
    assert predict.calls == [1, 6, 1]
    assert isinstance(results[0], ValueError) and all(isinstance(r, dict) for r in results[1:])
    assert list(again["id"]) == [50]

    async def together():
        predict = Recorder(threading.Event(), fail_on_negative=True)
        b = Batcher(predict, max_batch_size=1024)
        first = asyncio.ensure_future(submit(b, rows(0, 1)))
        await running(predict)
        merged = [asyncio.ensure_future(submit(b, x)) for x in (rows(1, 1), -rows(2, 1), rows(3, 1))]
        await asyncio.sleep(0)
        predict.gate.set()
        results = await asyncio.gather(first, *merged, return_exceptions=True)
        await b.close()
        return predict, results

    predict, results = run(together())
    assert predict.calls == [1, 3]
    assert isinstance(results[0], dict) and all(isinstance(r, ValueError) for r in results[1:])


def test_wrong_row_count_from_predict_fails_the_batch_instead_of_mixing_rows():
    async def main():
        b = Batcher(lambda x: {"y": x[:-1]}, max_batch_size=8)
        with pytest.raises(RuntimeError, match="rows"):
            await submit(b, rows(0, 3))
        await b.close()

    run(main())


def test_cancelled_caller_does_not_break_the_others():
    async def main():
        predict = Recorder(threading.Event())
        b = Batcher(predict, max_batch_size=64)
        first = asyncio.ensure_future(submit(b, rows(0, 1)))
        await running(predict)
        doomed = asyncio.ensure_future(submit(b, rows(10, 1)))
        kept = asyncio.ensure_future(submit(b, rows(20, 1)))
        await asyncio.sleep(0)
        doomed.cancel()
        predict.gate.set()
        out = await asyncio.gather(first, kept)
        await b.close()
        return predict, out

    predict, (first, kept) = run(main())
    assert list(first["id"]) == [0] and list(kept["id"]) == [20]
    assert predict.calls == [1, 1]  # the cancelled request was dropped, not computed


def test_close_waits_for_queued_requests_then_refuses_new_ones():
    async def main():
        predict = Recorder(threading.Event())
        b = Batcher(predict, max_batch_size=2)
        first = asyncio.ensure_future(submit(b, rows(0, 1)))
        await running(predict)
        queued = [asyncio.ensure_future(submit(b, rows(10 * i, 2))) for i in range(1, 4)]
        await asyncio.sleep(0)
        closing = asyncio.ensure_future(b.close())
        await asyncio.sleep(0)
        assert not closing.done()  # still draining: the gate holds the first batch
        with pytest.raises(ModelNotReady, match="shutting down"):
            await submit(b, rows(99, 1))
        predict.gate.set()
        await closing
        return await asyncio.gather(first, *queued)

    outs = run(main())
    assert [list(o["id"]) for o in outs] == [[0], [10, 11], [20, 21], [30, 31]]


def test_a_request_split_in_chunks_finishes_all_its_chunks_when_close_comes_mid_way():
    # A request above max_batch_size was accepted before close(): its later chunks are part of it, not new requests.
    async def main():
        predict = Recorder(threading.Event())
        b = Batcher(predict, max_batch_size=2)
        big = asyncio.ensure_future(submit(b, rows(0, 9)))  # five chunks; the first is held in the model
        await running(predict)
        closing = asyncio.ensure_future(b.close())
        await asyncio.sleep(0)
        with pytest.raises(ModelNotReady, match="shutting down"):
            await submit(b, rows(99, 5))  # a new request, split or not, is refused
        predict.gate.set()
        out = await big
        await closing
        return out, predict.calls

    out, calls = run(main())
    assert list(out["id"]) == list(range(9)) and calls == [2, 2, 2, 2, 1]


def test_close_past_its_timeout_fails_what_is_left_instead_of_hanging():
    async def main():
        gate = threading.Event()
        predict = Recorder(gate)
        b = Batcher(predict, max_batch_size=2)
        running_one = asyncio.ensure_future(submit(b, rows(0, 1)))
        await running(predict)
        queued = asyncio.ensure_future(submit(b, rows(10, 1)))
        await asyncio.sleep(0)
        await b.close(timeout=0)  # a model stuck in a batch must not hold shutdown
        results = await asyncio.gather(running_one, queued, return_exceptions=True)
        gate.set()
        return results

    results = run(main())
    assert all(isinstance(r, ModelNotReady) for r in results)


def test_small_batches_run_on_the_loop_and_large_ones_on_the_model_thread():
    async def main():
        predict = Recorder()
        b = Batcher(predict, max_batch_size=64, inline_rows=10)
        assert (await submit(b, rows(0, 1)))["id"].tolist() == [0]  # 2 values: on the loop
        assert (await submit(b, rows(100, 50)))["id"].tolist() == list(range(100, 150))  # 100 values: the thread
        await b.close()
        return predict, threading.get_ident()

    predict, loop_thread = run(main())
    assert predict.threads[0] == loop_thread and predict.threads[1] != loop_thread


def test_batch_reports_carry_rows_requests_and_queue_times():
    async def main():
        reports: list[BatchReport] = []
        predict = Recorder(threading.Event())
        b = Batcher(predict, max_batch_size=16, on_batch=reports.append)
        first = asyncio.ensure_future(submit(b, rows(0, 2)))
        await running(predict)
        more = [asyncio.ensure_future(submit(b, rows(10, 3))) for _ in range(2)]
        await asyncio.sleep(0)
        predict.gate.set()
        await asyncio.gather(first, *more)
        await b.close()
        return reports

    reports = run(main())
    assert [(r.rows, r.requests, len(r.queue_s), r.ok) for r in reports] == [(2, 1, 1, True), (6, 2, 2, True)]
    assert all(q >= 0 for r in reports for q in r.queue_s) and all(r.compute_s >= 0 for r in reports)
