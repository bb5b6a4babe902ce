"""The zoo-server process: gRPC server, health, reflection, metrics endpoint, polling and graceful shutdown."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import threading
from typing import Callable, Mapping, Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from zoo.proto import grpc_service_pb2 as pb
from zoo.proto import grpc_service_pb2_grpc as pb_grpc
from zoo.server.metrics import Metrics
from zoo.server.registry import Registry
from zoo.server.runtime import GpuRequired
from zoo.server.servicer import InferenceServicer
from zoo.server.settings import ServerSettings, env_defaults

log = logging.getLogger("zoo.server")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name


def bind(server: grpc.aio.Server, host: str, port: int, tls_cert: str = "", tls_key: str = "") -> int:
    """Bind the port (TLS when a certificate and key are given) and return the port really bound (0 picks a free one)."""
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if tls_cert or tls_key:
        if not (tls_cert and tls_key):
            raise ValueError("TLS needs both --tls-cert and --tls-key")
        with open(tls_key, "rb") as k, open(tls_cert, "rb") as c:
            creds = grpc.ssl_server_credentials([(k.read(), c.read())])
        bound = server.add_secure_port(address, creds)
    else:
        bound = server.add_insecure_port(address)
    if not bound:  # older grpcio reports failure as 0 instead of raising
        raise RuntimeError(f"could not bind {address}")
    return bound


class ZooServer:
    """One server instance; start(), then wait() until stop() is requested, then shutdown()."""

    def __init__(self, settings: ServerSettings):
        self.settings = settings.validate()
        self.metrics = Metrics()
        self.health = health.aio.HealthServicer()
        self.registry = Registry(settings, self.metrics, on_change=self._model_changed)
        self.servicer = InferenceServicer(self.registry, self.metrics, settings)
        self.port: int | None = None
        self.metrics_port: int | None = None
        self._server: grpc.aio.Server | None = None
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task] = set()
        self._poller: asyncio.Task | None = None

    def _model_changed(self, name: str, ready: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if ready else health_pb2.HealthCheckResponse.NOT_SERVING
        task = asyncio.get_running_loop().create_task(self.health.set(name, status))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start(self) -> int:
        """Load the repository, start serving; returns the bound gRPC port."""
        s = self.settings
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        await self.registry.load_all()
        options = [
            ("grpc.max_send_message_length", s.max_message_bytes),
            ("grpc.max_receive_message_length", s.max_message_bytes),
            ("grpc.so_reuseport", 0),  # a second server on the same port must fail, not share it
        ]
        self._server = grpc.aio.server(options=options)
        pb_grpc.add_GRPCInferenceServiceServicer_to_server(self.servicer, self._server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        reflection.enable_server_reflection(
            [SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME], self._server
        )
        self.port = bind(self._server, s.host, s.port, s.tls_cert, s.tls_key)
        await self._server.start()
        if s.metrics_port >= 0:
            self.metrics_port = self.metrics.serve_http(s.host, s.metrics_port)
        if s.poll_interval_s > 0:
            self._poller = self._loop.create_task(self.registry.poll_forever(s.poll_interval_s))
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        self.servicer.started = True
        log.info("zoo-server listening on %s:%d (metrics port %s)", s.host, self.port, self.metrics_port)
        return self.port

    def stop(self) -> None:
        """Ask the server to shut down; safe from any thread and from signal handlers."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    async def wait(self) -> None:
        """Block until stop() is called."""
        await self._stop.wait()

    async def shutdown(self) -> None:
        """Stop accepting, let in-flight requests finish (up to grace_s), then release everything."""
        log.info("zoo-server shutting down: draining in-flight requests (grace %.1fs)", self.settings.grace_s)
        self.servicer.shutting_down = True
        await self.health.enter_graceful_shutdown()
        if self._poller is not None:
            self._poller.cancel()
        if self._server is not None:
            await self._server.stop(self.settings.grace_s)
        await self.registry.close()
        self.metrics.close()
        log.info("zoo-server stopped")


async def serve(settings: ServerSettings, *, on_started: Callable[[ZooServer], None] | None = None) -> None:
    """Run a server until stop() or SIGTERM/SIGINT (signals only when called from the main thread)."""
    server = ZooServer(settings)
    try:
        await server.start()
        if threading.current_thread() is threading.main_thread():
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, server.stop)
        if on_started is not None:
            on_started(server)
        await server.wait()
    finally:
        await server.shutdown()


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


def run(settings: ServerSettings) -> int:
    """Blocking entry point used by `zoo serve` and `zoo-server`; returns the process exit code."""
    try:
        factory = loop_factory(settings.event_loop)
        # uvloop cuts the per-request cost of grpc.aio's callbacks by ~15% (bench/RESULTS.md).
        log.info("event loop: %s", "uvloop" if factory else "asyncio")
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(serve(settings))
    except GpuRequired as e:
        log.error("%s", e)
        return 3
    except (RuntimeError, ValueError, OSError) as e:
        log.error("zoo-server failed to start: %s", e)
        return 2
    return 0


def parse_settings(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> ServerSettings:
    """ServerSettings from flags, falling back to ZOO_* variables of environ, then to the defaults."""
    d = ServerSettings()
    p = argparse.ArgumentParser(prog="zoo-server", description="Serve a zoo model repository over the KServe v2 gRPC protocol.")
    p.add_argument("--repository", help=f"model repository root (default {d.repository}; env ZOO_REPOSITORY)")
    p.add_argument("--host", help=f"address to bind (default {d.host})")
    p.add_argument("--port", type=int, help=f"gRPC port, 0 = ephemeral (default {d.port})")
    p.add_argument("--metrics-port", type=int, help=f"Prometheus port, 0 = ephemeral, -1 = off (default {d.metrics_port})")
    p.add_argument("--max-batch-size", type=int, help=f"rows per model call (default {d.max_batch_size})")
    p.add_argument("--max-queue-delay-us", type=int, help=f"longest wait for a batch to fill (default {d.max_queue_delay_us})")
    p.add_argument("--max-queue-rows", type=int, help="rows queued per model before RESOURCE_EXHAUSTED (default 64 * max batch)")
    p.add_argument("--require-gpu", action="store_const", const=True, help="fail to start unless CUDA runs the models")
    p.add_argument("--poll-interval", dest="poll_interval_s", type=float, help="rescan the repository every N s, 0 = off (default 0)")
    p.add_argument("--intra-op-threads", type=int, help=f"onnxruntime threads per model (default {d.intra_op_threads})")
    p.add_argument("--max-message-bytes", type=int, help=f"gRPC message size cap (default {d.max_message_bytes})")
    p.add_argument("--grace", dest="grace_s", type=float, help=f"seconds to drain on shutdown (default {d.grace_s})")
    p.add_argument("--event-loop", choices=["auto", "uvloop", "asyncio"], help="event loop (default auto: uvloop when installed)")
    p.add_argument("--tls-cert", help="PEM certificate chain: serve gRPC over TLS (with --tls-key)")
    p.add_argument("--tls-key", help="PEM private key for --tls-cert")
    args = vars(p.parse_args(argv))
    values = env_defaults(os.environ if environ is None else environ)
    values.update({k: v for k, v in args.items() if v is not None})
    return ServerSettings(**values)


def main(argv: Sequence[str] | None = None) -> int:
    """The zoo-server console script."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        settings = parse_settings(argv).validate()
    except ValueError as e:
        log.error("%s", e)
        return 2
    return run(settings)
