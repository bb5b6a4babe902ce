"""A server you can put on a network: a bearer token on every RPC but health, and TLS with client certificates."""

from __future__ import annotations

import subprocess

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from tests.conftest import require_tool, zoo_executable
from tests.integration.server.server_helpers import ThreadServer, infer_request, reference, rows_for, settings_for

from zoo.client import ClientError, ZooClient
from zoo.proto import grpc_service_pb2 as pb
from zoo.proto import grpc_service_pb2_grpc as pb_grpc

TOKEN = "a-long-random-token-0123456789"


@pytest.fixture(scope="module")
def guarded(model_repo, tmp_path_factory):
    token_file = tmp_path_factory.mktemp("secrets") / "token"
    token_file.write_text(TOKEN + "\n")
    srv = ThreadServer(settings_for(model_repo, auth_token_file=str(token_file))).start()
    yield srv, token_file
    srv.stop()


def _code(fn) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as e:
        fn()
    return e.value.code()


@pytest.mark.parametrize("metadata", [None, (("authorization", "Bearer wrong"),), (("authorization", TOKEN),),
                                      (("authorization", f"Bearer {TOKEN}x"),)])
def test_every_rpc_but_health_needs_the_token(guarded, metadata):
    srv, _ = guarded
    x = np.ones((1, 4), np.float32)
    with grpc.insecure_channel(srv.address) as ch:
        stub = pb_grpc.GRPCInferenceServiceStub(ch)
        calls = [
            lambda: stub.ModelInfer(infer_request("iris", x), metadata=metadata),
            lambda: stub.ModelMetadata(pb.ModelMetadataRequest(name="iris"), metadata=metadata),
            lambda: stub.ServerLive(pb.ServerLiveRequest(), metadata=metadata),
            lambda: stub.RepositoryIndex(pb.RepositoryIndexRequest(), metadata=metadata),
            lambda: list(stub.ModelStreamInfer(iter([infer_request("iris", x)]), metadata=metadata)),
            lambda: list(reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), metadata=metadata)),
        ]
        for call in calls:
            assert _code(call) == grpc.StatusCode.UNAUTHENTICATED
        # Orchestrators probe health without secrets.
        health = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""))
        assert health.status == health_pb2.HealthCheckResponse.SERVING


def test_the_right_token_is_served_by_raw_stubs_the_client_and_zoo_predict(guarded, model_repo, tmp_path):
    srv, token_file = guarded
    x = rows_for(model_repo, "iris", 3, seed=4)
    want = reference(model_repo, "iris", 2, x)
    with grpc.insecure_channel(srv.address) as ch:
        ok = pb_grpc.GRPCInferenceServiceStub(ch).ModelInfer(infer_request("iris", x), metadata=(("authorization", f"Bearer {TOKEN}"),))
    assert ok.model_version == "2"
    with ZooClient(srv.address, token=TOKEN, timeout=30) as c:
        np.testing.assert_allclose(c.predict("iris", x).probabilities, want["probabilities"], atol=1e-6)
    with ZooClient(srv.address, timeout=30) as c, pytest.raises(ClientError) as e:
        c.predict("iris", x)
    assert e.value.code == grpc.StatusCode.UNAUTHENTICATED and "bearer token" in e.value.details
    np.save(tmp_path / "rows.npy", x)
    p = subprocess.run([zoo_executable(), "predict", "iris", "--input", str(tmp_path / "rows.npy"), "--url", srv.address,
                        "--token-file", str(token_file)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    p = subprocess.run([zoo_executable(), "predict", "iris", "--input", str(tmp_path / "rows.npy"), "--url", srv.address],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1 and "UNAUTHENTICATED" in p.stderr and "Traceback" not in p.stderr


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA."""
    require_tool("openssl", "needed to make the test certificates")
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=zoo test CA", cwd=d)
    for who, san in (("server", "subjectAltName=DNS:localhost,IP:127.0.0.1"), ("client", "subjectAltName=DNS:client")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{who}.key", "-out", f"{who}.csr", "-subj", f"/CN={who}", cwd=d)
        (d / f"{who}.ext").write_text(san + "\n")
        _openssl("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", f"{who}.crt",
                 "-days", "1", "-extfile", f"{who}.ext", cwd=d)
    return d


def test_mtls_serves_clients_with_a_certificate_from_the_ca_only(pki, model_repo):
    srv = ThreadServer(settings_for(model_repo, tls_cert=str(pki / "server.crt"), tls_key=str(pki / "server.key"),
                                    tls_client_ca=str(pki / "ca.crt"))).start()
    try:
        ca, cert, key = (pki / "ca.crt").read_bytes(), (pki / "client.crt").read_bytes(), (pki / "client.key").read_bytes()
        x = rows_for(model_repo, "iris", 2, seed=5)
        with ZooClient(srv.address, root_certificates=ca, certificate_chain=cert, private_key=key, timeout=30) as c:
            np.testing.assert_allclose(c.predict("iris", x).probabilities, reference(model_repo, "iris", 2, x)["probabilities"], atol=1e-6)
        with ZooClient(srv.address, root_certificates=ca, timeout=10) as c, pytest.raises(ClientError) as e:
            c.is_live()  # no client certificate: the handshake fails
        assert e.value.code == grpc.StatusCode.UNAVAILABLE
    finally:
        srv.stop()
