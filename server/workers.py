"""--workers N: N server processes sharing the ports (SO_REUSEPORT) under one supervisor.

The supervisor reserves the ports, starts the workers, serves their merged Prometheus metrics (prometheus-client's
multiprocess mode), relays every change a worker makes on request (explicit loads and unloads, shared-memory
regions) to the others, restarts a worker that dies, and drains them all on SIGTERM. Each worker is a whole
server on its own event loop; the kernel spreads connections between them.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from multiprocessing.connection import Connection, wait
from typing import Any

from zoo.server.settings import ServerSettings
from zoo.server.worker_link import WorkerLink

log = logging.getLogger("zoo.server")
STOP_MARGIN_S = 10.0


class RestartPolicy:
    """When to replace a dead worker: at once, then after 0.5, 1, 2 ... s (capped) while it keeps dying young.

    A worker that served for `stable_s` before dying starts the count again. There is no limit: the supervisor never
    gives up on the server because workers die (a crash loop only slows down); SIGTERM is what stops it.
    """

    def __init__(self, *, base_s: float = 0.5, cap_s: float = 30.0, stable_s: float = 60.0):
        self.base_s, self.cap_s, self.stable_s = base_s, cap_s, stable_s
        self.started: dict[int, float] = {}
        self.deaths: dict[int, int] = {}  # deaths in a row of each worker, each soon after its start

    def start(self, index: int, now: float) -> None:
        """A worker (re)started at `now`."""
        self.started[index] = now

    def delay(self, index: int, now: float) -> float:
        """Seconds to wait before replacing worker `index`, which died at `now`."""
        if now - self.started.get(index, now) >= self.stable_s:
            self.deaths[index] = 0
        n = self.deaths.get(index, 0)
        self.deaths[index] = n + 1
        return 0.0 if n == 0 else min(self.cap_s, self.base_s * 2 ** (n - 1))


def how_it_ended(exitcode: int | None) -> str:
    """'killed by SIGKILL' or 'exited with code 3', from a multiprocessing exit code."""
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with code {exitcode}"


def _worker_main(index: int, settings: ServerSettings, conn: Connection, stats_folder: str) -> None:
    """A worker process: one whole server, linked to the supervisor."""
    from zoo.server.app import run
    from zoo.server.logs import configure_logging

    configure_logging(f"w{index}")
    code = run(settings, worker=WorkerLink(index, conn, stats_folder))
    os._exit(code)  # no C++ static destructors racing a thread still in onnxruntime


def _reserve(host: str, port: int) -> socket.socket:
    """A bound, not listening, SO_REUSEPORT socket: fixes port 0 to one number for every worker and keeps it ours."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind((host, port))
    return s


class Supervisor:
    """Starts, watches, relays between and stops the workers."""

    def __init__(self, settings: ServerSettings):
        self.settings = settings
        self.folder = tempfile.mkdtemp(prefix="zoo-workers-")
        self.ctx = multiprocessing.get_context("spawn")
        self.workers: dict[int, tuple[Any, Connection]] = {}  # index -> (process, pipe to it)
        self.loaded: set[str] | None = None  # explicit mode: what every worker serves (None until the first ready)
        self.regions: dict[str, tuple] = {}
        self.stopping = threading.Event()
        self.policy = RestartPolicy()
        self.due: dict[int, float] = {}  # dead workers' indexes -> when their replacements start
        self.ever_ready = False  # before any worker served, a worker that exits means the server failed to start
        self.ready: set[int] = set()

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; returns the exit code."""
        s = self.settings
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = self.folder  # before any worker (or our collector) starts
        try:
            held = [_reserve(s.host, s.port)] + ([_reserve(s.host, s.http_port)] if s.http_port >= 0 else [])
        except OSError as e:
            log.error(
                "zoo-server failed to start: cannot listen on %s (--port %s / --http-port %s): %s", s.host, s.port, s.http_port, e.strerror
            )
            return 2
        self.grpc_port = held[0].getsockname()[1]
        self.http_port = held[1].getsockname()[1] if len(held) > 1 else None
        metrics_port = self._serve_metrics() if s.metrics_port >= 0 else None
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stopping.set())
        for i in range(s.workers):
            self._spawn(i)
        try:
            return self._watch(metrics_port)
        finally:
            self._stop_all()
            for sock in held:
                sock.close()
            shutil.rmtree(self.folder, ignore_errors=True)

    def _worker_settings(self) -> ServerSettings:
        s = self.settings
        threads = max(1, s.intra_op_threads // s.workers) if s.intra_op_threads else max(1, (os.cpu_count() or 1) // s.workers)
        update = dict(
            port=self.grpc_port,
            http_port=self.http_port if self.http_port is not None else -1,
            metrics_port=-1,
            workers=1,
            reuse_port=True,
            intra_op_threads=threads,
        )
        if self.loaded is not None and s.model_control_mode == "explicit":
            update["load_model"] = sorted(self.loaded)
        return s.model_copy(update=update)

    def _spawn(self, index: int) -> None:
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker_main, args=(index, self._worker_settings(), child, self.folder), name=f"zoo-worker-{index}")
        proc.start()
        child.close()
        self.workers[index] = (proc, parent)
        self.policy.start(index, time.monotonic())

    def _serve_metrics(self) -> int:
        from prometheus_client import CollectorRegistry, multiprocess

        from zoo.server.metrics import serve_metrics
        from zoo.server.monitor_metrics import MonitorCollector
        from zoo.server.monitor_share import SupervisorSource

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        if self.settings.monitoring:  # the workers' drift counts, added up (PSI from the sums)
            source = SupervisorSource(self.folder, self.settings.repository)
            registry.register(MonitorCollector(source, self.settings.drift_all_features))
        server = serve_metrics(self.settings.host, self.settings.metrics_port, registry, self.settings.token())
        return server.server_port

    def _watch(self, metrics_port: int | None) -> int:
        announced = False
        while not self.stopping.is_set():
            conns: dict[Any, int] = {conn: i for i, (_, conn) in self.workers.items()}
            sentinels: dict[Any, int] = {proc.sentinel: i for i, (proc, _) in self.workers.items()}
            now = time.monotonic()
            for index in [i for i, at in self.due.items() if at <= now]:
                del self.due[index]
                self._spawn(index)
            timeout = min([0.2] + [at - now for at in self.due.values()])
            for ready in wait(list(conns) + list(sentinels), timeout=max(0.0, timeout)):
                if ready in conns:
                    self._on_message(conns[ready])
                elif not self.stopping.is_set():
                    code = self._died(sentinels[ready])
                    if code is not None:
                        return code
            if not announced and len(self.ready) == len(self.workers):
                announced = True
                log.info(
                    "zoo-server listening on %s:%d (metrics port %s, HTTP port %s, model control %s, %d workers)",
                    self.settings.host,
                    self.grpc_port,
                    metrics_port,
                    self.http_port,
                    self.settings.model_control_mode,
                    len(self.workers),
                )
        log.info("zoo-server shutting down: draining %d workers (grace %.1fs)", len(self.workers), self.settings.grace)
        return 0

    def _on_message(self, index: int) -> None:
        proc, conn = self.workers[index]
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return  # its sentinel says the rest
        if msg[0] == "ready":
            _, _, pid, names = msg
            self.ready.add(index)
            self.ever_ready = True
            if self.loaded is None:
                self.loaded = set(names)
            for name, region in self.regions.items():  # a restarted worker learns the regions registered so far
                conn.send(("op", ("shm_register", name, *region)))
            log.info("worker %d (pid %d) ready", index, pid)
        elif msg[0] == "op":
            self._record(msg[1])
            for other, (_, c) in self.workers.items():
                if other != index:
                    try:
                        c.send(msg)
                    except OSError:
                        pass  # a dying worker: it is restarted with the state recorded above

    def _record(self, op: tuple) -> None:
        kind, name, *rest = op
        if kind in ("load", "unload") and self.loaded is not None:
            (self.loaded.add if kind == "load" else self.loaded.discard)(name)
        elif kind == "shm_register":
            self.regions[name] = tuple(rest)
        elif kind == "shm_unregister":
            if name:
                self.regions.pop(name, None)
            else:
                self.regions.clear()

    def _died(self, index: int) -> int | None:
        """A worker ended: schedule its replacement; the exit code to return only if the server never started."""
        proc, conn = self.workers.pop(index)
        conn.close()
        proc.join()
        self.ready.discard(index)
        ended = how_it_ended(proc.exitcode)
        if not self.ever_ready:
            log.error("zoo-server failed to start: worker %d (pid %s) %s", index, proc.pid, ended)
            return proc.exitcode if proc.exitcode and proc.exitcode > 0 else 1
        delay = self.policy.delay(index, time.monotonic())
        log.error("worker %d (pid %s) %s: starting a new one in %.1f s", index, proc.pid, ended, delay)
        self.due[index] = time.monotonic() + delay
        return None

    def _stop_all(self) -> None:
        for proc, _ in self.workers.values():
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.settings.grace + STOP_MARGIN_S
        for proc, conn in self.workers.values():
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                log.error("worker pid %d did not drain in time: killed", proc.pid)
                proc.kill()
                proc.join(5)
            conn.close()
        log.info("zoo-server stopped")
