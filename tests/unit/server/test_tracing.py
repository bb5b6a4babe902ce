"""Traces reach a real local OTLP/HTTP receiver: the request's span and its four steps, in the caller's trace."""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.sdk")
from tests.otlp_receiver import otlp_receiver  # noqa: E402
from zoo.server.tracing import RequestTimes, Tracing, traces_url  # noqa: E402

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


@pytest.fixture
def receiver():
    with otlp_receiver() as (url, spans):
        yield url, spans


def test_the_endpoint_takes_the_sdk_base_url_form():
    assert traces_url("http://collector:4318") == "http://collector:4318/v1/traces"
    assert traces_url("http://collector:4318/v1/traces") == "http://collector:4318/v1/traces"


def test_a_request_span_joins_the_callers_trace_with_its_four_steps(receiver):
    url, spans = receiver
    tracing = Tracing(url, sample=0.0)  # nothing of our own is sampled: the caller's sampled trace is still followed
    t0 = 1_764_000_000_000_000_000
    times = RequestTimes(received=t0, decoded=t0 + 1_000, batch_started=t0 + 5_000, batch_done=t0 + 9_000, encoded=t0 + 10_000)
    tracing.record({"Traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"}, "iris", 2, 3, 16, times)
    tracing.record({}, "iris", 2, 1, 1, times)  # no caller, sample 0: not recorded
    tracing.close()
    by_name = {s.name: s for s in spans}
    assert sorted(by_name) == ["decode", "encode", "infer iris", "model", "queue"] and len(spans) == 5
    root = by_name["infer iris"]
    assert {s.trace_id.hex() for s in spans} == {CALLER_TRACE} and root.parent_span_id.hex() == CALLER_SPAN
    assert all(by_name[n].parent_span_id == root.span_id for n in ("decode", "queue", "model", "encode"))
    assert (by_name["queue"].start_time_unix_nano, by_name["queue"].end_time_unix_nano) == (t0 + 1_000, t0 + 5_000)
    attributes = {a.key: a.value for a in root.attributes}
    assert attributes["zoo.model"].string_value == "iris" and attributes["zoo.version"].int_value == 2
    assert attributes["zoo.rows"].int_value == 3 and attributes["zoo.batch_rows"].int_value == 16


def test_requests_without_a_caller_are_sampled_at_the_fraction(receiver):
    url, spans = receiver
    tracing = Tracing(url, sample=1.0)
    t0 = 1_764_000_000_000_000_000
    tracing.record({}, "wine", 1, 1, 1, RequestTimes(received=t0, decoded=t0 + 1, batch_started=t0 + 2, batch_done=t0 + 3, encoded=t0 + 4))
    tracing.close()
    assert {s.name for s in spans} == {"infer wine", "decode", "queue", "model", "encode"}
    assert len({s.trace_id for s in spans}) == 1
