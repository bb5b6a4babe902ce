"""Reflection lists our services; a full queue answers RESOURCE_EXHAUSTED and the server keeps serving."""

from __future__ import annotations

import asyncio

import grpc
import numpy as np
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from tests.integration.server.server_helpers import ThreadServer, decode_response, infer_request, reference, rows_for, settings_for

from zoo.proto import grpc_service_pb2_grpc as pb_grpc


def test_reflection_lists_the_inference_and_health_services(server):
    with grpc.insecure_channel(server.address) as ch:
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        (answer,) = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10)
    names = {s.name for s in answer.list_services_response.service}
    assert {"inference.GRPCInferenceService", "grpc.health.v1.Health"} <= names


def test_full_queue_answers_resource_exhausted_and_loses_nothing_else(model_repo):
    # A queue of 8 rows: 64 callers of 4 rows arriving together cannot all be queued. The server's loop is
    # frozen while they are sent, so they arrive together whatever the machine's timing, and batches run in
    # the executor (inline_elements=0), so the loop goes on accepting them while one runs.
    srv = ThreadServer(settings_for(model_repo, max_queue_rows=8, max_batch_size=4, inline_elements=0)).start()
    x = rows_for(model_repo, "iris", 4, seed=3)
    want = reference(model_repo, "iris", 2, x)["probabilities"]

    async def burst():
        async with grpc.aio.insecure_channel(srv.address) as ch:
            await ch.channel_ready()
            stub = pb_grpc.GRPCInferenceServiceStub(ch)
            srv.freeze(1.0)
            calls = [stub.ModelInfer(infer_request("iris", x), timeout=20) for _ in range(64)]
            return await asyncio.gather(*calls, return_exceptions=True)

    try:
        results = asyncio.run(burst())
        refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
        answered = [r for r in results if not isinstance(r, BaseException)]
        assert refused and answered, results
        assert all(r.code() == grpc.StatusCode.RESOURCE_EXHAUSTED for r in refused), [r.details() for r in refused]
        assert "overloaded" in refused[0].details()
        for r in answered:  # every accepted request got exactly its own rows
            np.testing.assert_allclose(decode_response(r)["probabilities"], want, atol=1e-6)
        with grpc.insecure_channel(srv.address) as ch:  # and the server still serves
            got = decode_response(pb_grpc.GRPCInferenceServiceStub(ch).ModelInfer(infer_request("iris", x), timeout=10))
        np.testing.assert_allclose(got["probabilities"], want, atol=1e-6)
    finally:
        srv.stop()
