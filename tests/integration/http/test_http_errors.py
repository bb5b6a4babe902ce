"""Errors over HTTP: the gRPC corpus of bad requests gets the same messages with the matching statuses; bodies that
do not parse, oversized bodies and unexpected failures are answered clearly; the server keeps serving."""

from __future__ import annotations

import json
import logging
import urllib.parse

import grpc
import numpy as np
import pytest

from tests.integration.http.http_helpers import HTTP_STATUS, call, infer, infer_json, outputs_of
from tests.integration.server.server_helpers import (
    HeldModel,
    ThreadServer,
    decode_response,
    infer_request,
    reference,
    rows_for,
    settings_for,
    wait_until,
)
from tests.integration.server.test_hostile_requests import CASES, OK_ROWS
from zoo.proto import grpc_service_pb2 as pb
from zoo.proto import grpc_service_pb2_grpc as pb_grpc
from zoo.server.errors import INTERNAL_MESSAGE

# The gRPC corpus's cases that HTTP can express (the rest are protobuf-specific, or names a URL path cannot carry).
SHARED = [
    "wrong input name",
    "FP64 datatype",
    "INT64 datatype",
    "no datatype",
    "no batch dimension",
    "wrong feature count",
    "three dimensions",
    "zero rows",
    "negative rows",
    "huge claimed shape",
    "huge feature dim",
    "raw too short",
    "raw too long",
    "two inputs",
    "no inputs",
    "typed count short",
    "NaN input",
    "+Inf input",
    "-Inf input",
    "finite values that overflow the model",
    "unknown output",
    "threshold above 1",
    "threshold below 0",
    "threshold not a number",
    "threshold NaN string",
    "threshold bool",
    "unknown model",
    "path traversal name",
    "hidden name",
    "NUL in name",
    "version 01",
    "version +1",
    "version with a space",
    "version 1.0",
    "version -1",
    "version 999",
    "metadata of a traversal name",
    "config of an unknown version",
    "statistics of an unknown model",
    "ready of a traversal name",
    "load in model control none",
    "unload in model control none",
]


def _model_path(name: str, version: str = "") -> str:
    path = "/v2/models/" + urllib.parse.quote(name, safe="")
    return path + ("/versions/" + urllib.parse.quote(version, safe="") if version else "")


def _infer_body(r: pb.ModelInferRequest) -> tuple[bytes, dict[str, str]]:
    """The same request in the v2 REST form: raw contents as binary data, typed contents as JSON data."""
    inputs, raw = [], b""
    for i, t in enumerate(r.inputs):
        tensor = {"name": t.name, "datatype": t.datatype, "shape": list(t.shape)}
        if i < len(r.raw_input_contents):
            tensor["parameters"] = {"binary_data_size": len(r.raw_input_contents[i])}
            raw += r.raw_input_contents[i]
        else:
            tensor["data"] = list(t.contents.fp32_contents)
        inputs.append(tensor)
    doc = {"inputs": inputs, "outputs": [{"name": o.name} for o in r.outputs]}
    doc["parameters"] = {k: getattr(p, p.WhichOneof("parameter_choice")) for k, p in r.parameters.items()}
    header = json.dumps(doc).encode()
    return header + raw, {"Inference-Header-Content-Length": str(len(header))}


def _as_http(rpc: str, msg) -> tuple[str, str, bytes, dict[str, str]]:
    if rpc == "ModelInfer":
        body, headers = _infer_body(msg)
        return "POST", _model_path(msg.model_name, msg.model_version) + "/infer", body, headers
    if rpc in ("RepositoryModelLoad", "RepositoryModelUnload"):
        what = "load" if rpc.endswith("Load") else "unload"
        return "POST", f"/v2/repository/models/{urllib.parse.quote(msg.model_name, safe='')}/{what}", b"", {}
    suffix = {"ModelMetadata": "", "ModelConfig": "/config", "ModelStatistics": "/stats", "ModelReady": "/ready"}[rpc]
    return "GET", _model_path(msg.name, msg.version) + suffix, b"", {}


@pytest.fixture(scope="module")
def channel(server):
    with grpc.insecure_channel(server.address) as ch:
        yield ch


@pytest.mark.parametrize("name", SHARED)
def test_bad_request_gets_the_grpc_message_with_the_matching_status(server, channel, served_repo, name):
    case = CASES[name]
    msg = case.body()
    with pytest.raises(grpc.RpcError) as e:
        channel.unary_unary("/inference.GRPCInferenceService/" + case.rpc)(msg.SerializeToString(), timeout=30)
    method, path, body, headers = _as_http(case.rpc, msg)
    a = call(server.server.http_port, method, path, body, headers)
    assert a.status == HTTP_STATUS[e.value.code()], (a.status, a.body)
    assert a.json() == {"error": e.value.details()}
    assert a.headers.get("Content-Type").startswith("application/json")
    ok = infer(server.server.http_port, "iris", infer_json(OK_ROWS))  # and the server still serves
    np.testing.assert_allclose(outputs_of(ok)["probabilities"], reference(served_repo, "iris", 2, OK_ROWS)["probabilities"], atol=1e-6)


def test_a_broken_model_is_503_with_the_grpc_message(server, stub):
    with pytest.raises(grpc.RpcError) as e:
        stub.ModelInfer(infer_request("broken", OK_ROWS))
    a = infer(server.server.http_port, "broken", infer_json(OK_ROWS))
    assert (a.status, a.json()) == (503, {"error": e.value.details()}) and "corrupt" in a.json()["error"]


BODIES = {
    "not JSON": (b'{"inputs": [', "the request body is not valid JSON"),
    "not UTF-8": (b"\xff\xfe\x00garbage", "the request body is not valid JSON"),
    "nested too deep": (b"[" * 100_000, "the request body is not valid JSON"),
    "a JSON array": (b"[1, 2]", "got a JSON array"),
    "inputs not a list": (b'{"inputs": {"name": "input"}}', "'inputs' must be a list of tensors"),
    "input not an object": (b'{"inputs": [7]}', "inputs[0] must be a JSON object"),
    "shape of strings": (
        b'{"inputs": [{"name": "input", "datatype": "FP32", "shape": ["2", "4"], "data": []}]}',
        "shape must be a list of integers",
    ),
    "no data": (b'{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4]}]}', "needs data, a list of numbers"),
    "ragged data": (
        b'{"inputs": [{"name": "input", "datatype": "FP32", "shape": [2, 4], "data": [[1, 2, 3, 4], [1, 2]]}]}',
        "nested in lists of equal length",
    ),
    "strings as data": (
        b'{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": ["1", "2", "3", "4"]}]}',
        "expected FP32 [-1, 4] (sepal_length_cm, sepal_width_cm, petal_length_cm, petal_width_cm); got values that are not numbers",
    ),
    "booleans as data": (
        b'{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [true, false, true, true]}]}',
        "got values that are not numbers",
    ),
    "outputs not a list": (b'{"inputs": [], "outputs": "label"}', "'outputs' must be a list"),
    "binary_data not a bool": (
        b'{"inputs": [], "outputs": [{"name": "label", "parameters": {"binary_data": 1}}]}',
        "binary_data must be true or false",
    ),
    "id not a string": (b'{"id": 7, "inputs": []}', "the request id must be a string"),
    "parameters not an object": (b'{"inputs": [], "parameters": [1]}', "the request's parameters must be a JSON object"),
}


@pytest.mark.parametrize("name", list(BODIES))
def test_a_body_that_does_not_parse_is_400_saying_what_was_expected_in_one_log_line(server, caplog, name):
    body, says = BODIES[name]
    with caplog.at_level(logging.WARNING, logger="zoo.server"):
        a = call(server.server.http_port, "POST", "/v2/models/iris/infer", body)
    assert a.status == 400 and says in a.json()["error"], a.body
    assert len(a.json()["error"]) < 600
    assert not any(r.exc_info for r in caplog.records)  # no traceback for a client's mistake
    if "not valid JSON" in says:
        assert "expected an inference request" in a.json()["error"]
        assert len([r for r in caplog.records if "not valid JSON" in r.getMessage()]) == 1


BINARY = {
    "binary size beyond the body": ({"binary_data_size": 64}, 32, None, "has binary_data_size 64 but only 32 bytes"),
    "binary bytes nobody claims": ({"binary_data_size": 32}, 40, None, "8 bytes of binary data follow the JSON"),
    "negative binary size": ({"binary_data_size": -4}, 32, None, "binary_data_size must be a byte count"),
    "header length beyond the body": ({"binary_data_size": 32}, 32, 10_000, "Inference-Header-Content-Length must be"),
    "header length not a number": ({"binary_data_size": 32}, 32, "abc", "Inference-Header-Content-Length must be"),
    "binary without the header": ({"binary_data_size": 32}, 0, False, "send the Inference-Header-Content-Length header"),
}


@pytest.mark.parametrize("name", list(BINARY))
def test_inconsistent_binary_data_is_400(server, name):
    params, raw_bytes, length, says = BINARY[name]
    header = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [2, 4], "parameters": params}]}).encode()
    headers = {} if length is False else {"Inference-Header-Content-Length": str(len(header) if length is None else length)}
    a = call(server.server.http_port, "POST", "/v2/models/iris/infer", header + b"\0" * raw_bytes, headers)
    assert a.status == 400 and says in a.json()["error"], a.body


def test_a_body_over_the_size_limit_is_413_and_the_server_keeps_serving(model_repo):
    srv = ThreadServer(settings_for(model_repo, max_message_bytes=65536)).start()
    port = srv.server.http_port
    try:
        big = json.dumps(infer_json(np.ones((10_000, 4), np.float32))).encode()  # ~200 KB
        a = call(port, "POST", "/v2/models/iris/infer", big)
        assert a.status == 413 and a.json() == {
            "error": f"the request body of {len(big)} bytes is larger than the server's limit of 65536 bytes (--max-message-bytes)"
        }
        # Without a Content-Length (chunked), the limit is counted while reading.
        a = call(port, "POST", "/v2/models/iris/infer", iter([big[i : i + 16384] for i in range(0, len(big), 16384)]), chunked=True)
        assert a.status == 413 and "larger than the server's limit of 65536 bytes" in a.json()["error"]
        assert infer(port, "iris", infer_json(OK_ROWS)).status == 200
    finally:
        srv.stop()


def test_an_unexpected_failure_is_500_with_the_fixed_message_and_the_traceback_only_in_the_log(model_repo, caplog):
    srv = ThreadServer(settings_for(model_repo)).start()
    batcher = srv.server.registry.get("iris").batcher
    real = batcher.predict

    def failing(rows):
        raise RuntimeError("disk /secret/path is on fire")

    batcher.predict = failing
    try:
        with caplog.at_level(logging.ERROR, logger="zoo.server"):
            a = infer(srv.server.http_port, "iris", infer_json(OK_ROWS))
        assert (a.status, a.json()) == (500, {"error": INTERNAL_MESSAGE})
        assert b"secret" not in a.body
        logged = [r for r in caplog.records if r.exc_info]
        assert logged and "disk /secret/path is on fire" in str(logged[0].exc_info[1])
        with grpc.insecure_channel(srv.address) as ch, pytest.raises(grpc.RpcError) as e:
            pb_grpc.GRPCInferenceServiceStub(ch).ModelInfer(infer_request("iris", OK_ROWS))
        assert (e.value.code(), e.value.details()) == (grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE)
        batcher.predict = real
        assert infer(srv.server.http_port, "iris", infer_json(OK_ROWS)).status == 200
    finally:
        srv.stop()


def test_a_full_queue_is_429_with_the_grpc_message(model_repo):
    # One batch held in the model by a gate, one request filling the queue: every later request is refused.
    srv = ThreadServer(settings_for(model_repo, max_queue_rows=4, max_batch_size=4)).start()
    x = rows_for(model_repo, "iris", 4, seed=3)
    try:
        with HeldModel(srv, "iris") as held, grpc.insecure_channel(srv.address) as ch:
            stub = pb_grpc.GRPCInferenceServiceStub(ch)
            accepted = [stub.ModelInfer.future(infer_request("iris", x), timeout=60)]
            held.wait_held()
            accepted.append(stub.ModelInfer.future(infer_request("iris", x), timeout=60))
            wait_until(lambda: held.batcher.queued_rows == 4, "a request to fill the queue")
            with pytest.raises(grpc.RpcError) as e:
                stub.ModelInfer(infer_request("iris", x), timeout=60)
            a = infer(srv.server.http_port, "iris", infer_json(x))
            assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert (a.status, a.json()) == (429, {"error": e.value.details()}) and "overloaded" in a.json()["error"]
            held.release()
            for f in accepted:
                np.testing.assert_allclose(
                    decode_response(f.result())["probabilities"], reference(model_repo, "iris", 2, x)["probabilities"], atol=1e-6
                )
    finally:
        srv.stop()
