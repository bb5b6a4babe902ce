"""Blocking repository work off the event loop: a bounded number of threads, each call with a time limit.

Written here rather than with ThreadPoolExecutor because a pool's worker stuck in a hung read would hold its
slot forever: each call gets its own daemon thread, and a call past its time limit gives its slot back and is
abandoned (a daemon thread never delays the process's exit). So one hung or huge entry never blocks the poll,
other loads, or shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class LoadTimeout(TimeoutError):
    """A repository call did not finish in its time limit (it was abandoned)."""


class Loader:
    """Runs blocking callables in at most `threads` threads at once, each for at most `timeout_s` seconds."""

    def __init__(self, threads: int, timeout_s: float):
        self.threads = threads
        self.timeout_s = timeout_s
        self.abandoned = 0  # calls that ran past their limit (their threads may still be running)
        self._slots: asyncio.Semaphore | None = None  # made in the running loop on first use

    async def run(self, what: str, fn: Callable[..., T], *args: Any, timeout_s: float | None = None) -> T:
        """fn(*args) in a thread; LoadTimeout naming `what` if it takes longer than the limit."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.threads)
        limit = self.timeout_s if timeout_s is None else timeout_s
        async with self._slots:
            loop = asyncio.get_running_loop()
            future: asyncio.Future = loop.create_future()

            def settle(ok: bool, value: Any) -> None:
                if not future.done():  # abandoned calls settle into nothing
                    future.set_result(value) if ok else future.set_exception(value)

            def target() -> None:
                value: Any
                try:
                    ok, value = True, fn(*args)
                except BaseException as e:  # handed to the awaiting coroutine
                    ok, value = False, e
                try:
                    loop.call_soon_threadsafe(settle, ok, value)
                except RuntimeError:  # the loop closed while we ran: nobody is waiting any more
                    pass

            threading.Thread(target=target, name=f"zoo-load {what}"[:60], daemon=True).start()
            try:
                return await asyncio.wait_for(future, limit)
            except TimeoutError:
                self.abandoned += 1
                log.error("%s took longer than %.0f s: abandoned (the repository may sit on a hung file system)", what, limit)
                raise LoadTimeout(f"{what} took longer than {limit:.0f} s") from None
