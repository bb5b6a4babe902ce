"""The data plane: what the server does, whatever transport asked (gRPC today, HTTP beside it).

Transports decode their messages, call these methods, and encode what comes back; they map the domain errors
(server/errors.py) to their status codes. Nothing here knows gRPC, HTTP or ONNX.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from zoo import __version__
from zoo.core import contract, decision, model_config
from zoo.core.contract import LABEL, PROBABILITIES
from zoo.proto import model_config_pb2 as mc
from zoo.server.errors import ModelNotFound, ModelNotReady, kind
from zoo.server.inference import InferenceCall, InferenceResult, InferRequest, call_for, finish
from zoo.server.metrics import Metrics, VersionStats
from zoo.server.payload_log import PayloadLog, PayloadRecord
from zoo.server.registry import LoadedVersion, Registry
from zoo.server.settings import ServerSettings
from zoo.server.shm import SharedMemory
from zoo.server.tracing import RequestTimes, Tracing

log = logging.getLogger("zoo.server")
SERVER_NAME = "zoo"
DRAINING = "the server is shutting down: this request was not started; send it to another instance"
# How long a drain waits after the last refused request before the transports stop: a client told the server is
# draining has moved on by then, so nothing is left in gRPC's queue to be cancelled when it stops.
DRAIN_QUIET_S = 1.0


@dataclass(slots=True)
class Pending:
    """A request queued on a model: its version, its checked call, the future of its outputs, and when it came."""

    lv: LoadedVersion
    call: InferenceCall
    future: asyncio.Future
    started: float
    request: InferRequest
    checked: float = 0.0  # time.perf_counter() once the request was checked and queued (a trace's decode span ends)


EXTENSIONS = ("model_repository", "statistics", "parameters", "model_configuration")
SHM_EXTENSION = "system_shared_memory"


class DataPlane:
    """Health, metadata, inference, statistics and repository operations over the registry."""

    def __init__(
        self,
        registry: Registry,
        metrics: Metrics,
        settings: ServerSettings,
        *,
        stats_folder: str | None = None,
        announce: Callable[[tuple], None] | None = None,
    ):
        self.registry = registry
        self.metrics = metrics
        self.settings = settings
        self.stats_folder = stats_folder  # under --workers: where the other workers' statistics snapshots are
        self.announce = announce  # under --workers: tells the supervisor about a change every worker must make
        self.shm = SharedMemory(allowed=settings.allow_shared_memory)
        self.payload_log: PayloadLog | None = None  # --payload-log / --payload-log-url: set by the server at start
        self.tracing: Tracing | None = None  # --otlp-endpoint (or OTEL_EXPORTER_OTLP_ENDPOINT): set by the server
        self.started = False
        self.shutting_down = False  # drain() began: new requests are refused, accepted ones finish
        self._in_flight = 0  # requests started and not yet done
        self._last_refused = 0.0  # time.monotonic() of the last request refused while draining
        self._on_drain: set[Callable[[], None]] = set()

    # health

    def ready(self) -> bool:
        """Ready once start-up loading is over and until draining starts (a broken model shows in ModelReady)."""
        return self.started and not self.shutting_down

    async def model_ready(self, name: str, version: str = "") -> bool:
        """Whether the model (version) can serve; ModelNotFound for an unknown one."""
        try:
            await self.lookup(name, version)
        except ModelNotReady:
            return False
        return not self.shutting_down

    # metadata

    def server_metadata(self) -> tuple[str, str, tuple[str, ...]]:
        """(name, version, extensions) of the server."""
        return SERVER_NAME, __version__, EXTENSIONS + ((SHM_EXTENSION,) if self.shm.allowed else ())

    async def lookup(self, name: str, version: str = "") -> LoadedVersion:
        """The version serving (name, version); ModelNotFound (saying how to load a model that is on disk) or ModelNotReady."""
        try:
            return self.registry.get(name, version)
        except ModelNotFound as e:
            if name in self.registry.names():
                raise  # a known model without that version
            raise await self.registry.explain_not_found(name) from e

    def versions(self, name: str) -> list[str]:
        """The loaded versions of a model, ascending."""
        return [str(v) for v in sorted(self.registry.entry(name).loaded)]

    def model_config(self, lv: LoadedVersion) -> mc.ModelConfig:
        """Triton's ModelConfig of a loaded version: its config.pbtxt plus what only the server knows."""
        runtime = {contract.CONFIG_EXECUTION_PROVIDER: lv.provider, contract.CONFIG_VERSION: str(lv.version)}
        return model_config.build(lv.card, self.settings.batching, runtime=runtime)

    def statistics(self, name: str = "", version: str = "") -> list[tuple[str, int, VersionStats]]:
        """(name, version, counters) of the asked model and version, or of every loaded version."""
        out: list[tuple[str, int, VersionStats]] = []
        for n in [name] if name else self.registry.names():
            entry = self.registry.entry(n)
            versions = [self.registry.get(n, version).version] if version else sorted(entry.loaded)
            out.extend((n, v, self.metrics.merged_stats(n, v, self.stats_folder)) for v in versions)
        return out

    # inference

    async def infer(self, request: InferRequest) -> InferenceResult:
        """Look the model up, check the request against its card, run it through the batcher and finish it."""
        try:
            pending = self.start(request)
        except ModelNotFound:
            if request.model in self.registry.names():
                raise  # a known model without that version
            raise await self.registry.explain_not_found(request.model) from None
        try:
            await pending.future
        except BaseException:
            pending.future.cancel()  # a caller that went away: the batcher skips its rows
            if not pending.future.cancelled():
                return self.complete(pending)  # records the failure and raises it
            raise
        return self.complete(pending)

    def start(self, request: InferRequest) -> Pending:
        """Look the model up, check the request against its card and queue it, all at once; the returned future
        completes with it.

        Lookup, checking and the enqueue run without an await in between, so a version swap can't retire the
        batcher picked before the rows are queued on it. Errors are raised (and recorded) here.
        """
        if self.shutting_down:
            self._last_refused = time.monotonic()
            raise ModelNotReady(DRAINING)
        started = time.perf_counter()
        lv = None
        try:
            lv = self.registry.get(request.model, request.version)
            call = call_for(lv.card, request)
            if request.output_regions:  # before the model runs: a region too small fails fast
                self.shm.check_outputs(request.output_regions, lv.card.outputs, len(call.rows))
            pending = Pending(lv, call, lv.batcher.enqueue(call.rows), started, request, time.perf_counter())
            self._in_flight += 1
            pending.future.add_done_callback(self._done)
            return pending
        except Exception as e:
            # Only names the server knows are recorded: clients could otherwise grow the label set without bound.
            if lv is not None or isinstance(e, ModelNotReady):
                self.metrics.request_done(request.model, lv.version if lv else None, 0, time.perf_counter() - started, kind(e))
            raise

    def _done(self, _future: asyncio.Future) -> None:
        self._in_flight -= 1

    # draining

    def on_drain(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` when the drain begins (a stream stops taking requests); returns the function that unhooks it."""
        self._on_drain.add(callback)
        return lambda: self._on_drain.discard(callback)

    def begin_drain(self) -> None:
        """Refuse new requests (ModelNotReady, DRAINING) from now on; those started already run to the end."""
        self.shutting_down = True
        self._last_refused = time.monotonic()
        for callback in list(self._on_drain):
            callback()

    async def drained(self, quiet_s: float = DRAIN_QUIET_S, step_s: float = 0.02) -> None:
        """Return once no started request is left and none has been refused for quiet_s (the caller bounds the wait)."""
        while self._in_flight or time.monotonic() - self._last_refused < quiet_s:
            await asyncio.sleep(step_s)

    def complete(self, pending: Pending) -> InferenceResult:
        """The answer of a started request whose future is done (its error raised and recorded when it failed)."""
        lv, call = pending.lv, pending.call
        name = lv.card.name
        try:
            result = InferenceResult(name, lv.version, call.request_id, finish(call, pending.future.result(), lv.card))
        except Exception as e:
            self.metrics.request_done(name, lv.version, len(call.rows), time.perf_counter() - pending.started, kind(e))
            if self.tracing is not None:
                self._trace(pending, str(e)[:200])
            raise
        seconds = time.perf_counter() - pending.started
        self.metrics.request_done(name, lv.version, len(call.rows), seconds, None)
        if self.metrics.monitor is not None or self.payload_log is not None:
            self._watch(lv, call, pending.future.result(), result, seconds)
        if self.tracing is not None:
            self._trace(pending)
        return result

    def _trace(self, pending: Pending, error: str = "") -> None:
        """Record a request's spans from the times its steps ended (perf_counter values turned into wall-clock ns)."""
        assert self.tracing is not None
        now_ns, now = time.time_ns(), time.perf_counter()

        def wall(t: float) -> int:
            return now_ns - int((now - t) * 1e9) if t else 0

        batch = getattr(pending.future, "batch", None) or (0.0, 0.0, len(pending.call.rows))  # a split request: none
        request = pending.request
        times = RequestTimes(
            received=request.received_ns or wall(pending.started),
            decoded=wall(pending.checked),
            batch_started=wall(batch[0]),
            batch_done=wall(batch[1]),
            encoded=now_ns,
        )
        try:
            self.tracing.record(request.trace, request.model, pending.lv.version, len(pending.call.rows), batch[2], times, error)
        except Exception:  # tracing must never fail a request
            log.exception("tracing: a request's spans were not recorded")

    def _watch(self, lv: LoadedVersion, call: InferenceCall, graph: dict, result: InferenceResult, seconds: float) -> None:
        """Hand an answered request to the monitor and, when sampled, to the payload log (neither does work here)."""
        card = lv.card
        p = graph[PROBABILITIES]
        if LABEL in result.outputs:
            labels = result.outputs[LABEL]
        elif call.threshold is None or call.threshold == card.default_threshold:
            labels = graph[LABEL]
        else:  # the answer's decision at the request's threshold, though the client did not ask for labels
            labels = decision.labels(p, card.task, call.threshold)
        if self.metrics.monitor is not None:
            self.metrics.monitor.observe(card, call.rows, p, labels)
        plog = self.payload_log
        if plog is not None and plog.sampled():
            outputs = {**result.outputs, LABEL: labels} if LABEL not in result.outputs else result.outputs
            plog.put(
                PayloadRecord(card.name, lv.version, call.request_id, time.time_ns(), call.rows, call.threshold, outputs, seconds * 1e3)
            )

    # repository

    async def index(self, ready_only: bool = False) -> list[tuple[str, str, str, str]]:
        """(name, version, state, reason) rows of the repository."""
        rows = await self.registry.index()
        return [r for r in rows if r[2] == "READY"] if ready_only else rows

    async def load(self, name: str) -> None:
        """Load or reload a model (explicit model control); under --workers, every worker does."""
        await self.registry.load(name)
        self._announce("load", name)

    async def unload(self, name: str) -> None:
        """Unload a model (explicit model control); under --workers, every worker does."""
        await self.registry.unload(name)
        self._announce("unload", name)

    def register_region(self, name: str, key: str, offset: int, byte_size: int) -> None:
        """Register a shared-memory region; under --workers, in every worker (a client's calls may reach any)."""
        self.shm.register(name, key, offset, byte_size)
        self._announce("shm_register", name, key, offset, byte_size)

    def unregister_region(self, name: str) -> None:
        """Unregister a shared-memory region ('' : all), everywhere."""
        self.shm.unregister(name)
        self._announce("shm_unregister", name)

    def _announce(self, *op) -> None:
        if self.announce is not None:
            self.announce(op)

    async def apply(self, op: tuple) -> None:
        """Make a change another worker announced (not announced again)."""
        kind, *args = op
        try:
            if kind == "load":
                await self.registry.load(*args)
            elif kind == "unload":
                await self.registry.unload(*args)
            elif kind == "shm_register":
                self.shm.register(*args)
            elif kind == "shm_unregister":
                self.shm.unregister(*args)
        except Exception as e:  # the worker that took the call already answered it; log and go on
            log.error("applying %s from another worker failed: %s", op, e)
