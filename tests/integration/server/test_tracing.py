"""Traces from a real server reach a local OTLP/HTTP receiver, in the caller's trace, over gRPC (metadata), HTTP
(header) and a stream; a zoo.client call inside a span carries that span's context."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from tests.integration.http.http_helpers import infer, infer_json
from tests.integration.server.server_helpers import ThreadServer, infer_request, settings_for
from tests.otlp_receiver import otlp_receiver

from zoo.proto import grpc_service_pb2 as pb
from zoo.proto import grpc_service_pb2_grpc as pb_grpc

pytest.importorskip("opentelemetry.sdk")

STEPS = {"decode", "queue", "model", "encode"}


def _traceparent(n: int) -> tuple[str, str]:
    trace = f"{n:032x}"
    return trace, f"00-{trace}-{n:016x}-01"


def _by_trace(spans) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for s in spans:
        out.setdefault(s.trace_id.hex(), set()).add(s.name)
    return out


def test_spans_join_the_callers_trace_over_grpc_http_and_a_stream(exported_repo):
    x = np.ones((3, 4), np.float32)
    with otlp_receiver() as (url, spans):
        srv = ThreadServer(settings_for(exported_repo, otlp_endpoint=url, trace_sample=0.0)).start()
        try:
            grpc_trace, grpc_parent = _traceparent(1)
            http_trace, http_parent = _traceparent(2)
            stream_trace, stream_parent = _traceparent(3)
            with grpc.insecure_channel(srv.address) as channel:
                stub = pb_grpc.GRPCInferenceServiceStub(channel)
                stub.ModelInfer(infer_request("iris", x, version="1"), metadata=[("traceparent", grpc_parent)])
                stub.ModelInfer(infer_request("iris", x, version="1"))  # no caller trace, sample 0: not traced
                answers = list(stub.ModelStreamInfer(iter([infer_request("iris", x, version="1")]), metadata=[("traceparent", stream_parent)]))
                assert not answers[0].error_message
            assert infer(srv.server.http_port, "iris", infer_json(x), version="1", headers={"traceparent": http_parent}).status == 200
        finally:
            srv.stop()  # shutdown sends the buffered spans
        traces = _by_trace(spans)
    assert set(traces) == {grpc_trace, http_trace, stream_trace}  # the untraced request left none
    for trace in traces.values():
        assert trace == {"infer iris", *STEPS}
    root = next(s for s in spans if s.name == "infer iris" and s.trace_id.hex() == grpc_trace)
    assert root.parent_span_id.hex() == f"{1:016x}"
    attributes = {a.key: a.value for a in root.attributes}
    assert attributes["zoo.rows"].int_value == 3 and attributes["zoo.version"].int_value == 1


def test_a_zoo_client_call_inside_a_span_is_traced_under_it(exported_repo):
    from opentelemetry.sdk.trace import TracerProvider

    from zoo.client import ZooClient

    tracer = TracerProvider().get_tracer("test")
    with otlp_receiver() as (url, spans):
        srv = ThreadServer(settings_for(exported_repo, otlp_endpoint=url, trace_sample=0.0)).start()
        try:
            with ZooClient(srv.address) as client, tracer.start_as_current_span("caller") as span:
                client.predict("iris", np.ones((2, 4), np.float32), version=1)
                caller = span.get_span_context()
        finally:
            srv.stop()
    assert {int.from_bytes(s.trace_id, "big") for s in spans} == {caller.trace_id}
    root = next(s for s in spans if s.name == "infer iris")
    assert int.from_bytes(root.parent_span_id, "big") == caller.span_id
