"""A worker's side of its pipe to the supervisor, and the narrow view of its server the link may use."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

SNAPSHOT_EVERY_S = 0.5  # how stale another worker's statistics may be in a ModelStatistics answer


@dataclass(frozen=True)
class LinkedServer:
    """What a worker's link may do with its server, and nothing more."""

    models: Callable[[], list[str]]  # the models it serves now
    write_snapshot: Callable[[str], None]  # its statistics (and drift counts) into the shared folder
    apply: Callable[[tuple], Coroutine[Any, Any, None]]  # make a change another worker announced (a load, a region)
    stop: Callable[[], None]  # begin the drain (thread-safe)


class WorkerLink:
    """A worker's side of its pipe to the supervisor."""

    def __init__(self, index: int, conn: Connection, stats_folder: str):
        self.index = index
        self.conn = conn
        self.stats_folder = stats_folder
        self._server: LinkedServer | None = None  # once started
        self._snapshots: asyncio.Task | None = None

    def started(self, server: LinkedServer) -> None:
        """Called by the server once it serves: report ready, start listening to the supervisor."""
        self._server = server
        loop = asyncio.get_running_loop()
        self._snapshots = loop.create_task(self._write_snapshots(server))
        threading.Thread(target=self._listen, args=(loop, server), name="zoo-worker-link", daemon=True).start()
        self.conn.send(("ready", self.index, os.getpid(), server.models()))

    def announce(self, op: tuple) -> None:
        """Tell the supervisor about a change every worker must make."""
        self.conn.send(("op", op))

    def stopping(self) -> None:
        """Called when the server drains: the last statistics snapshot is written."""
        if self._snapshots is not None:
            self._snapshots.cancel()
        if self._server is not None:
            self._server.write_snapshot(self.stats_folder)

    def _listen(self, loop: asyncio.AbstractEventLoop, server: LinkedServer) -> None:
        while True:
            try:
                msg = self.conn.recv()
            except (EOFError, OSError):  # the supervisor is gone: nobody will route traffic here for long
                loop.call_soon_threadsafe(server.stop)
                return
            if msg[0] == "op":
                asyncio.run_coroutine_threadsafe(server.apply(msg[1]), loop)

    async def _write_snapshots(self, server: LinkedServer) -> None:
        while True:
            await asyncio.sleep(SNAPSHOT_EVERY_S)
            await asyncio.to_thread(server.write_snapshot, self.stats_folder)
