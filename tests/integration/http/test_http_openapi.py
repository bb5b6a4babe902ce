"""Every REST answer the Open Inference Protocol specifies is checked against its own OpenAPI file (vendored in
spec/, see spec/SOURCE.md): each path it names is served, each body has its schema, each error is {"error": ...}."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import yaml

from tests.integration.http.http_helpers import call, infer_json
from tests.integration.server.server_helpers import ThreadServer, rows_for, settings_for

SPEC = yaml.safe_load((Path(__file__).parent / "spec" / "open_inference_rest.yaml").read_text(encoding="utf-8"))


def _validate(body: bytes, schema: str) -> None:
    """The JSON body against one of the file's component schemas (OpenAPI 3.0 schemas are JSON Schema draft 4)."""
    root = {**SPEC, "$ref": f"#/components/schemas/{schema}"}
    jsonschema.Draft4Validator(root).validate(json.loads(body))


def _path(template: str, version: str = "1") -> str:
    return template.replace("${MODEL_NAME}", "iris").replace("${MODEL_VERSION}", version)


def test_every_path_of_the_specification_is_served(server, served_repo):
    body = json.dumps(infer_json(rows_for(served_repo, "iris", 2))).encode()
    for template, item in SPEC["paths"].items():
        for method in ("get", "post"):
            if method in item:
                a = call(server.server.http_port, method.upper(), _path(template), body if method == "post" else None)
                assert a.status == 200, (template, a.status, a.body[:200])
                ok = item[method]["responses"]["200"]
                if "content" in ok:
                    _validate(a.body, ok["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1])


@pytest.mark.parametrize("path", ["/v2", "/v2/"])
def test_server_metadata(server, path):
    a = call(server.server.http_port, "GET", path)
    assert a.status == 200
    _validate(a.body, "metadata_server_response")


@pytest.mark.parametrize("path", ["/v2/models/iris", "/v2/models/iris/versions/1", "/v2/models/breast-cancer"])
def test_model_metadata(server, path):
    a = call(server.server.http_port, "GET", path)
    assert a.status == 200
    _validate(a.body, "metadata_model_response")


@pytest.mark.parametrize(
    "kw",
    [{}, {"nested": False}, {"outputs": ["label"]}, {"request_id": "42"}, {"parameters": {"threshold": 0.7}}],
    ids=["nested", "flat", "one output", "id", "threshold"],
)
def test_inference_requests_and_responses(server, served_repo, kw):
    doc = infer_json(rows_for(served_repo, "iris", 3), **kw)
    _validate(json.dumps(doc).encode(), "inference_request")  # what this test sends is the protocol's request
    a = call(server.server.http_port, "POST", "/v2/models/iris/infer", json.dumps(doc))
    assert a.status == 200, a.body
    _validate(a.body, "inference_response")


@pytest.fixture(scope="module")
def guarded(served_repo):
    srv = ThreadServer(settings_for(served_repo, auth_token="t0ken", max_json_bytes=4096)).start()
    yield srv
    srv.stop()


def _raw(port: int, data: bytes) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(data)
        got = b""
        while chunk := s.recv(65536):
            got += chunk
    head, _, body = got.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_every_error_is_the_protocols_error_object(server, guarded, served_repo):
    port, auth = server.server.http_port, {"Authorization": "Bearer t0ken"}
    big = json.dumps(infer_json(rows_for(served_repo, "iris", 200)))
    nan = infer_json(np.array([[np.nan, 1, 2, 3]]))
    cases = [
        (port, "POST", "/v2/models/iris/infer", json.dumps(nan), {}, 400, "inference_error_response"),
        (port, "POST", "/v2/models/iris/infer", "{not json", {}, 400, "inference_error_response"),
        (port, "POST", "/v2/models/nope/infer", json.dumps(infer_json(np.ones((1, 4)))), {}, 404, "inference_error_response"),
        (port, "POST", "/v2/models/broken/infer", json.dumps(infer_json(np.ones((1, 4)))), {}, 503, "inference_error_response"),
        (port, "GET", "/v2/models/nope", None, {}, 404, "metadata_model_error_response"),
        (port, "GET", "/v2/models/iris/versions/9", None, {}, 404, "metadata_model_error_response"),
        (port, "DELETE", "/v2/", None, {}, 405, "metadata_server_error_response"),
        (port, "GET", "/v3", None, {}, 404, "metadata_server_error_response"),
        (port, "POST", "/v2/repository/models/iris/load", None, {}, 403, "metadata_server_error_response"),
        (guarded.server.http_port, "GET", "/v2/", None, {}, 401, "metadata_server_error_response"),
        (guarded.server.http_port, "POST", "/v2/models/iris/infer", big, auth, 413, "inference_error_response"),
    ]
    for p, method, path, body, headers, status, schema in cases:
        a = call(p, method, path, body, headers)
        assert a.status == status, (method, path, a.status, a.body[:200])
        _validate(a.body, schema)
    status, body = _raw(port, b"GET /v2/ HTTP/1.1 x\r\n\r\n")  # aiohttp's own refusal
    assert status == 400
    _validate(body, "metadata_server_error_response")
