"""The model browser's serving statistics come from the ModelStatistics counters, computed as the page states them."""

from zoo.server.browser.catalog import serving
from zoo.server.metrics import VersionStats


def test_serving_statistics_from_the_counters():
    s = VersionStats(inference_count=7, execution_count=3, success_count=4, success_ns=8_000_000, fail_count=1, fail_ns=5,
                     queue_count=4, queue_ns=2_000_000, compute_count=4, compute_ns=1_000_000, last_inference_ms=123,
                     batch_sizes={1: [1, 100], 3: [2, 200]})
    got = serving(s)
    assert (got.requests, got.failures, got.rows, got.batches, got.last_inference_ms) == (5, 1, 7, 3, 123)
    assert got.mean_batch_rows == (1 * 1 + 3 * 2) / 3
    assert (got.mean_latency_ms, got.mean_queue_ms, got.mean_compute_ms) == (2.0, 0.5, 0.25)


def test_a_version_that_never_served_has_no_means():
    got = serving(VersionStats())
    assert (got.requests, got.batches, got.mean_batch_rows, got.mean_latency_ms, got.mean_queue_ms) == (0, 0, None, None, None)
