"""The Loader: blocking calls in their own threads, results and exceptions handed back, at most `threads` at once,
and a call past its limit abandoned with its slot freed. Gates decide every ordering; no test races a clock."""

from __future__ import annotations

import asyncio
import threading

import pytest

from zoo.server.loader import Loader, LoadTimeout

HANG_GUARD_S = 60  # only ever reached if the loader hangs: a failure, not a timing assumption


class Gated:
    """A blocking callable: records that it started, then waits for its gate before returning `value`."""

    def __init__(self, value):
        self.value = value
        self.started = threading.Event()
        self.gate = threading.Event()
        self.thread_name = ""

    def __call__(self):
        self.thread_name = threading.current_thread().name
        self.started.set()
        assert self.gate.wait(HANG_GUARD_S), "the test never opened the gate"
        return self.value


async def wait_event(event: threading.Event) -> None:
    """Wait for a threading.Event without blocking the loop; fail instead of hanging."""
    assert await asyncio.to_thread(event.wait, HANG_GUARD_S), "event never set"


def loader_threads(what: str) -> list[threading.Thread]:
    """The live threads the Loader started for calls named `what`."""
    return [t for t in threading.enumerate() if t.name == f"zoo-load {what}"]


def test_run_returns_the_result_from_another_thread():
    async def main():
        return await Loader(2, 10).run("sum", lambda *a: (sum(a), threading.get_ident()), 1, 2, 3)

    total, ident = asyncio.run(main())
    assert total == 6 and ident != threading.get_ident()


def test_run_raises_the_callables_own_exception():
    boom = ValueError("unreadable metadata.json")

    def fail():
        raise boom

    async def main():
        with pytest.raises(ValueError) as e:
            await Loader(2, 10).run("read", fail)
        return e.value

    assert asyncio.run(main()) is boom


def test_at_most_threads_calls_run_at_once_and_the_next_starts_when_one_finishes():
    first, second, third = Gated("a"), Gated("b"), Gated("c")

    async def main():
        loader = Loader(2, HANG_GUARD_S)
        tasks = [asyncio.create_task(loader.run(what, fn)) for what, fn in
                 (("first", first), ("second", second), ("third", third))]
        await wait_event(first.started)
        await wait_event(second.started)
        # Every task has run up to its first wait by now: an unbounded loader would have started the third thread.
        assert not third.started.is_set() and not loader_threads("third")
        first.gate.set()
        assert await tasks[0] == "a"
        await wait_event(third.started)  # the freed slot went to the third call
        assert not second.gate.is_set() and not tasks[1].done()  # while the second still holds its slot
        second.gate.set()
        third.gate.set()
        return await asyncio.gather(*tasks[1:])

    assert asyncio.run(main()) == ["b", "c"]
    assert (first.thread_name, third.thread_name) == ("zoo-load first", "zoo-load third")


def test_a_call_past_its_limit_raises_load_timeout_frees_its_slot_and_counts_as_abandoned():
    hung = Gated("late")

    async def main():
        loader = Loader(1, HANG_GUARD_S)
        with pytest.raises(LoadTimeout, match="reading hung/1 took longer than 0 s"):
            await loader.run("reading hung/1", hung, timeout_s=0.05)  # the gate stays shut: it can only time out
        assert hung.started.is_set() and not hung.gate.is_set()  # its thread is still blocked
        assert await loader.run("next", lambda: "ran") == "ran"  # yet the only slot is free again
        return loader.abandoned

    assert asyncio.run(main()) == 1
    assert isinstance(LoadTimeout("x"), TimeoutError)
    hung.gate.set()


def test_an_abandoned_call_finishing_after_its_loop_closed_raises_nothing_in_its_thread(monkeypatch):
    hung = Gated("late")
    errors: list = []
    monkeypatch.setattr(threading, "excepthook", errors.append)

    async def main():
        with pytest.raises(LoadTimeout):
            await Loader(1, 0.05).run("hung", hung)  # the loader's own limit applies when the call gives none

    asyncio.run(main())  # the loop is closed now
    [thread] = loader_threads("hung")
    hung.gate.set()
    thread.join(HANG_GUARD_S)
    assert not thread.is_alive() and errors == []
