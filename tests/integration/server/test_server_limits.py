"""Reflection lists our services; a full queue answers RESOURCE_EXHAUSTED and the server keeps serving."""

from __future__ import annotations

import threading

import grpc
import numpy as np
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from tests.integration.server.server_helpers import (
    HeldModel, ThreadServer, decode_response, infer_request, reference, rows_for, settings_for, wait_until,
)

from zoo.proto import grpc_service_pb2_grpc as pb_grpc


def test_reflection_lists_the_inference_and_health_services(server):
    with grpc.insecure_channel(server.address) as ch:
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        (answer,) = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10)
    names = {s.name for s in answer.list_services_response.service}
    assert {"inference.GRPCInferenceService", "grpc.health.v1.Health"} <= names


def test_full_queue_answers_resource_exhausted_and_loses_nothing_else(model_repo):
    # A queue of 8 rows behind a model held by a gate: one batch runs (held), two requests fill the queue, and
    # every request after them is refused, whatever the machine's timing. Then the gate opens.
    srv = ThreadServer(settings_for(model_repo, max_queue_rows=8, max_batch_size=4)).start()
    x = rows_for(model_repo, "iris", 4, seed=3)
    want = reference(model_repo, "iris", 2, x)["probabilities"]
    try:
        with HeldModel(srv, "iris") as held, grpc.insecure_channel(srv.address) as ch:
            stub = pb_grpc.GRPCInferenceServiceStub(ch)
            accepted = [stub.ModelInfer.future(infer_request("iris", x), timeout=60)]
            held.wait_held()
            accepted += [stub.ModelInfer.future(infer_request("iris", x), timeout=60) for _ in range(2)]
            wait_until(lambda: held.batcher.queued_rows == 8, "two requests to fill the queue")
            refused = [stub.ModelInfer.future(infer_request("iris", x), timeout=60) for _ in range(10)]
            for r in refused:
                with pytest.raises(grpc.RpcError) as e:
                    r.result()
                assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "overloaded" in e.value.details()
            held.release()
            for r in accepted:  # every accepted request got exactly its own rows
                np.testing.assert_allclose(decode_response(r.result())["probabilities"], want, atol=1e-6)
            got = decode_response(stub.ModelInfer(infer_request("iris", x), timeout=60))  # and the server still serves
        np.testing.assert_allclose(got["probabilities"], want, atol=1e-6)
    finally:
        srv.stop()


def test_a_request_above_the_queue_bound_is_streamed_through_the_batcher_not_refused(model_repo):
    # The README promises large requests are split, not refused: 70,000 rows through a queue of 4,096.
    srv = ThreadServer(settings_for(model_repo, max_batch_size=256, max_queue_rows=4096)).start()
    try:
        x = rows_for(model_repo, "iris", 70_000, seed=12)
        with grpc.insecure_channel(srv.address) as ch:
            got = decode_response(pb_grpc.GRPCInferenceServiceStub(ch).ModelInfer(infer_request("iris", x), timeout=120))
        want = reference(model_repo, "iris", 2, x)
        np.testing.assert_allclose(got["probabilities"], want["probabilities"], atol=1e-6)
        np.testing.assert_array_equal(got["label"], want["label"])
    finally:
        srv.stop()


def test_an_idle_stream_is_closed_after_its_timeout(model_repo):
    srv = ThreadServer(settings_for(model_repo, stream_idle_timeout=0.5)).start()
    try:
        with grpc.insecure_channel(srv.address) as ch:
            stub = pb_grpc.GRPCInferenceServiceStub(ch)
            gate = threading.Event()

            def requests():
                yield infer_request("iris", np.ones((1, 4), np.float32))
                gate.wait(60)  # then nothing more: the stream goes idle

            answers = stub.ModelStreamInfer(requests(), timeout=60)
            assert next(answers).infer_response.outputs  # the first request is answered
            with pytest.raises(grpc.RpcError) as e:
                next(answers)
            gate.set()
        assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED and "--stream-idle-timeout" in e.value.details()
    finally:
        srv.stop()


def test_rpcs_beyond_the_concurrency_cap_are_refused_and_the_held_ones_still_finish(model_repo):
    srv = ThreadServer(settings_for(model_repo, max_concurrent_rpcs=3, max_streams_per_peer=3)).start()
    gates = [threading.Event() for _ in range(3)]
    try:
        with grpc.insecure_channel(srv.address) as ch:
            stub = pb_grpc.GRPCInferenceServiceStub(ch)

            def held(gate):
                yield infer_request("iris", np.ones((1, 4), np.float32))
                gate.wait(60)

            streams = [stub.ModelStreamInfer(held(g), timeout=60) for g in gates]
            for s in streams:  # each stream is open on the server: its first request was answered
                assert next(s).infer_response.outputs
            with pytest.raises(grpc.RpcError) as e:
                stub.ModelInfer(infer_request("iris", np.ones((1, 4), np.float32)), timeout=60)
            assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            for g in gates:
                g.set()
            for s in streams:
                assert list(s) == []  # ended cleanly
            assert stub.ModelInfer(infer_request("iris", np.ones((1, 4), np.float32)), timeout=60).outputs
    finally:
        for g in gates:
            g.set()
        srv.stop()
