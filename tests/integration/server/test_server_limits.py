"""Reflection lists our services; a full queue answers RESOURCE_EXHAUSTED and the server keeps serving."""

from __future__ import annotations

import threading

import grpc
import numpy as np
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from tests.integration.server.server_helpers import (
    ThreadServer, decode_response, infer_request, reference, rows_for, settings_for, wait_until,
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
    batcher = srv.server.registry.get("iris").batcher
    gate, entered, real = threading.Event(), threading.Event(), batcher.predict

    def gated(rows):
        entered.set()
        assert gate.wait(60)
        return real(rows)

    batcher.predict, batcher.inline_values = gated, 0  # on the model's thread, so the loop keeps serving
    try:
        with grpc.insecure_channel(srv.address) as ch:
            stub = pb_grpc.GRPCInferenceServiceStub(ch)
            accepted = [stub.ModelInfer.future(infer_request("iris", x), timeout=60)]
            wait_until(entered.is_set, "the first batch to be held in the model")
            accepted += [stub.ModelInfer.future(infer_request("iris", x), timeout=60) for _ in range(2)]
            wait_until(lambda: batcher.queued_rows == 8, "two requests to fill the queue")
            refused = [stub.ModelInfer.future(infer_request("iris", x), timeout=60) for _ in range(10)]
            for r in refused:
                with pytest.raises(grpc.RpcError) as e:
                    r.result()
                assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "overloaded" in e.value.details()
            gate.set()
            for r in accepted:  # every accepted request got exactly its own rows
                np.testing.assert_allclose(decode_response(r.result())["probabilities"], want, atol=1e-6)
            got = decode_response(stub.ModelInfer(infer_request("iris", x), timeout=60))  # and the server still serves
        np.testing.assert_allclose(got["probabilities"], want, atol=1e-6)
    finally:
        gate.set()
        srv.stop()
