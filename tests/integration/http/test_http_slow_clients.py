"""Slow and stalled HTTP clients: a body that stalls or trickles is cut off, a steady slow one is read, and under a
1,024 file-descriptor limit a thousand stalled connections lock out neither new HTTP clients nor gRPC ones."""

from __future__ import annotations

import json
import resource
import shutil
import socket
import subprocess
import sys
import threading

import grpc
import numpy as np
import pytest

from tests.integration.http.http_helpers import call
from tests.integration.server.server_helpers import ThreadServer, infer_request, rows_for, settings_for, wait_until_listening
from zoo.proto import grpc_service_pb2 as pb
from zoo.proto import grpc_service_pb2_grpc as pb_grpc

HANG_S = 60  # a hang guard: the answers below come in about a second, or never on a server without the limits
HEAD = "POST /v2/models/iris/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {n}\r\n\r\n"


def _answer(s: socket.socket) -> tuple[int, bytes]:
    """Read the response until the server closes the connection: (status, body)."""
    got = b""
    while chunk := s.recv(65536):
        got += chunk
    head, _, body = got.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.fixture(scope="module")
def strict(served_repo):
    srv = ThreadServer(settings_for(served_repo, http_body_timeout=1.0, http_body_min_rate=1000)).start()
    yield srv
    srv.stop()


def test_a_stalled_body_is_cut_off_with_408(strict):
    with socket.create_connection(("127.0.0.1", strict.server.http_port), timeout=HANG_S) as s:
        s.sendall((HEAD.format(n=1000) + '{"inputs": [').encode())  # and then nothing
        status, body = _answer(s)
    assert status == 408
    assert "--http-body-timeout" in json.loads(body)["error"]


def test_a_trickling_body_is_cut_off_and_a_steady_slow_one_is_read(strict, served_repo):
    stop = threading.Event()
    with socket.create_connection(("127.0.0.1", strict.server.http_port), timeout=HANG_S) as s:
        s.sendall(HEAD.format(n=100_000).encode())

        def trickle() -> None:  # 20 bytes a second: a connection held for hours at 1 KB/s of body needed
            while not stop.wait(0.05):
                try:
                    s.sendall(b" ")
                except OSError:
                    return

        t = threading.Thread(target=trickle, daemon=True)
        t.start()
        try:
            status, body = _answer(s)
        finally:
            stop.set()
            t.join(HANG_S)
    assert status == 408
    assert "--http-body-min-rate" in json.loads(body)["error"]
    # Steady and slow: each 50 KB piece buys 50 s at the minimum rate; this one comes in well under a second.
    doc = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [5.1, 3.5, 1.4, 0.2]}]})
    body = doc.encode() + b" " * 150_000
    pieces = [body[i : i + 50_000] for i in range(0, len(body), 50_000)]
    a = call(strict.server.http_port, "POST", "/v2/models/iris/infer", pieces, {"Content-Type": "application/json"}, chunked=True)
    assert a.status == 200, a.body


def _fd_room(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            pytest.skip(f"this test opens {need} sockets; the hard file-descriptor limit here is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def test_a_thousand_stalled_connections_under_1024_descriptors_lock_out_no_new_client(served_repo):
    if shutil.which("prlimit") is None:
        pytest.fail("prlimit (util-linux) is needed to run the server under a 1,024 descriptor limit")
    stalled_n = 1000
    _fd_room(stalled_n + 256)
    cmd = ["prlimit", "--nofile=1024", sys.executable, "-m", "zoo.server", "--repository", str(served_repo), "--host", "127.0.0.1",
           "--port", "0", "--http-port", "0", "--metrics-port", "-1", "--http-body-timeout", "3600"]  # no timeout saves it
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    stalled: list[socket.socket] = []
    try:
        port, _, lines = wait_until_listening(proc)
        http_port = int("".join(lines).split("HTTP port ")[1].split(",")[0])
        for _ in range(stalled_n):  # each sends its headers and a little of its body, then nothing
            s = socket.create_connection(("127.0.0.1", http_port), timeout=HANG_S)
            s.sendall((HEAD.format(n=1_000_000) + '{"inputs": [').encode())
            stalled.append(s)
        # The kernel hands connections over in order: these come after every stalled one was accepted.
        assert call(http_port, "GET", "/v2/health/ready", timeout=HANG_S).status == 200
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = pb_grpc.GRPCInferenceServiceStub(ch)
            assert stub.ServerReady(pb.ServerReadyRequest(), timeout=HANG_S).ready
            x = rows_for(served_repo, "iris", 3)
            out = stub.ModelInfer(infer_request("iris", x, outputs=["label"]), timeout=HANG_S)
            assert np.frombuffer(out.raw_output_contents[0], np.int64).shape == (3,)
        closed = sum(1 for s in stalled if _closed_by_server(s))
        assert closed >= stalled_n // 2, f"only {closed} of {stalled_n} stalled connections were closed for new ones"
        assert proc.poll() is None, "".join(lines)
    finally:
        for s in stalled:
            s.close()
        proc.terminate()
        try:
            proc.wait(HANG_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _closed_by_server(s: socket.socket) -> bool:
    s.settimeout(0)
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:  # reset: the server aborted it
        return True


def test_past_the_cap_an_idle_connection_is_closed_for_a_new_one_and_one_being_answered_is_not(served_repo):
    from tests.integration.server.server_helpers import HeldModel

    srv = ThreadServer(settings_for(served_repo, http_max_connections=1)).start()
    port = srv.server.http_port
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=HANG_S) as idle:
            idle.sendall(b"GET /v2 HTTP/1.1\r\nHost: x\r\n\r\n")
            assert idle.recv(65536).startswith(b"HTTP/1.1 200")  # answered, kept alive, idle now
            assert call(port, "GET", "/v2").status == 200  # the only slot: the idle connection makes room
            assert idle.recv(65536) == b"", "the idle connection was not closed for the new one"
        with HeldModel(srv, "iris") as held:
            doc = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [5.1, 3.5, 1.4, 0.2]}]})
            busy = threading.Thread(target=call, args=(port, "POST", "/v2/models/iris/infer", doc), daemon=True)
            busy.start()
            held.wait_held()  # the one connection is being answered: it is not closed for a newcomer
            a = call(port, "GET", "/v2")
            assert a.status == 503 and "too many HTTP connections" in a.json()["error"]
            held.release()
            busy.join(HANG_S)
        assert call(port, "GET", "/v2").status == 200
    finally:
        srv.stop()
