"""The HTTP edge under misuse: aiohttp's own 400s, bodies that do not match their encoding, /v2/, JSON caps and
decoding, the metrics port behind the token."""

from __future__ import annotations

import gzip
import json
import socket
import urllib.error
import urllib.request

import numpy as np
import pytest

from tests.integration.http.http_helpers import call, infer, infer_json, outputs_of
from tests.integration.server.server_helpers import ThreadServer, reference, rows_for, settings_for

MARKER = "zz-echo-marker-zz"


def _raw(port: int, data: bytes) -> tuple[int, dict, bytes]:
    """Send raw bytes, read until the server closes: (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(data)
        got = b""
        while chunk := s.recv(65536):
            got += chunk
    head, _, body = got.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


@pytest.mark.parametrize(
    "request_bytes",
    [
        f"GET /v2 HTTP/1.1 {MARKER}\r\nHost: x\r\n\r\n",  # a malformed request line
        f"G<{MARKER}>T /v2 HTTP/1.1\r\nHost: x\r\n\r\n",  # a method that is no token
        f"GET /v2 HTTP/1.1\r\nHost: x\r\nBad {MARKER}: y\r\n\r\n",  # a space in a header name
        f"GET /v2 HTTP/1.1\r\nHost: x\r\nX: {MARKER}\x01\r\n\r\n",  # a control character in a value
        f"GET /v2 HTTP/1.1\r\nHost: x\r\nX-{MARKER}: {'a' * 20000}\r\n\r\n",  # a header longer than allowed
    ],
    ids=["request line", "method", "header name", "header value", "header too long"],
)
def test_aiohttps_own_400s_are_json_and_echo_nothing(server, request_bytes):
    status, headers, body = _raw(server.server.http_port, request_bytes.encode("latin-1"))
    assert status == 400
    assert headers["content-type"].startswith("application/json"), (headers, body)
    doc = json.loads(body)
    assert list(doc) == ["error"] and "malformed HTTP request" in doc["error"]
    assert MARKER.encode() not in body
    assert call(server.server.http_port, "GET", "/v2").status == 200  # and the server still serves


def test_server_metadata_answers_with_and_without_the_trailing_slash(server):
    plain, slash = call(server.server.http_port, "GET", "/v2"), call(server.server.http_port, "GET", "/v2/")
    assert plain.status == slash.status == 200
    assert plain.json() == slash.json() and slash.json()["name"] == "zoo"


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_a_body_that_does_not_match_its_content_encoding_is_400(server, served_repo, encoding):
    body = json.dumps(infer_json(rows_for(served_repo, "iris", 2))).encode()
    a = call(server.server.http_port, "POST", "/v2/models/iris/infer", body, {"Content-Encoding": encoding})
    assert a.status == 400, (a.status, a.body)
    assert a.headers.get("Content-Type").startswith("application/json")
    assert "Content-Encoding" in a.json()["error"] or "could not be read" in a.json()["error"]


def test_a_gzipped_body_is_read(server, served_repo):
    x = rows_for(served_repo, "iris", 3)
    body = gzip.compress(json.dumps(infer_json(x)).encode())
    a = call(server.server.http_port, "POST", "/v2/models/iris/infer", body, {"Content-Encoding": "gzip"})
    assert a.status == 200, a.body
    np.testing.assert_allclose(outputs_of(a)["probabilities"], reference(served_repo, "iris", 2, x)["probabilities"], atol=1e-6)


@pytest.fixture(scope="module")
def small_json_server(served_repo):
    srv = ThreadServer(settings_for(served_repo, max_json_bytes=64 * 1024, auth_token="s3cret")).start()
    yield srv
    srv.stop()


AUTH = {"Authorization": "Bearer s3cret"}


def test_json_over_max_json_bytes_is_413_saying_to_send_binary_and_binary_passes(small_json_server, served_repo):
    port = small_json_server.server.http_port
    x = rows_for(served_repo, "iris", 4000)
    doc = infer_json(x)
    for chunked in (False, True):  # a Content-Length refused before the body is read; a chunked body as it is read
        body = json.dumps(doc).encode()
        a = call(port, "POST", "/v2/models/iris/infer", [body] if chunked else body, AUTH, chunked=chunked)
        assert a.status == 413, (a.status, a.body[:200])
        message = a.json()["error"]
        assert "--max-json-bytes" in message and "binary tensor data" in message and "65536" in message
    raw = x.astype(np.float32).tobytes()
    tensor = {"name": "input", "datatype": "FP32", "shape": list(x.shape), "parameters": {"binary_data_size": len(raw)}}
    header = json.dumps({"inputs": [tensor], "outputs": [{"name": "label"}]}).encode()
    a = call(port, "POST", "/v2/models/iris/infer", header + raw, {**AUTH, "Inference-Header-Content-Length": str(len(header))})
    assert a.status == 200, a.body[:300]
    np.testing.assert_array_equal(outputs_of(a)["label"], reference(served_repo, "iris", 2, x)["label"])
    lying = {**AUTH, "Inference-Header-Content-Length": str(100_000)}  # a JSON part over the cap, by its own header
    assert call(port, "POST", "/v2/models/iris/infer", header + raw, lying).status == 413


@pytest.mark.parametrize("nested", [True, False])
def test_a_large_json_body_decodes_off_the_loop_to_the_same_answer(server, served_repo, nested):
    x = rows_for(served_repo, "iris", 20_000, seed=3)  # about 1.5 MB of JSON: decoded on a thread, a slice at a time
    a = infer(server.server.http_port, "iris", infer_json(x, nested=nested))
    assert a.status == 200, a.body[:300]
    want = reference(served_repo, "iris", 2, x)
    got = outputs_of(a)
    np.testing.assert_allclose(got["probabilities"], want["probabilities"], atol=1e-6)
    np.testing.assert_array_equal(got["label"], want["label"])


def test_a_large_json_body_with_values_that_are_not_numbers_is_400(server, served_repo):
    doc = infer_json(rows_for(served_repo, "iris", 20_000))
    doc["inputs"][0]["data"][-1][-1] = True
    a = infer(server.server.http_port, "iris", doc)
    assert a.status == 400 and "number" in a.json()["error"], a.body[:300]


def _scrape(port: int, headers: dict) -> tuple[int, str]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_the_metrics_port_requires_the_token_when_one_is_set(small_json_server):
    port = small_json_server.server.metrics_port
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
        status, text = _scrape(port, headers)
        assert status == 401 and "zoo_requests" not in text and "Bearer" in json.loads(text)["error"]
    status, text = _scrape(port, AUTH)
    assert status == 200 and "zoo_request_latency_seconds" in text
