"""The server process: ports bound first, models loaded, then serving until SIGTERM drains it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from zoo.proto._pool import POOL
from zoo.server import tracing
from zoo.server.dataplane import DataPlane
from zoo.server.grpc_api.auth import GuardedHealth, TokenAuth
from zoo.server.grpc_api.listen import PortInUse, bind, credentials, grpc_options
from zoo.server.grpc_api.service import SERVICE, handler
from zoo.server.grpc_api.servicer import InferenceServicer
from zoo.server.grpc_api.stream import StreamLimits
from zoo.server.http_api.server import HttpServer
from zoo.server.listen import where_to_look
from zoo.server.metrics import Metrics
from zoo.server.monitor import Monitor
from zoo.server.monitor_metrics import MonitorCollector, PayloadLogCollector
from zoo.server.payload_log import PayloadLog
from zoo.server.registry import Registry
from zoo.server.runtime import GpuRequired, provider_notice
from zoo.server.settings import ServerSettings, SettingsError
from zoo.server.worker_link import LinkedServer

log = logging.getLogger("zoo.server")
SHUTDOWN_MARGIN_S = 5.0  # beyond the grace period, for closing batchers and ports
ANSWER_S = 1.0  # of that margin: for the answers to requests given up at the end of the grace to be sent


# Builds the registry from the server's metrics and its model-change callback (tests inject file-system faults).
RegistryFactory = Callable[[Metrics, Callable[[str, bool], None]], Registry]


class ZooServer:
    """One server instance: start(), then wait() until stop() is requested, then shutdown()."""

    def __init__(self, settings: ServerSettings, *, registry_factory: RegistryFactory | None = None, worker=None):
        self.settings = settings
        self.worker = worker  # zoo.server.worker_link.WorkerLink when this process is one of --workers
        self.monitor = Monitor(settings.drift_window) if settings.monitoring else None
        self.metrics = Metrics(multiprocess=worker is not None, monitor=self.monitor)
        self.health = GuardedHealth()
        make = registry_factory or (lambda metrics, on_change: Registry(settings, metrics, on_change=on_change))
        self.registry = make(self.metrics, self._model_changed)
        self.plane = DataPlane(
            self.registry,
            self.metrics,
            settings,
            stats_folder=worker.stats_folder if worker else None,
            announce=worker.announce if worker else None,
        )
        self.metrics.watch_queues(self.registry.queued)
        if self.monitor is not None and worker is None:  # under --workers the supervisor adds every worker's up
            self.metrics.registry.register(MonitorCollector(self.monitor.sources, settings.drift_all_features))
        if endpoint := tracing.endpoint_from(settings.otlp_endpoint):
            self.plane.tracing = tracing.Tracing(endpoint, settings.trace_sample)
        if settings.payload_log or settings.payload_log_url:
            self.plane.payload_log = PayloadLog(
                settings.payload_log or None,
                max_bytes=int(settings.payload_log_max_mb * (1 << 20)),
                sample=settings.payload_log_sample,
                url=settings.payload_log_url or None,
            )
            self.metrics.registry.register(PayloadLogCollector(self.plane.payload_log))
        self.port: int | None = None
        self.http_port: int | None = None
        self.metrics_port: int | None = None
        self._http: HttpServer | None = None  # when --http-port >= 0
        self._server: grpc.aio.Server | None = None
        self._stop = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task] = set()
        self._poller: asyncio.Task | None = None

    def _model_changed(self, name: str, ready: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if ready else health_pb2.HealthCheckResponse.NOT_SERVING
        task = asyncio.get_running_loop().create_task(self.health.set(name, status))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _grpc_server(self) -> grpc.aio.Server:
        s = self.settings
        token = s.token()
        auth = TokenAuth(token) if token else None
        self.health.auth = auth
        interceptors = [auth] if auth else []
        server = grpc.aio.server(options=grpc_options(s), interceptors=interceptors, maximum_concurrent_rpcs=s.max_concurrent_rpcs)
        servicer = InferenceServicer(
            self.plane,
            stream_limits=StreamLimits(s.stream_first_message_timeout, s.stream_idle_timeout),
            streams_per_peer=s.streams_per_peer,
            max_message_bytes=s.max_message_bytes,
            worker=self.worker.index if self.worker else None,
        )
        server.add_generic_rpc_handlers((handler(servicer),))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        services = [SERVICE.full_name, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME]
        reflection.enable_server_reflection(services, server, pool=POOL)
        return server

    async def start(self) -> int:
        """Bind every port (so a clash is reported before models load), load the repository, serve; returns the gRPC port."""
        s = self.settings
        self._loop = asyncio.get_running_loop()
        if self.monitor is not None:
            self.monitor.start(self._loop)
        self._server = self._grpc_server()
        self.port = bind(self._server, s.host, s.port, credentials(s))
        if s.http_port >= 0:
            try:
                self._http = await HttpServer.bind(self.plane, s)
            except OSError as e:
                raise PortInUse(f"cannot listen on {s.host}:{s.http_port} (--http-port {s.http_port}): {e.strerror}") from None
            self.http_port = self._http.port
        if s.metrics_port >= 0:
            try:
                self.metrics_port = self.metrics.serve_http(s.host, s.metrics_port, s.token())
            except OSError as e:
                raise PortInUse(f"cannot listen on {s.host}:{s.metrics_port} (--metrics-port {s.metrics_port}): {e.strerror}") from None
        await self.registry.start()
        log.info("%s", provider_notice())
        if not self.registry.names():
            log.warning(
                "the repository %s holds no models yet: export one into it (`zoo train iris && zoo export iris "
                "--repository %s`, with zoo[train] installed), copy an exported model folder into it, or run "
                "`zoo bootstrap` to fill it with the default zoo",
                s.repository,
                s.repository,
            )
        await self._server.start()
        if self._http is not None:
            await self._http.start()
        if s.model_control_mode == "poll":
            self._poller = self._loop.create_task(self.registry.poll_forever(s.poll_interval))
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        self.plane.started = True
        if self.worker is not None:
            self.worker.started(LinkedServer(self.registry.names, self.metrics.write_snapshot, self.plane.apply, self.stop))
        if self.worker is None or self.worker.index == 0:
            log.info("%s", where_to_look(s.host, self.http_port))
        what = f"zoo-server worker {self.worker.index}" if self.worker else "zoo-server"
        log.info(
            "%s listening on %s:%d (metrics port %s, HTTP port %s, model control %s)",
            what,
            s.host,
            self.port,
            self.metrics_port,
            self.http_port,
            s.model_control_mode,
        )
        return self.port

    def stop(self) -> None:
        """Ask the server to shut down; safe from any thread and from signal handlers, also before start()."""
        if self._loop is None:
            self._stop.set()  # not started: nothing waits on the event yet, so setting it needs no loop
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)

    async def wait(self) -> None:
        """Block until stop() is called."""
        await self._stop.wait()

    async def shutdown(self) -> None:
        """Stop accepting, let in-flight requests finish (up to the grace period), then release everything."""
        grace = self.settings.grace
        log.info("zoo-server shutting down: draining in-flight requests (grace %.1fs)", grace)
        self.plane.begin_drain()
        await self.health.enter_graceful_shutdown()
        if self._poller is not None:
            self._poller.cancel()
        if self.worker is not None:
            self.worker.stopping()
        try:
            # Bounded: a batch stuck in a model, or a hung loader, must not keep the process alive past the grace.
            await asyncio.wait_for(self._drain(grace), grace + SHUTDOWN_MARGIN_S)
        except TimeoutError:
            log.error("shutdown took longer than the grace period plus %.0f s; exiting anyway", SHUTDOWN_MARGIN_S)
        if self.plane.payload_log is not None:
            self.plane.payload_log.close()  # what the drain answered is in the log before the process ends
        if self.monitor is not None:
            self.monitor.close()
        if self.plane.tracing is not None:
            self.plane.tracing.close()  # sends the spans still buffered
        self.metrics.close()
        log.info("zoo-server stopped")

    async def _drain(self, grace: float) -> None:
        # First the data plane drains while both transports stay open: requests it started run to the end (a
        # split one through all its chunks), and new ones are answered UNAVAILABLE / 503. Only then do the
        # transports stop. gRPC's stop() cancels every call it has received but not yet handed to us, so calling it
        # while clients still send would answer them CANCELLED; the drain waits until they have gone quiet.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        try:
            await asyncio.wait_for(self.plane.drained(), grace)
        except TimeoutError:
            log.warning("requests were still running or arriving when the grace period of %.1fs ended", grace)
            # A request stuck in a model is given up with UNAVAILABLE, saying so, before the ports close.
            await asyncio.gather(*(lv.batcher.close(0) for n in self.registry.names() for lv in self.registry.entry(n).loaded.values()))
        left = max(deadline - loop.time(), ANSWER_S)
        stopping = [self._server.stop(left)] if self._server is not None else []
        if self._http is not None:
            stopping.append(self._http.close(left))
        await asyncio.gather(*stopping)
        await self.registry.close()


async def serve(
    settings: ServerSettings,
    *,
    on_started: Callable[[ZooServer], None] | None = None,
    registry_factory: RegistryFactory | None = None,
    worker=None,
) -> None:
    """Run a server until stop() or SIGTERM/SIGINT (signals only when called from the main thread)."""
    server = ZooServer(settings, registry_factory=registry_factory, worker=worker)
    if threading.current_thread() is threading.main_thread():
        # Before start(): a SIGTERM while models load (a pod stopped during start-up) must drain, not kill.
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, server.stop)
    try:
        if await _start_unless_stopped(server) and on_started is not None:
            on_started(server)
        await server.wait()
    finally:
        await server.shutdown()


async def _start_unless_stopped(server: ZooServer) -> bool:
    """Start the server; a stop asked for during start-up cancels it (a hung or slow load cannot delay the exit)."""
    starting = asyncio.ensure_future(server.start())
    stopped = asyncio.ensure_future(server.wait())
    try:
        await asyncio.wait((starting, stopped), return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
    if starting.cancelled():
        log.info("zoo-server asked to stop during start-up")
        return False
    starting.result()  # raises what start() raised (a port in use, a GPU required)
    return True


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop to run on: uvloop when asked for or (auto) installed, else the standard one."""
    if name == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if name == "uvloop":
            raise ValueError("--event-loop uvloop: the uvloop package is not installed") from None
        return None
    return uvloop.new_event_loop


def run(settings: ServerSettings, worker=None) -> int:
    """Blocking entry point of both server commands (and of each worker); returns the process exit code."""
    try:
        factory = loop_factory(settings.event_loop)
        # uvloop cuts the per-request cost of grpc.aio's callbacks by ~15% (bench/RESULTS.md).
        log.info("event loop: %s", "uvloop" if factory else "asyncio")
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(serve(settings, worker=worker))
    except GpuRequired as e:
        log.error("%s", e)
        return 3
    except (PortInUse, SettingsError, ValueError, OSError) as e:
        log.error("zoo-server failed to start: %s", e)
        return 2
    return 0


def exit_now_if_loads_hang(code: int) -> None:
    """Leave with `code` at once when an abandoned repository read still runs in a thread.

    A normal exit would run C++ static destructors (onnxruntime's) under a thread still inside it; the work
    is drained and logged already, so nothing is lost by skipping them.
    """
    if any(t.name.startswith("zoo-load") and t.is_alive() for t in threading.enumerate()):
        logging.shutdown()
        os._exit(code)
