"""Connection limits of the gRPC port: streams per connection, idle connections closed, keepalive pings sent.

Each test waits for the event it is about; time bounds are only hang guards, far above what the event takes.
"""

from __future__ import annotations

import socket
import threading

import grpc
import numpy as np
import pytest
from tests.integration.server.server_helpers import ThreadServer, infer_request, settings_for

from zoo.proto import grpc_service_pb2_grpc as pb_grpc

HANG_GUARD_S = 60
OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]  # a channel that shares no connection with another


def held_stream(stub, gate: threading.Event):
    """A stream whose first request is answered and which then stays open until the gate opens."""

    def requests():
        yield infer_request("iris", np.ones((1, 4), np.float32))
        gate.wait(HANG_GUARD_S)

    answers = stub.ModelStreamInfer(requests(), timeout=HANG_GUARD_S)
    assert next(answers).infer_response.outputs
    return answers


def test_streams_beyond_max_streams_per_connection_wait_while_other_connections_are_served(model_repo):
    srv = ThreadServer(settings_for(model_repo, max_streams_per_connection=2)).start()
    gates = [threading.Event(), threading.Event()]
    try:
        with grpc.insecure_channel(srv.address, options=OWN_CONNECTION) as ch:
            stub = pb_grpc.GRPCInferenceServiceStub(ch)
            held = [held_stream(stub, g) for g in gates]  # the connection's two streams are taken
            x = np.ones((1, 4), np.float32)
            # A third call on this connection cannot start: it waits for a stream, so its deadline ends it. The
            # deadline is no race: without the cap the call is answered at once, with it never.
            with pytest.raises(grpc.RpcError) as e:
                stub.ModelInfer(infer_request("iris", x), timeout=2)
            assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            with grpc.insecure_channel(srv.address, options=OWN_CONNECTION) as other:  # another connection is served
                assert pb_grpc.GRPCInferenceServiceStub(other).ModelInfer(infer_request("iris", x), timeout=HANG_GUARD_S).outputs
            gates[0].set()
            assert list(held[0]) == []  # a stream frees its place when it ends
            assert stub.ModelInfer(infer_request("iris", x), timeout=HANG_GUARD_S).outputs
    finally:
        for g in gates:
            g.set()
        srv.stop()


def test_a_connection_without_rpcs_is_closed_after_connection_idle_timeout(model_repo):
    srv = ThreadServer(settings_for(model_repo, connection_idle_timeout=0.3)).start()
    try:
        with grpc.insecure_channel(srv.address, options=OWN_CONNECTION) as ch:
            states: list[grpc.ChannelConnectivity] = []
            idle = threading.Event()

            def seen(state):
                states.append(state)
                if state == grpc.ChannelConnectivity.IDLE and grpc.ChannelConnectivity.READY in states:
                    idle.set()

            ch.subscribe(seen)
            assert pb_grpc.GRPCInferenceServiceStub(ch).ModelInfer(infer_request("iris", np.ones((1, 4), np.float32)), timeout=30).outputs
            # The server closes the connection (GOAWAY) once it has carried no RPC for 0.3 s: the channel goes idle.
            assert idle.wait(HANG_GUARD_S), states
            ch.unsubscribe(seen)
    finally:
        srv.stop()


# A bare HTTP/2 client: enough to open one gRPC stream and see the frames the server sends on the connection.
PING, SETTINGS, GOAWAY, HEADERS = 0x6, 0x4, 0x7, 0x1
ACK, END_HEADERS = 0x1, 0x4


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


def literal(name: bytes, value: bytes) -> bytes:
    """An HPACK header field without indexing, name and value as plain strings (each shorter than 127 bytes)."""
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def read_frame(sock: socket.socket) -> tuple[int, int, bytes]:
    head = read_exactly(sock, 9)
    payload = read_exactly(sock, int.from_bytes(head[:3], "big"))
    return head[3], head[4], payload


def read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise AssertionError("the server closed the connection")
        data += chunk
    return data


def test_the_server_sends_keepalive_pings_every_keepalive_time(model_repo):
    srv = ThreadServer(settings_for(model_repo, keepalive_time=0.2, stream_first_message_timeout=600)).start()
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=HANG_GUARD_S) as sock:
            headers = b"".join(
                literal(k, v)
                for k, v in [
                    (b":method", b"POST"),
                    (b":scheme", b"http"),
                    (b":path", b"/inference.GRPCInferenceService/ModelStreamInfer"),
                    (b":authority", b"localhost"),
                    (b"content-type", b"application/grpc"),
                    (b"te", b"trailers"),
                ]
            )
            # One stream open and silent: the connection carries a call, so keepalive pings are due on it.
            sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(SETTINGS, 0, 0) + frame(HEADERS, END_HEADERS, 1, headers))
            pings = 0
            while pings < 2:  # the server sends at most two pings while no data flows (grpc.http2.max_pings_without_data)
                kind, flags, payload = read_frame(sock)
                assert kind != GOAWAY, payload
                if kind == SETTINGS and not flags & ACK:
                    sock.sendall(frame(SETTINGS, ACK, 0))
                elif kind == PING and not flags & ACK:
                    pings += 1
                    sock.sendall(frame(PING, ACK, 0, payload))
    finally:
        srv.stop()
