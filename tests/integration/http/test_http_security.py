"""The bearer token and TLS (HTTPS, and client certificates when a client CA is set) apply to HTTP as to gRPC."""

from __future__ import annotations

import http.client
import shutil
import ssl
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as httpclient

from tests.integration.http.http_helpers import call, infer, infer_json, outputs_of
from tests.integration.server.server_helpers import ThreadServer, reference, rows_for, settings_for

TOKEN = "s3cret-token"
DENIED = "missing or wrong bearer token: send the header 'Authorization: Bearer <token>'"


def _self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """(key, certificate) of a self-signed certificate for 127.0.0.1 (its own CA)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (needed to make a self-signed certificate)")
    key, cert = tmp_path / f"{name}.key", tmp_path / f"{name}.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
         "-subj", f"/CN={name}", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )
    return key, cert


@pytest.fixture(scope="module")
def token_server(model_repo):
    srv = ThreadServer(settings_for(model_repo, auth_token=TOKEN)).start()
    yield srv
    srv.stop()


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                                     {"Authorization": f"Basic {TOKEN}"}, {"Authorization": f"Bearer {TOKEN}x"}],
                         ids=["no header", "wrong token", "no scheme", "basic scheme", "longer token"])
@pytest.mark.parametrize("method, path", [("GET", "/v2"), ("GET", "/v2/models/iris"), ("GET", "/v2/models/iris/config"),
                                          ("GET", "/v2/models/stats"), ("POST", "/v2/models/iris/infer"),
                                          ("POST", "/v2/repository/index"), ("GET", "/v2/models/iris/ready"),
                                          ("GET", "/"), ("GET", "/models/iris"), ("GET", "/no/such/route")])
def test_without_the_token_every_endpoint_but_health_is_401(token_server, method, path, headers):
    a = call(token_server.server.http_port, method, path, b"{}" if method == "POST" else None, headers)
    assert (a.status, a.json()) == (401, {"error": DENIED})
    assert a.headers.get("WWW-Authenticate") == "Bearer"


def test_health_is_open_and_the_token_opens_the_rest(token_server, model_repo):
    port = token_server.server.http_port
    assert call(port, "GET", "/v2/health/live").status == 200
    assert call(port, "GET", "/v2/health/ready").status == 200
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert call(port, "GET", "/v2", headers=auth).status == 200
    assert call(port, "GET", "/v2/models/iris/ready", headers=auth).status == 200
    x = rows_for(model_repo, "iris", 5, seed=1)
    a = infer(port, "iris", infer_json(x), headers=auth)
    np.testing.assert_allclose(outputs_of(a)["probabilities"], reference(model_repo, "iris", 2, x)["probabilities"], atol=1e-6)
    assert call(port, "GET", "/models/iris", headers=auth).status == 200  # the model browser's page, past the token
    assert call(port, "GET", "/no/such/route", headers=auth).status == 404  # past the token, routing decides
    client = httpclient.InferenceServerClient(f"127.0.0.1:{port}")
    try:
        assert client.get_model_metadata("iris", headers=auth)["name"] == "iris"
        with pytest.raises(httpclient.InferenceServerException) as e:
            client.get_model_metadata("iris")
        assert e.value.status() == "401" and e.value.message() == DENIED
    finally:
        client.close()


def test_https_with_a_self_signed_certificate(model_repo, tmp_path):
    key, cert = _self_signed(tmp_path, "server")
    srv = ThreadServer(settings_for(model_repo, tls_cert=str(cert), tls_key=str(key))).start()
    port = srv.server.http_port
    try:
        trusting = ssl.create_default_context(cafile=str(cert))
        x = rows_for(model_repo, "iris", 4, seed=2)
        a = infer(port, "iris", infer_json(x), tls=trusting)
        np.testing.assert_allclose(outputs_of(a)["probabilities"], reference(model_repo, "iris", 2, x)["probabilities"], atol=1e-6)
        assert call(port, "GET", "/v2/health/ready", tls=trusting).status == 200
        with pytest.raises(ssl.SSLCertVerificationError):  # the system roots don't trust a self-signed certificate
            call(port, "GET", "/v2/health/ready", tls=ssl.create_default_context())
        with pytest.raises((OSError, http.client.HTTPException)):  # plaintext to the HTTPS port
            call(port, "GET", "/v2/health/ready")
        client = httpclient.InferenceServerClient(f"127.0.0.1:{port}", ssl=True, ssl_options={"ca_certs": str(cert)})
        try:
            assert client.is_server_ready() and client.get_model_metadata("iris")["name"] == "iris"
        finally:
            client.close()
    finally:
        srv.stop()


def test_client_certificates_are_required_when_a_client_ca_is_set(model_repo, tmp_path):
    key, cert = _self_signed(tmp_path, "server")
    client_key, client_cert = _self_signed(tmp_path, "client")
    srv = ThreadServer(settings_for(model_repo, tls_cert=str(cert), tls_key=str(key), tls_client_ca=str(client_cert))).start()
    port = srv.server.http_port
    try:
        anonymous = ssl.create_default_context(cafile=str(cert))
        with pytest.raises((OSError, http.client.HTTPException)):
            call(port, "GET", "/v2", tls=anonymous)
        stranger_key, stranger_cert = _self_signed(tmp_path, "stranger")
        stranger = ssl.create_default_context(cafile=str(cert))
        stranger.load_cert_chain(str(stranger_cert), str(stranger_key))
        with pytest.raises((OSError, http.client.HTTPException)):
            call(port, "GET", "/v2", tls=stranger)
        known = ssl.create_default_context(cafile=str(cert))
        known.load_cert_chain(str(client_cert), str(client_key))
        assert call(port, "GET", "/v2", tls=known).json()["name"] == "zoo"
    finally:
        srv.stop()
