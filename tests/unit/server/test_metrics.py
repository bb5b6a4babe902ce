"""Metrics: the per-version counters behind ModelStatistics and the Prometheus samples, read back from the
server's own registry and over its /metrics HTTP endpoint."""

from __future__ import annotations

import urllib.request

import pytest

from zoo.server.batcher import BatchReport
from zoo.server.metrics import Metrics, VersionStats

CPU = "CPUExecutionProvider"


def sample(m: Metrics, name: str, **labels) -> float | None:
    """One sample of the server's own Prometheus registry (None when absent)."""
    return m.registry.get_sample_value(name, labels)


def scrape(port: int) -> str:
    """The exposition text served on 127.0.0.1:port/metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        return r.read().decode()


# batches


def test_batch_hook_counts_a_successful_batch_in_stats_and_prometheus():
    m = Metrics()
    record = m.batch_hook("iris", 2)
    record(BatchReport(rows=3, requests=2, queue_s=[0.25, 0.5], compute_s=0.125, ok=True))
    record(BatchReport(rows=3, requests=1, queue_s=[0.0], compute_s=0.5, ok=True))
    record(BatchReport(rows=1, requests=1, queue_s=[0.125], compute_s=0.25, ok=True))
    s = m.version_stats("iris", 2)
    assert (s.execution_count, s.compute_count, s.compute_ns) == (3, 4, 875_000_000)
    assert (s.queue_count, s.queue_ns) == (4, 875_000_000)
    assert s.batch_sizes == {3: [2, 625_000_000], 1: [1, 250_000_000]}
    assert sample(m, "zoo_batch_size_count", model="iris") == 3
    assert sample(m, "zoo_batch_size_sum", model="iris") == 7
    assert sample(m, "zoo_batch_size_bucket", model="iris", le="1.0") == 1
    assert sample(m, "zoo_queue_time_seconds_count", model="iris") == 4
    assert sample(m, "zoo_queue_time_seconds_sum", model="iris") == 0.875


def test_batch_hook_counts_a_failed_batch_as_queued_but_not_executed():
    m = Metrics()
    m.batch_hook("iris", 1)(BatchReport(rows=4, requests=2, queue_s=[0.5, 0.25], compute_s=1.0, ok=False))
    s = m.version_stats("iris", 1)
    assert (s.queue_count, s.queue_ns) == (2, 750_000_000)
    assert (s.execution_count, s.compute_count, s.compute_ns, s.batch_sizes) == (0, 0, 0, {})
    assert sample(m, "zoo_batch_size_count", model="iris") == 1  # the rows were still offered to the model


def test_hooks_of_two_versions_keep_separate_counters():
    m = Metrics()
    m.batch_hook("iris", 1)(BatchReport(1, 1, [0.0], 0.0, True))
    assert m.version_stats("iris", 2) == VersionStats()
    assert m.version_stats("iris", 1).execution_count == 1


# requests


def test_request_done_counts_a_success_in_stats_and_prometheus():
    m = Metrics()
    m.request_done("iris", 2, rows=5, seconds=0.25, code=None)
    m.request_done("iris", 2, rows=3, seconds=0.5, code=None)
    s = m.version_stats("iris", 2)
    assert (s.success_count, s.success_ns, s.inference_count) == (2, 750_000_000, 8)
    assert (s.fail_count, s.fail_ns) == (0, 0) and s.last_inference_ms > 0
    assert sample(m, "zoo_requests_total", model="iris", version="2") == 2
    assert sample(m, "zoo_request_latency_seconds_count", model="iris") == 2
    assert sample(m, "zoo_request_latency_seconds_sum", model="iris") == 0.75
    assert sample(m, "zoo_request_failures_total", model="iris", version="2", code="InvalidInput") is None


def test_request_done_counts_failures_with_their_code_label():
    m = Metrics()
    m.request_done("iris", 2, rows=5, seconds=0.5, code="InvalidInput")
    m.request_done("iris", 2, rows=5, seconds=0.25, code="InvalidInput")
    m.request_done("iris", 2, rows=5, seconds=0.25, code="Overloaded")
    s = m.version_stats("iris", 2)
    assert (s.fail_count, s.fail_ns, s.success_count, s.inference_count, s.last_inference_ms) == (3, 1_000_000_000, 0, 0, 0)
    assert sample(m, "zoo_request_failures_total", model="iris", version="2", code="InvalidInput") == 2
    assert sample(m, "zoo_request_failures_total", model="iris", version="2", code="Overloaded") == 1
    assert sample(m, "zoo_requests_total", model="iris", version="2") == 3


def test_request_done_without_a_version_counts_in_prometheus_only():
    m = Metrics()
    m.request_done("iris", None, rows=1, seconds=0.5, code="ModelNotReady")
    assert sample(m, "zoo_requests_total", model="iris", version="") == 1
    assert sample(m, "zoo_request_failures_total", model="iris", version="", code="ModelNotReady") == 1
    assert m.stats == {}


# provider gauge and queues


def test_forget_removes_the_provider_gauge_of_that_version_only():
    m = Metrics()
    m.set_provider("iris", 1, CPU)
    m.set_provider("iris", 2, CPU)
    assert sample(m, "zoo_model_provider", model="iris", version="1", provider=CPU) == 1
    m.forget("iris", 1, CPU)
    assert sample(m, "zoo_model_provider", model="iris", version="1", provider=CPU) is None
    assert sample(m, "zoo_model_provider", model="iris", version="2", provider=CPU) == 1
    m.forget("iris", 1, CPU)  # forgetting twice, or what was never set, is harmless
    m.forget("nope", 9, "CUDAExecutionProvider")


def test_watch_queues_publishes_queued_rows_read_at_scrape_time():
    m = Metrics()
    queues = [("iris", 1, 0), ("iris", 2, 5)]
    m.watch_queues(lambda: list(queues))
    assert sample(m, "zoo_queued_rows", model="iris", version="2") == 5
    queues[1] = ("iris", 2, 7)
    queues.append(("breast-cancer", 1, 3))
    assert sample(m, "zoo_queued_rows", model="iris", version="2") == 7
    assert sample(m, "zoo_queued_rows", model="breast-cancer", version="1") == 3
    queues.clear()
    assert sample(m, "zoo_queued_rows", model="iris", version="2") is None


# HTTP endpoint


def test_serve_http_on_port_0_serves_metrics_and_close_stops_it():
    m = Metrics()
    m.request_done("iris", 1, rows=1, seconds=0.5, code=None)
    m.watch_queues(lambda: [("iris", 1, 4)])
    port = m.serve_http("127.0.0.1", 0)
    try:
        assert port > 0
        text = scrape(port)
        assert 'zoo_requests_total{model="iris",version="1"} 1.0' in text
        assert 'zoo_queued_rows{model="iris",version="1"} 4.0' in text
    finally:
        m.close()
    with pytest.raises(OSError):  # refused (URLError and ConnectionError are both OSErrors)
        scrape(port)
    m.close()  # a second close is harmless
