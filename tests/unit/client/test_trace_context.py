"""The client carries the caller's trace context (W3C traceparent) in every call's metadata, beside the token."""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.sdk")

from zoo.client import ZooClient, codec  # noqa: E402


def test_an_active_span_travels_as_traceparent_beside_the_token():
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("test")
    client = ZooClient("127.0.0.1:1", token="secret")  # no call is made: only the metadata is built
    try:
        assert client._metadata == (("authorization", "Bearer secret"),)  # no span: no trace context
        with tracer.start_as_current_span("caller") as span:
            ctx = span.get_span_context()
            metadata = dict(client._metadata)
        assert metadata["authorization"] == "Bearer secret"
        assert metadata["traceparent"] == f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"
    finally:
        client.close()
    assert codec.trace_metadata() == ()
