"""Reflection lists our services; a full queue answers RESOURCE_EXHAUSTED and the server keeps serving; streams that
never send are closed and one client address cannot take every RPC slot; an answer too big to send is refused first."""

from __future__ import annotations

import socket
import threading

import grpc
import numpy as np
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from tests.integration.server.server_helpers import (
    HeldModel, ThreadServer, decode_response, infer_request, reference, rows_for, settings_for, wait_until,
)

from zoo.proto import grpc_service_pb2 as pb
from zoo.proto import grpc_service_pb2_grpc as pb_grpc

HANG_GUARD_S = 60  # only reached if the server hangs


def ipv6_loopback() -> bool:
    """Whether this host has ::1 (a second client address on the same machine)."""
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


def statistics(stub, model: str) -> tuple[int, int]:
    """(inference count, execution count) of the model, all its loaded versions together."""
    stats = stub.ModelStatistics(pb.ModelStatisticsRequest(name=model), timeout=HANG_GUARD_S).model_stats
    return sum(s.inference_count for s in stats), sum(s.execution_count for s in stats)


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
    srv = ThreadServer(settings_for(model_repo, stream_idle_timeout=0.5, stream_first_message_timeout=HANG_GUARD_S)).start()
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


def test_streams_that_send_nothing_are_closed_after_the_first_message_timeout(model_repo):
    srv = ThreadServer(settings_for(model_repo, stream_first_message_timeout=0.2, stream_idle_timeout=300)).start()
    gate = threading.Event()
    try:
        with grpc.insecure_channel(srv.address) as ch:
            stub = pb_grpc.GRPCInferenceServiceStub(ch)

            def silent():
                gate.wait(HANG_GUARD_S)
                return
                yield  # a generator that sends nothing

            streams = [stub.ModelStreamInfer(silent(), timeout=HANG_GUARD_S) for _ in range(3)]
            for s in streams:  # each ends on the server's side; the client-side deadline is only a hang guard
                with pytest.raises(grpc.RpcError) as e:
                    next(s)
                assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, e.value.details()
                assert "--stream-first-message-timeout" in e.value.details()
            assert stub.ModelInfer(infer_request("iris", np.ones((1, 4), np.float32)), timeout=HANG_GUARD_S).outputs
    finally:
        gate.set()
        srv.stop()


def test_one_client_address_cannot_hold_every_rpc_slot_with_idle_streams(model_repo):
    # 8 RPC slots; one address may hold a quarter of them in streams. It opens 10 streams and sends nothing: 2 stay
    # open, 8 are refused at once, and every other caller (unary calls, and streams from another address) is served.
    srv = ThreadServer(settings_for(model_repo, host="localhost", http_port=-1, metrics_port=-1, max_concurrent_rpcs=8)).start()
    gate = threading.Event()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{srv.port}") as ch:
            stub = pb_grpc.GRPCInferenceServiceStub(ch)

            def silent():
                gate.wait(HANG_GUARD_S)
                return
                yield

            ended = threading.Semaphore(0)
            streams = [stub.ModelStreamInfer(silent(), timeout=HANG_GUARD_S) for _ in range(10)]
            for s in streams:
                s.add_done_callback(lambda _call: ended.release())
            for _ in range(8):
                assert ended.acquire(timeout=HANG_GUARD_S), "the streams above the address's share were not refused"
            refused = [s for s in streams if s.done()]
            assert len(refused) == 8  # the other two are open, waiting for a first request (up to 10 s)
            for s in refused:
                assert s.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "--max-streams-per-peer" in s.details(), s.details()
            x = np.ones((1, 4), np.float32)
            for _ in range(8):  # more calls than there are slots: the address's streams hold only two
                assert stub.ModelInfer(infer_request("iris", x), timeout=HANG_GUARD_S).outputs
            if ipv6_loopback():  # a second address on this host: its streams are counted apart
                with grpc.insecure_channel(f"[::1]:{srv.port}") as other:
                    answers = pb_grpc.GRPCInferenceServiceStub(other).ModelStreamInfer(
                        iter([infer_request("iris", x)] * 2), timeout=HANG_GUARD_S
                    )
                    assert [bool(a.infer_response.outputs) for a in answers] == [True, True]
            gate.set()
            for s in streams:
                if s not in refused:
                    assert list(s) == []  # the two open ones end cleanly when their client closes them
    finally:
        gate.set()
        srv.stop()


def test_a_response_above_max_message_bytes_is_refused_before_the_model_runs(model_repo):
    # iris answers 32 bytes a row (probabilities, one-hot, label) for 16 sent: 3,900 rows fit a 64 KiB request but
    # not its answer. The row count says so before the model runs; asking for the label alone fits.
    srv = ThreadServer(settings_for(model_repo, max_message_bytes=65536)).start()
    x = rows_for(model_repo, "iris", 3900, seed=4)
    try:
        with grpc.insecure_channel(srv.address, options=[("grpc.max_receive_message_length", 1 << 24)]) as ch:
            stub = pb_grpc.GRPCInferenceServiceStub(ch)
            before = statistics(stub, "iris")
            with pytest.raises(grpc.RpcError) as e:
                stub.ModelInfer(infer_request("iris", x), timeout=HANG_GUARD_S)
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
            for words in ("--max-message-bytes of 65536", "3900 rows", "ModelStreamInfer", "shared memory"):
                assert words in e.value.details(), e.value.details()
            (streamed,) = stub.ModelStreamInfer(iter([infer_request("iris", x)]), timeout=HANG_GUARD_S)
            assert "--max-message-bytes" in streamed.error_message
            assert statistics(stub, "iris") == before  # the model never ran
            got = decode_response(stub.ModelInfer(infer_request("iris", x, outputs=["label"]), timeout=HANG_GUARD_S))
        np.testing.assert_array_equal(got["label"], reference(model_repo, "iris", 2, x)["label"])
    finally:
        srv.stop()
