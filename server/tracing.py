"""OpenTelemetry traces of inference requests, sent over OTLP/HTTP by the OpenTelemetry SDK.

A request's span has four children: decode, queue (waiting for its batch), model (the batch's onnxruntime call) and
encode. The request path only notes when each step ended (`RequestTimes`); the spans are made once the answer is
out, with those times, so a request that is not traced costs nothing and the batcher needs no span context. An
incoming W3C `traceparent` (an HTTP header, or gRPC metadata) makes the request's span a child of the caller's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"  # the SDK's standard variable: a base URL, /v1/traces is added
TRACEPARENT = "traceparent"


@dataclass(slots=True)
class RequestTimes:
    """When each step of one request ended (time.time_ns()); 0 for a step that did not happen."""

    received: int
    decoded: int = 0
    batch_started: int = 0  # the request's (first) batch went to the model
    batch_done: int = 0
    encoded: int = 0


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL of an endpoint: a base URL (as OTEL_EXPORTER_OTLP_ENDPOINT) gets /v1/traces."""
    return endpoint if endpoint.rstrip("/").endswith("/v1/traces") else endpoint.rstrip("/") + "/v1/traces"


def endpoint_from(flag: str) -> str:
    """The endpoint to send to: the flag, else the SDK's standard variable, else '' (tracing off)."""
    return flag or os.environ.get(ENDPOINT_VARIABLE, "")


class Tracing:
    """A tracer provider exporting to one OTLP/HTTP endpoint, sampling a fraction of the requests that come without
    a sampled parent (a caller's sampled trace is always followed)."""

    def __init__(self, endpoint: str, sample: float, service_name: str = "zoo"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.url = traces_url(endpoint)
        # a provider of our own, not the process-wide one: an embedding program keeps its own tracing
        self.provider = TracerProvider(
            resource=Resource.create({"service.name": service_name}), sampler=ParentBased(TraceIdRatioBased(sample))
        )
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=self.url)))
        self.tracer = self.provider.get_tracer("zoo.server")
        self.propagator = TraceContextTextMapPropagator()

    def record(
        self, carrier: Mapping[str, str], model: str, version: int, rows: int, batch_rows: int, times: RequestTimes, error: str = ""
    ) -> None:
        """Emit the spans of one answered request; `carrier` holds the caller's traceparent, if it sent one."""
        from opentelemetry import trace
        from opentelemetry.trace import SpanKind, Status, StatusCode

        parent = self.propagator.extract(carrier={k.lower(): v for k, v in carrier.items()})
        attributes: dict[str, str | int] = {"zoo.model": model, "zoo.version": version, "zoo.rows": rows, "zoo.batch_rows": batch_rows}
        span = self.tracer.start_span(
            f"infer {model}", context=parent, kind=SpanKind.SERVER, start_time=times.received, attributes=attributes
        )
        if not span.get_span_context().trace_flags.sampled:
            return  # not sampled: nothing to record
        inside = trace.set_span_in_context(span)
        steps = [
            ("decode", times.received, times.decoded),
            ("queue", times.decoded, times.batch_started),
            ("model", times.batch_started, times.batch_done),
            ("encode", times.batch_done, times.encoded),
        ]
        for name, start, end in steps:
            if start and end:
                self.tracer.start_span(name, context=inside, start_time=start, attributes=attributes).end(end_time=end)
        if error:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end(end_time=times.encoded or max(t for _n, _s, t in steps) or times.received)

    def close(self) -> None:
        """Send what is buffered and stop the exporter (on shutdown)."""
        self.provider.shutdown()
