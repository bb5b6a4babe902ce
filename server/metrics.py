"""Prometheus metrics (own CollectorRegistry) and the per-version counters behind ModelStatistics."""

from __future__ import annotations

import hmac
import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import ThreadingWSGIServer

from zoo.server import monitor_share
from zoo.server.batcher import BatchReport
from zoo.server.listen import listen
from zoo.server.monitor import Monitor

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


@dataclass
class VersionStats:
    """Cumulative counters of one model version, in the units of the KServe ModelStatistics message."""

    inference_count: int = 0  # rows answered successfully
    execution_count: int = 0  # model calls (batches)
    success_count: int = 0
    success_ns: int = 0
    fail_count: int = 0
    fail_ns: int = 0
    queue_count: int = 0
    queue_ns: int = 0
    compute_count: int = 0
    compute_ns: int = 0
    last_inference_ms: int = 0
    batch_sizes: dict[int, list[int]] = field(default_factory=dict)  # rows -> [count, compute ns]

    def add(self, other: VersionStats) -> None:
        """Add another process's counters to these (workers' statistics are merged this way)."""
        for name in (
            "inference_count",
            "execution_count",
            "success_count",
            "success_ns",
            "fail_count",
            "fail_ns",
            "queue_count",
            "queue_ns",
            "compute_count",
            "compute_ns",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.last_inference_ms = max(self.last_inference_ms, other.last_inference_ms)
        for rows, (count, ns) in other.batch_sizes.items():
            mine = self.batch_sizes.setdefault(rows, [0, 0])
            mine[0] += count
            mine[1] += ns


class Metrics:
    """All server metrics; `registry` is private to this server so tests can run several in one process.

    Under --workers the Prometheus values live in prometheus-client's multiprocess files (the supervisor serves
    them merged), and each worker writes its ModelStatistics counters to a snapshot file beside them.
    """

    def __init__(self, multiprocess: bool = False, monitor: Monitor | None = None) -> None:
        self.multiprocess = multiprocess
        self.monitor = monitor  # the drift windows (None: --no-monitoring); an unloaded version's goes with its gauges
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("zoo_requests", "Inference requests received", ["model", "version"], registry=r)
        self.failures = Counter("zoo_request_failures", "Inference requests that failed", ["model", "version", "code"], registry=r)
        self.latency = Histogram(
            "zoo_request_latency_seconds", "Request latency in the server", ["model"], buckets=_LATENCY_BUCKETS, registry=r
        )
        self.queue_time = Histogram(
            "zoo_queue_time_seconds", "Time a request waited for its batch", ["model"], buckets=_LATENCY_BUCKETS, registry=r
        )
        self.batch_size = Histogram("zoo_batch_size", "Rows per model call", ["model"], buckets=_BATCH_BUCKETS, registry=r)
        self.provider = Gauge(
            "zoo_model_provider",
            "1 for the execution provider running each loaded version",
            ["model", "version", "provider"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self._lock = threading.Lock()  # stats are written from the loop and read by RPCs
        self.stats: dict[tuple[str, int], VersionStats] = {}
        self._bound: dict[tuple[str, int | None], tuple] = {}  # (model, version) -> its request metrics' children
        self._http: Any = None  # prometheus-client's WSGI server, once serve_http() ran

    def version_stats(self, model: str, version: int) -> VersionStats:
        """The counters of one version (created on first use)."""
        with self._lock:
            return self.stats.setdefault((model, version), VersionStats())

    def batch_hook(self, model: str, version: int):
        """A Batcher on_batch callback recording one version's batches."""
        stats = self.version_stats(model, version)
        batch_size, queue_time = self.batch_size.labels(model), self.queue_time.labels(model)  # bound once, not per batch

        def record(report: BatchReport) -> None:
            batch_size.observe(report.rows)
            for q in report.queue_s:
                queue_time.observe(q)
            ns = int(report.compute_s * 1e9)
            with self._lock:
                stats.queue_count += len(report.queue_s)
                stats.queue_ns += int(sum(report.queue_s) * 1e9)
                if report.ok:
                    stats.execution_count += 1
                    stats.compute_count += report.requests
                    stats.compute_ns += ns
                    entry = stats.batch_sizes.setdefault(report.rows, [0, 0])
                    entry[0] += 1
                    entry[1] += ns

        return record

    def request_done(self, model: str, version: int | None, rows: int, seconds: float, code: str | None) -> None:
        """Record one finished ModelInfer (code None = success)."""
        bound = self._bound.get((model, version))
        if bound is None:  # label lookups cost microseconds: once per version, not per request
            v = str(version) if version is not None else ""
            bound = self._bound[(model, version)] = (self.requests.labels(model, v), self.latency.labels(model))
        bound[0].inc()
        bound[1].observe(seconds)
        if code is not None:
            self.failures.labels(model, str(version) if version is not None else "", code).inc()
        if version is None:
            return
        stats = self.stats.get((model, version)) or self.version_stats(model, version)
        with self._lock:
            if code is None:
                stats.success_count += 1
                stats.success_ns += int(seconds * 1e9)
                stats.inference_count += rows
                stats.last_inference_ms = int(time.time() * 1000)
            else:
                stats.fail_count += 1
                stats.fail_ns += int(seconds * 1e9)

    def set_provider(self, model: str, version: int, provider: str) -> None:
        """Publish which execution provider really runs a version."""
        self.provider.labels(model, str(version), provider).set(1)

    def forget(self, model: str, version: int, provider: str) -> None:
        """Drop the provider gauge (and the drift window) of an unloaded version."""
        if self.monitor is not None:
            self.monitor.forget(model, version)
        try:
            self.provider.remove(model, str(version), provider)
        except KeyError:
            pass

    def watch_queues(self, queued: Callable[[], Iterable[tuple[str, int, int]]]) -> None:
        """Publish rows waiting per model version, read at scrape time (nothing is paid per request).

        One process only: under --workers each worker's queue is its own and the gauge is not published.
        """
        if self.multiprocess:
            return

        class QueueCollector:
            def collect(self):
                g = GaugeMetricFamily("zoo_queued_rows", "Rows waiting for a batch", labels=["model", "version"])
                for model, version, rows in queued():
                    g.add_metric([model, str(version)], rows)
                yield g

        self.registry.register(QueueCollector())

    def snapshot(self) -> dict:
        """Every version's counters as JSON-ready data."""
        with self._lock:
            return {
                f"{m}\x1f{v}": {**asdict(st), "batch_sizes": {str(k): c for k, c in st.batch_sizes.items()}}
                for (m, v), st in self.stats.items()
            }

    def write_snapshot(self, folder: str | os.PathLike) -> None:
        """Write the snapshot (and the drift counts) for other workers to merge (atomically: a reader never sees half a
        file)."""
        if self.monitor is not None:
            monitor_share.write(folder, self.monitor.all_counts())
        path = Path(folder) / f"stats-{os.getpid()}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.snapshot()), encoding="utf-8")
        os.replace(tmp, path)

    def merged_stats(self, model: str, version: int, folder: str | os.PathLike | None) -> VersionStats:
        """This process's counters of a version plus the other workers' latest snapshots."""
        total = VersionStats()
        total.add(self.version_stats(model, version))
        if folder is None:
            return total
        mine = f"stats-{os.getpid()}.json"
        for path in Path(folder).glob("stats-*.json"):
            if path.name == mine:
                continue
            try:
                data = json.loads(path.read_text(encoding="utf-8")).get(f"{model}\x1f{version}")
            except (OSError, ValueError):
                continue
            if data:
                sizes = {int(k): list(c) for k, c in data.pop("batch_sizes").items()}
                total.add(VersionStats(**data, batch_sizes=sizes))
        return total

    def serve_http(self, host: str, port: int, token: str = "") -> int:
        """Start the /metrics HTTP server on a daemon thread; returns the bound port (port 0 = ephemeral)."""
        self._http = serve_metrics(host, port, self.registry, token)
        return self._http.server_port

    def close(self) -> None:
        """Stop the HTTP server."""
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None


DENIED = "missing or wrong bearer token: send the header 'Authorization: Bearer <token>' (Prometheus: authorization.credentials_file)"


def serve_metrics(host: str, port: int, registry: CollectorRegistry, token: str = "") -> Any:
    """prometheus-client's exposition on a daemon thread, behind the server's bearer token when one is set."""
    app = make_wsgi_app(registry)
    expected = f"Bearer {token}".encode()

    def guarded(environ, start_response):
        given = environ.get("HTTP_AUTHORIZATION", "").encode("utf-8", "replace")
        if token and not hmac.compare_digest(given, expected):
            body = json.dumps({"error": DENIED}).encode()
            start_response("401 Unauthorized", [("Content-Type", "application/json"), ("WWW-Authenticate", "Bearer")])
            return [body]
        return app(environ, start_response)

    servers = []
    for sock in listen(host, port):  # `localhost`: IPv4 and IPv6 loopback on one port

        class Server(ThreadingWSGIServer):
            address_family = sock.family

            def server_bind(self, sock=sock):  # the socket is bound already: take it over
                self.socket.close()
                self.socket = sock
                self.server_address = sock.getsockname()[:2]
                self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]
                self.setup_environ()

        httpd = make_server(host, 0, guarded, Server, handler_class=_Quiet)
        threading.Thread(target=httpd.serve_forever, name="zoo-metrics", daemon=True).start()
        servers.append(httpd)
    return servers[0] if len(servers) == 1 else _Servers(servers)


class _Quiet(WSGIRequestHandler):
    """No access log line per scrape."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Servers:
    """The metrics servers of one port (IPv4 and IPv6 loopback), closed together."""

    def __init__(self, servers: list) -> None:
        self.servers = servers
        self.server_port = servers[0].server_port

    def shutdown(self) -> None:
        for s in self.servers:
            s.shutdown()

    def server_close(self) -> None:
        for s in self.servers:
            s.server_close()
