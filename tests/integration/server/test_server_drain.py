"""SIGTERM against the real zoo-server process on uvloop, under a mix of small, split and HTTP requests: every
request the server accepted is answered, every one it refused is told UNAVAILABLE / 503, none is CANCELLED."""

from __future__ import annotations

import http.client
import json
import signal
import threading
from collections import Counter
from dataclasses import dataclass, field

import grpc
import numpy as np
import pytest
from tests.integration.server.server_helpers import (
    HeldModel, ThreadServer, decode_response, infer_request, reference, rows_for, settings_for, start_subprocess_server, wait_until,
)

from zoo.proto import grpc_service_pb2 as pb
from zoo.proto import grpc_service_pb2_grpc as pb_grpc
from zoo.server.dataplane import DRAINING

ROUNDS = 10
GRACE_S = 10
HANG_GUARD_S = 120  # only reached if the server hangs: the drain itself takes about DRAIN_QUIET_S
# The UNAVAILABLE answers of a request that was never started: refused while draining, or sent after the port closed.
NOT_STARTED = (DRAINING, "failed to connect", "GOAWAY received")


@dataclass
class Round:
    """What the clients of one round saw."""

    outcomes: Counter = field(default_factory=Counter)  # (client kind, outcome)
    refusals: list[str] = field(default_factory=list)  # the details of every error answer
    wrong: list[str] = field(default_factory=list)  # answers that were not the reference's
    ready: threading.Barrier | None = None
    signalled: threading.Event = field(default_factory=threading.Event)


def grpc_client(port: int, kind: str, x: np.ndarray, want: np.ndarray, r: Round) -> None:
    """Send requests one after another until one is not answered OK (a refused client goes elsewhere)."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        stub = pb_grpc.GRPCInferenceServiceStub(ch)
        first = True
        while True:
            try:
                resp = stub.ModelInfer(infer_request("iris", x), timeout=HANG_GUARD_S)
            except grpc.RpcError as e:
                r.outcomes[kind, e.code().name] += 1
                r.refusals.append(f"{kind}: {e.code().name}: {e.details()}")
                return
            r.outcomes[kind, "OK"] += 1
            if not np.array_equal(decode_response(resp)["label"], want):
                r.wrong.append(kind)
            if first:
                first = False
                r.ready.wait(HANG_GUARD_S)


def http_client(port: int, x: np.ndarray, want: np.ndarray, r: Round) -> None:
    """The same over HTTP/JSON, each request on its own connection."""
    body = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": list(x.shape), "data": x.ravel().tolist()}]})
    first = True
    while True:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HANG_GUARD_S)
        try:
            conn.request("POST", "/v2/models/iris/infer", body=body, headers={"Content-Type": "application/json"})
            answer = conn.getresponse()
            status, doc = answer.status, json.loads(answer.read())
        except ConnectionRefusedError:  # the port closed: this request never reached the server
            r.outcomes["http", "refused connection"] += 1
            return
        except OSError as e:  # a connection dropped under a request: counted, and a failure of the round
            r.outcomes["http", type(e).__name__] += 1
            r.refusals.append(f"http: {type(e).__name__}: {e}")
            return
        finally:
            conn.close()
        r.outcomes["http", status] += 1
        if status != 200:
            r.refusals.append(f"http: {status}: {doc.get('error')}")
            return
        label = next(o["data"] for o in doc["outputs"] if o["name"] == "label")
        if label != want.tolist():
            r.wrong.append("http")
        if first:
            first = False
            r.ready.wait(HANG_GUARD_S)


def one_round(repo, small: np.ndarray, big: np.ndarray, want_small, want_big) -> tuple[Round, int, str]:
    """Start zoo-server, let 12 small, 2 split and 2 HTTP clients run, SIGTERM it; (what the clients saw, rc, log)."""
    proc, port, lines = start_subprocess_server(repo, "--grace", str(GRACE_S), "--event-loop", "uvloop", "--max-batch-size", "1024")
    http_port = int(next(line for line in lines if "listening on" in line).split("HTTP port ")[1].split(",")[0])
    r = Round(ready=threading.Barrier(16 + 1))
    clients = [threading.Thread(target=grpc_client, args=(port, "small", small, want_small, r)) for _ in range(12)]
    clients += [threading.Thread(target=grpc_client, args=(port, "split", big, want_big, r)) for _ in range(2)]
    clients += [threading.Thread(target=http_client, args=(http_port, small, want_small, r)) for _ in range(2)]
    try:
        for c in clients:
            c.start()
        r.ready.wait(HANG_GUARD_S)  # every client has been answered once and is sending again
        proc.send_signal(signal.SIGTERM)
        r.signalled.set()
        rc = proc.wait(HANG_GUARD_S)
        for c in clients:
            c.join(HANG_GUARD_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    return r, rc, "".join(lines)


def test_sigterm_under_load_answers_every_accepted_request_and_cancels_none(model_repo):
    small, big = rows_for(model_repo, "iris", 3, seed=5), rows_for(model_repo, "iris", 30_000, seed=6)  # big: 30 batches
    want_small, want_big = (reference(model_repo, "iris", 2, x)["label"] for x in (small, big))
    total: Counter = Counter()
    for _ in range(ROUNDS):
        r, rc, log = one_round(model_repo, small, big, want_small, want_big)
        assert rc == 0, log
        assert "event loop: uvloop" in log
        assert not r.wrong, r.wrong
        for refusal in r.refusals:  # every error answer is a refusal of a request never started, never CANCELLED
            assert refusal.split(": ", 1)[1].startswith(("UNAVAILABLE", "503")), refusal
            assert any(reason in refusal for reason in NOT_STARTED), refusal
        # each client ends on exactly one refusal
        assert sum(n for (_, outcome), n in r.outcomes.items() if outcome != "OK" and outcome != 200) == 16, r.outcomes
        total += r.outcomes
    assert not any(outcome == "CANCELLED" for _, outcome in total), total
    assert total["split", "OK"] >= 2 * ROUNDS and total["http", 200] >= 2 * ROUNDS, total


def test_a_request_in_the_model_when_sigterm_comes_is_answered_whole_by_the_real_process(model_repo):
    # zoo-server on uvloop is given a request of 600,000 rows, 9,375 batches of 64: once the server's own statistics
    # show its first batches ran, and its answer has not come, it is certainly in flight; then SIGTERM. The drain
    # refuses a new request, answers this one whole, and the process exits 0.
    x = rows_for(model_repo, "iris", 600_000, seed=10)
    want = reference(model_repo, "iris", 2, x)["label"]
    proc, port, lines = start_subprocess_server(model_repo, "--grace", str(HANG_GUARD_S), "--event-loop", "uvloop", "--max-batch-size", "64")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", 1 << 26)]) as ch:
            stub = pb_grpc.GRPCInferenceServiceStub(ch)

            def batches() -> int:
                stats = stub.ModelStatistics(pb.ModelStatisticsRequest(name="iris", version="2"), timeout=HANG_GUARD_S).model_stats
                return sum(s.execution_count for s in stats)

            before = batches()
            big = stub.ModelInfer.future(infer_request("iris", x, outputs=["label"]), timeout=HANG_GUARD_S)
            wait_until(lambda: batches() >= before + 2 or big.done(), "the big request's first batches")
            assert not big.done(), "the request finished before the signal: it must be in flight when SIGTERM comes"
            proc.send_signal(signal.SIGTERM)
            wait_until(lambda: not stub.ServerReady(pb.ServerReadyRequest(), timeout=HANG_GUARD_S).ready, "the drain to begin")
            with pytest.raises(grpc.RpcError) as refused:
                stub.ModelInfer(infer_request("iris", x[:3]), timeout=HANG_GUARD_S)
            got = decode_response(big.result())
        rc = proc.wait(HANG_GUARD_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE and refused.value.details() == DRAINING
    np.testing.assert_array_equal(got["label"], want)
    assert rc == 0, "".join(lines)
    assert "event loop: uvloop" in "".join(lines)


def test_an_open_stream_answers_what_it_was_sent_then_ends_unavailable_when_the_drain_begins(model_repo):
    # A stream opened before the stop holds a request in the model: that request is answered, then the stream ends
    # UNAVAILABLE (not CANCELLED at the end of the grace period), and the server exits without waiting the grace out.
    srv = ThreadServer(settings_for(model_repo, grace=HANG_GUARD_S)).start()
    x = rows_for(model_repo, "iris", 2, seed=9)
    gate = threading.Event()
    with HeldModel(srv, "iris") as held, grpc.insecure_channel(srv.address) as ch:

        def requests():
            yield infer_request("iris", x)
            gate.wait(HANG_GUARD_S)  # the client keeps its side open

        answers = pb_grpc.GRPCInferenceServiceStub(ch).ModelStreamInfer(requests(), timeout=HANG_GUARD_S)
        held.wait_held()
        stopping = threading.Thread(target=srv.stop)
        stopping.start()
        wait_until(lambda: srv.server.plane.shutting_down, "the server to start draining")
        held.release()
        first = next(answers)
        with pytest.raises(grpc.RpcError) as ended:
            next(answers)
        gate.set()
        stopping.join(HANG_GUARD_S)
    assert not first.error_message and np.array_equal(decode_response(first.infer_response)["label"], reference(model_repo, "iris", 2, x)["label"])
    assert ended.value.code() == grpc.StatusCode.UNAVAILABLE and "shutting down" in ended.value.details(), ended.value.details()
    assert not srv.thread.is_alive()


def test_a_request_still_in_the_model_when_the_grace_ends_is_answered_unavailable_not_cancelled(model_repo):
    # The model holds a request past the grace period: the server gives up on it with UNAVAILABLE (retry
    # elsewhere) before its ports close, and exits. The gate stays shut until then, so the request surely outlasts
    # the grace; the grace is the server's own timer, not a race the test must win.
    srv = ThreadServer(settings_for(model_repo, grace=1.0)).start()
    with HeldModel(srv, "iris") as held, grpc.insecure_channel(srv.address) as ch:
        call = pb_grpc.GRPCInferenceServiceStub(ch).ModelInfer.future(infer_request("iris", np.ones((2, 4), np.float32)), timeout=HANG_GUARD_S)
        held.wait_held()
        srv.stop()  # returns once the server has exited (or after its own hang guard)
        with pytest.raises(grpc.RpcError) as e:
            call.result()
    assert not srv.thread.is_alive()
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE and "shut down" in e.value.details(), (e.value.code(), e.value.details())
