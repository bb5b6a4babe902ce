"""Server lifecycle: hot swap under load, load/unload, SIGTERM drain, and stock tritonclient."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
from tests.integration.server.server_helpers import (
    HeldModel, ThreadServer, copy_version, decode_response, infer_request, reference, rows_for, settings_for,
    start_subprocess_server, wait_until,
)

from zoo.core import repository
from zoo.proto import grpc_service_pb2 as pb
from zoo.proto import grpc_service_pb2_grpc as pb_grpc

HERE = Path(__file__).resolve().parent


def hammer(address: str, model: str, x: np.ndarray, stop: threading.Event, log: list, errors: list) -> None:
    """Send requests until stop is set; log (model_version, probabilities) of each answer."""
    with grpc.insecure_channel(address) as ch:
        s = pb_grpc.GRPCInferenceServiceStub(ch)
        while not stop.is_set():
            try:
                resp = s.ModelInfer(infer_request(model, x), timeout=10)
                log.append((resp.model_version, decode_response(resp)["probabilities"]))
            except grpc.RpcError as e:
                errors.append((e.code(), e.details()))


@pytest.mark.parametrize("trigger", ["load_rpc", "poll"])
def test_hot_swap_under_load_fails_no_request(model_repo, tmp_path, trigger):
    repo = tmp_path / "models"
    repo.mkdir()
    import shutil

    shutil.copytree(model_repo / "iris", repo / "iris")
    old = repository.latest_version(repo, "iris")
    mode = dict(model_control_mode="explicit", load_model=["*"]) if trigger == "load_rpc" else \
        dict(model_control_mode="poll", poll_interval=0.2)
    srv = ThreadServer(settings_for(repo, **mode)).start()
    x = rows_for(repo, "iris", 4, seed=3)
    stop, log, errors = threading.Event(), [], []
    clients = [threading.Thread(target=hammer, args=(srv.address, "iris", x, stop, log, errors)) for _ in range(4)]
    try:
        for c in clients:
            c.start()
        wait_until(lambda: len(log) >= 20, "answers from the old version")
        copy_version(model_repo, "iris", 1, repo, "iris", old + 1)  # a new (real) version lands while clients hammer
        if trigger == "load_rpc":
            with grpc.insecure_channel(srv.address) as ch:
                pb_grpc.GRPCInferenceServiceStub(ch).RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="iris"))
        wait_until(lambda: any(v == str(old + 1) for v, _ in log[-20:]), "the new version to answer")
        swapped = len(log)
        wait_until(lambda: len(log) >= swapped + 20, "more answers after the swap")
    finally:
        stop.set()
        for c in clients:
            c.join(20)
        srv.stop()
    assert not errors, errors[:3]
    versions = [v for v, _ in log]
    assert str(old) in versions and versions[-1] == str(old + 1)
    new_probs = reference(repo, "iris", old + 1, x)["probabilities"]
    old_probs = reference(repo, "iris", old, x)["probabilities"]
    for v, p in log:  # every answer came whole from one version
        np.testing.assert_allclose(p, new_probs if v == str(old + 1) else old_probs, atol=1e-6)


def test_bad_new_version_does_not_take_over_and_unload_then_load(model_repo, tmp_path):
    import shutil

    repo = tmp_path / "models"
    shutil.copytree(model_repo, repo)
    srv = ThreadServer(settings_for(repo, model_control_mode="explicit", load_model=["*"])).start()
    try:
        with grpc.insecure_channel(srv.address) as ch:
            s = pb_grpc.GRPCInferenceServiceStub(ch)
            latest = repository.latest_version(repo, "iris")
            bad = copy_version(model_repo, "iris", 1, repo, "iris", latest + 1)
            meta = json.loads((bad / "metadata.json").read_text())
            meta["selfcheck"]["probabilities"][0][0] += 0.01  # the new version fails its self-check
            (bad / "metadata.json").write_text(json.dumps(meta))
            s.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="iris"))
            x = np.ones((1, 4), np.float32)
            assert s.ModelInfer(infer_request("iris", x)).model_version == str(latest)
            with pytest.raises(grpc.RpcError) as e:
                s.ModelInfer(infer_request("iris", x, version=str(latest + 1)))
            assert e.value.code() == grpc.StatusCode.UNAVAILABLE and "self-check failed" in e.value.details()
            s.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="breast-cancer"))
            assert not s.ModelReady(pb.ModelReadyRequest(name="breast-cancer")).ready
            with pytest.raises(grpc.RpcError) as e:
                s.ModelInfer(infer_request("breast-cancer", rows_for(repo, "breast-cancer", 1)))
            assert e.value.code() == grpc.StatusCode.UNAVAILABLE
            s.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="breast-cancer"))
            assert s.ModelReady(pb.ModelReadyRequest(name="breast-cancer")).ready
            with pytest.raises(grpc.RpcError) as e:
                s.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="nope"))
            assert e.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        srv.stop()


def test_stopping_drains_requests_in_flight_and_queued(model_repo):
    # stop() is what the SIGTERM handler calls. A request split in three batches is held inside the model and two
    # requests queue behind it when the stop is asked for; a request sent after the drain began is refused
    # UNAVAILABLE. Then the model is released: all three accepted ones are answered whole, and the server exits.
    srv = ThreadServer(settings_for(model_repo, grace=30.0, max_batch_size=4)).start()
    x, split = np.ones((2, 4), np.float32), rows_for(model_repo, "iris", 10, seed=8)
    with HeldModel(srv, "iris") as held, grpc.insecure_channel(srv.address) as ch:
        stub = pb_grpc.GRPCInferenceServiceStub(ch)
        calls = [stub.ModelInfer.future(infer_request("iris", split), timeout=60)]
        held.wait_held()
        calls += [stub.ModelInfer.future(infer_request("iris", x), timeout=60) for _ in range(2)]
        wait_until(lambda: held.batcher.queued_rows == 4 + 4, "two requests queued behind the split one's next chunk")
        stopping = threading.Thread(target=srv.stop)
        stopping.start()
        wait_until(lambda: srv.server.plane.shutting_down, "the server to start draining")
        with pytest.raises(grpc.RpcError) as refused:
            stub.ModelInfer(infer_request("iris", x), timeout=60)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE and "not started" in refused.value.details()
        held.release()
        answers = [c.result() for c in calls]
        stopping.join(60)
    assert [a.model_version for a in answers] == ["2", "2", "2"]
    np.testing.assert_array_equal(decode_response(answers[0])["label"], reference(model_repo, "iris", 2, split)["label"])
    assert not srv.thread.is_alive()


def test_sigterm_stops_the_process_with_exit_code_zero(model_repo):
    proc, port, lines = start_subprocess_server(model_repo, "--grace", "10")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            assert pb_grpc.GRPCInferenceServiceStub(ch).ModelInfer(infer_request("iris", np.ones((1, 4), np.float32)), timeout=60).outputs
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(60)
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == 0, "".join(lines)
    assert took < 10 + 5, "within the grace period and its margin"
    assert any("shutting down" in line for line in lines) and any("stopped" in line for line in lines)


# A zoo-server whose repository read hangs at start-up until the process ends: the file system the test gives it,
# as HangingFiles in test_faults.py. It writes one line when the read has begun, so the test signals a server that
# is certainly still starting.
HUNG_AT_START = """
import asyncio, sys, threading
from zoo.server.app import serve
from zoo.server.logs import configure_logging
from zoo.server.model_files import RepositoryFiles
from zoo.server.registry import Registry
from zoo.server.settings import ServerSettings

class Hanging(RepositoryFiles):
    def read_version(self, name, version):
        print("test: the start-up read hangs", file=sys.stderr, flush=True)
        threading.Event().wait()

configure_logging()
s = ServerSettings(repository=sys.argv[1], host="127.0.0.1", port=0, http_port=-1, metrics_port=-1, grace=2.0, load_timeout=600)
files = Hanging(s.repository, max_model_bytes=s.max_model_bytes)
asyncio.run(serve(s, registry_factory=lambda metrics, on_change: Registry(s, metrics, on_change, files=files)))
print("test: serve returned", file=sys.stderr, flush=True)
"""


def test_sigterm_while_models_load_stops_the_process_with_exit_code_zero(model_repo):
    proc = subprocess.Popen([sys.executable, "-c", HUNG_AT_START, str(model_repo)], stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    try:
        for line in proc.stderr:
            lines.append(line)
            if "the start-up read hangs" in line:
                break
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(60)
        took = time.monotonic() - started
        lines.extend(proc.stderr)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = "".join(lines)
    assert rc == 0, text  # drained, not killed by the signal's default action (-15)
    assert took < 2.0 + 5, "within the grace period and its margin"
    assert "asked to stop during start-up" in text and "serve returned" in text and "listening on" not in text, text

def test_stock_tritonclient_works(server, served_repo):
    card = repository.read_card(served_repo, "iris", 2)
    out = subprocess.run(
        [sys.executable, str(HERE / "triton_client_check.py"), server.address, "iris", str(card.num_features)],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["live"] and r["ready"] and r["model_ready"]
    assert r["metadata"]["inputs"][0]["shape"] == [str(-1), str(card.num_features)] or r["metadata"]["inputs"][0]["shape"] == [-1, card.num_features]
    assert r["config"]["config"]["max_batch_size"] == 1024
    want = reference(served_repo, "iris", 2, np.asarray(r["x"], np.float32))
    np.testing.assert_allclose(r["probabilities"], want["probabilities"], atol=1e-6)
    assert r["label"] == want["label"].tolist()
    assert r["not_found"] == "StatusCode.NOT_FOUND"
