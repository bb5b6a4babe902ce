"""Triton's ModelStatisticsResponse from the server's counters: one message, whichever transport sends it."""

from __future__ import annotations

from collections.abc import Iterable

from zoo.proto import grpc_service_pb2 as pb
from zoo.server.metrics import VersionStats


def message(rows: Iterable[tuple[str, int, VersionStats]]) -> pb.ModelStatisticsResponse:
    """The statistics of DataPlane.statistics()'s (name, version, counters) rows."""
    resp = pb.ModelStatisticsResponse()
    for name, version, stats in rows:
        fill(resp.model_stats.add(name=name, version=str(version)), stats)
    return resp


def fill(m: pb.ModelStatistics, s: VersionStats) -> None:
    """Copy one version's counters into its ModelStatistics."""
    m.last_inference, m.inference_count, m.execution_count = s.last_inference_ms, s.inference_count, s.execution_count
    st = m.inference_stats
    st.success.count, st.success.ns = s.success_count, s.success_ns
    st.fail.count, st.fail.ns = s.fail_count, s.fail_ns
    st.queue.count, st.queue.ns = s.queue_count, s.queue_ns
    st.compute_infer.count, st.compute_infer.ns = s.compute_count, s.compute_ns
    # The whole model call is timed as compute_infer; perf_analyzer requires the three compute
    # counts to agree, so input/output preparation report the same count with no time of their own.
    st.compute_input.count = st.compute_output.count = s.compute_count
    for rows, (count, ns) in sorted(s.batch_sizes.items()):
        b = m.batch_stats.add(batch_size=rows)
        b.compute_infer.count, b.compute_infer.ns = count, ns
        b.compute_input.count = b.compute_output.count = count
