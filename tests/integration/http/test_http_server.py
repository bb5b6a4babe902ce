"""The HTTP transport in the server's life: one loop and data plane with gRPC (batches merge), its port, its drain."""

from __future__ import annotations

import socket
import threading

import grpc
import numpy as np
import pytest

from tests.integration.http.http_helpers import call, infer, infer_json, outputs_of
from tests.integration.server.server_helpers import (
    HeldModel,
    ThreadServer,
    decode_response,
    infer_request,
    reference,
    rows_for,
    settings_for,
    wait_until,
)
from zoo.proto import grpc_service_pb2 as pb
from zoo.proto import grpc_service_pb2_grpc as pb_grpc


def test_rest_and_grpc_requests_for_one_model_merge_into_one_batch(model_repo):
    srv = ThreadServer(settings_for(model_repo)).start()
    held = HeldModel(srv, "iris")
    x = rows_for(model_repo, "iris", 6, seed=11)
    want = reference(model_repo, "iris", 2, x)["probabilities"]
    answers: dict[str, object] = {}
    try:
        with grpc.insecure_channel(srv.address) as ch:
            stub = pb_grpc.GRPCInferenceServiceStub(ch)
            first = stub.ModelInfer.future(infer_request("iris", x[:1]), timeout=60)
            held.wait_held()
            over_grpc = stub.ModelInfer.future(infer_request("iris", x[1:3]), timeout=60)
            rest = threading.Thread(target=lambda: answers.setdefault("http", infer(srv.server.http_port, "iris", infer_json(x[3:]))))
            rest.start()
            wait_until(lambda: held.batcher.queued_rows == 5, "a gRPC and an HTTP request queued behind the busy model")
            held.release()
            rest.join(60)
            np.testing.assert_allclose(decode_response(first.result())["probabilities"], want[:1], atol=1e-6)
            np.testing.assert_allclose(decode_response(over_grpc.result())["probabilities"], want[1:3], atol=1e-6)
            np.testing.assert_allclose(outputs_of(answers["http"])["probabilities"], want[3:], atol=1e-6)
            s = stub.ModelStatistics(pb.ModelStatisticsRequest(name="iris", version="2")).model_stats[0]
        assert (s.inference_count, s.execution_count, s.inference_stats.success.count) == (6, 2, 3)
        assert sorted((b.batch_size, b.compute_infer.count) for b in s.batch_stats) == [(1, 1), (5, 1)]
        stats = call(srv.server.http_port, "GET", "/v2/models/iris/versions/2/stats").json()["model_stats"][0]
        assert sorted((b["batch_size"], b["compute_infer"]["count"]) for b in stats["batch_stats"]) == [(1, 1), (5, 1)]
    finally:
        held.release()
        srv.stop()


def test_shutdown_lets_an_http_request_in_flight_finish_and_stops_accepting(model_repo):
    srv = ThreadServer(settings_for(model_repo)).start()
    port = srv.server.http_port
    held = HeldModel(srv, "iris")
    x = rows_for(model_repo, "iris", 3, seed=12)
    answers: dict[str, object] = {}
    try:
        rest = threading.Thread(target=lambda: answers.setdefault("http", infer(port, "iris", infer_json(x))))
        rest.start()
        held.wait_held()
        srv.server.stop()
        wait_until(lambda: srv.server.plane.shutting_down, "the server to start draining")
        # Draining: the port stays open while a request is in flight, and a new request is refused with 503.
        late = infer(port, "iris", infer_json(x))
        assert late.status == 503 and "shutting down" in late.json()["error"], late.body
        held.release()
        rest.join(60)
        assert answers["http"].status == 200
        want = reference(model_repo, "iris", 2, x)["probabilities"]
        np.testing.assert_allclose(outputs_of(answers["http"])["probabilities"], want, atol=1e-6)
        wait_until(lambda: _refused(port), "the HTTP port to close once the drain is over")
    finally:
        held.release()
        srv.stop()


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def test_a_taken_http_port_fails_start_naming_the_flag(model_repo):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(RuntimeError) as e:
            ThreadServer(settings_for(model_repo, http_port=port)).start()
    assert f"--http-port {port}" in str(e.value) and "in use" in str(e.value)


def test_http_port_minus_one_turns_http_off(model_repo):
    srv = ThreadServer(settings_for(model_repo, http_port=-1)).start()
    try:
        assert srv.server.http_port is None
        with grpc.insecure_channel(srv.address) as ch:
            assert pb_grpc.GRPCInferenceServiceStub(ch).ServerReady(pb.ServerReadyRequest()).ready
    finally:
        srv.stop()
