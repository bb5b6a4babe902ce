"""Start-up a person can act on: ports checked before models load, a serve-only install, new exports picked up."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import grpc
import numpy as np
import pytest
from tests.integration.server.server_helpers import (
    ThreadServer, copy_version, decode_response, infer_request, reference, rows_for, settings_for, wait_until, wait_until_listening,
)

from zoo.proto import grpc_service_pb2 as pb
from zoo.proto import grpc_service_pb2_grpc as pb_grpc

# Runs the `zoo` CLI with torch and the training side made unimportable: what a serve-only install has.
SERVE_ONLY = (
    "import sys\n"
    "class Blocked:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] == 'torch' or name.startswith('zoo.training'):\n"
    "            raise ImportError(f'blocked: {name}')\n"
    "sys.meta_path.insert(0, Blocked())\n"
    "from zoo.cli import main\n"
    "main()\n"
)


def _taken_port() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s


@pytest.mark.parametrize("flag", ["--port", "--metrics-port"])
def test_a_port_in_use_names_its_flag_before_any_model_loads(model_repo, flag):
    taken = _taken_port()
    port = taken.getsockname()[1]
    ports = {"--port": "0", "--metrics-port": "0", "--http-port": "-1"}
    ports[flag] = str(port)
    args = [a for kv in ports.items() for a in kv]
    try:
        out = subprocess.run([sys.executable, "-m", "zoo.server", "--repository", str(model_repo), "--host", "127.0.0.1", *args],
                             capture_output=True, text=True, timeout=120)
    finally:
        taken.close()
    assert out.returncode == 2, out.stderr
    assert f"({flag} {port})" in out.stderr and "Traceback" not in out.stderr
    assert "ready on" not in out.stderr  # refused before loading anything


def test_zoo_serve_without_the_training_side_starts_on_an_empty_repository(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", SERVE_ONLY, "serve", "--repository", str(tmp_path / "models"), "--host", "127.0.0.1",
                             "--port", "0", "--metrics-port", "-1", "--http-port", "-1"],
                            stderr=subprocess.PIPE, text=True)
    try:
        _, _, lines = wait_until_listening(proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    text = "".join(lines)
    assert "holds no models yet" in text and "zoo export" in text and "zoo bootstrap" in text, text
    assert "model control poll" in text  # `zoo serve` is the development setting: it watches the repository


def test_a_model_exported_while_zoo_serve_runs_is_served_without_a_restart(model_repo, tmp_path):
    repo = tmp_path / "models"
    repo.mkdir()
    srv = ThreadServer(settings_for(repo, model_control_mode="poll", poll_interval=0.1)).start()
    try:
        with grpc.insecure_channel(srv.address) as ch:
            stub = pb_grpc.GRPCInferenceServiceStub(ch)
            copy_version(model_repo, "iris", 1, repo, "iris", 1)  # what `zoo export iris` publishes

            def ready() -> bool:
                try:
                    return stub.ModelReady(pb.ModelReadyRequest(name="iris")).ready
                except grpc.RpcError:
                    return False

            wait_until(ready, "the new export to be loaded")
            x = rows_for(repo, "iris", 3, seed=1)
            got = decode_response(stub.ModelInfer(infer_request("iris", x)))["probabilities"]
        np.testing.assert_allclose(got, reference(repo, "iris", 1, x)["probabilities"], atol=1e-6)
    finally:
        srv.stop()


@pytest.mark.parametrize("mode, hint", [
    ("none", "the server loads the repository only at start"),
    ("explicit", "load it with RepositoryModelLoad"),
])
def test_not_found_for_a_model_on_disk_but_not_loaded_says_how_to_load_it(model_repo, tmp_path, mode, hint):
    repo = tmp_path / "models"
    repo.mkdir()
    srv = ThreadServer(settings_for(repo, model_control_mode=mode)).start()
    try:
        copy_version(model_repo, "iris", 1, repo, "iris", 1)  # exported after the server started
        with grpc.insecure_channel(srv.address) as ch:
            stub = pb_grpc.GRPCInferenceServiceStub(ch)
            for call in (lambda: stub.ModelInfer(infer_request("iris", np.ones((1, 4), np.float32))),
                         lambda: stub.ModelMetadata(pb.ModelMetadataRequest(name="iris"))):
                with pytest.raises(grpc.RpcError) as e:
                    call()
                assert e.value.code() == grpc.StatusCode.NOT_FOUND
                assert "'iris' is in the repository but not loaded" in e.value.details() and hint in e.value.details()
            with pytest.raises(grpc.RpcError) as e:
                stub.ModelInfer(infer_request("nowhere", np.ones((1, 4), np.float32)))
            assert e.value.code() == grpc.StatusCode.NOT_FOUND and "unknown model 'nowhere'" in e.value.details()
    finally:
        srv.stop()


def _http_get(family: int, host: str, port: int) -> bytes:
    with socket.socket(family) as s:
        s.settimeout(30)
        s.connect((host, port))
        s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return s.recv(4096)


def test_zoo_serve_listens_on_loopback_only_and_says_where_the_pages_are(tmp_path):
    """The development server (polling, shared memory, no token) is for this machine: localhost over IPv4 and IPv6."""
    proc = subprocess.Popen([sys.executable, "-m", "zoo", "serve", "--repository", str(tmp_path / "models"),
                             "--port", "0", "--metrics-port", "0", "--http-port", "0"], stderr=subprocess.PIPE, text=True)
    try:
        _, metrics_port, lines = wait_until_listening(proc)
        text = "".join(lines)
        line = next(ln for ln in lines if "model pages at" in ln)
        http_port = int(line.rsplit(":", 1)[1].strip().rstrip("/"))
        assert "loopback only" in line and "--host 0.0.0.0 opens it" in line and f"http://127.0.0.1:{http_port}/" in line
        assert "listening on localhost:" in text
        assert _http_get(socket.AF_INET, "127.0.0.1", http_port).startswith(b"HTTP/1.1 200")
        if socket.has_ipv6:
            try:
                assert _http_get(socket.AF_INET6, "::1", http_port).startswith(b"HTTP/1.1 200")
                assert _http_get(socket.AF_INET6, "::1", metrics_port).startswith(b"HTTP/1.0 ")  # the metrics port too
            except OSError as e:  # no IPv6 loopback on this machine: IPv4 is all there is
                assert e.errno in (99, 97), e
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_zoo_server_still_binds_every_address_by_default():
    from zoo.server.settings import DevServerSettings, ServerSettings

    assert ServerSettings.model_fields["host"].default == "0.0.0.0"
    assert DevServerSettings.model_fields["host"].default == "localhost"
