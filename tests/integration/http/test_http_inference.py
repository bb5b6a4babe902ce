"""Inference over HTTP on a real server: JSON and binary tensors, stock tritonclient.http, the threshold parameter."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tritonclient.http as httpclient

from tests.integration.http.http_helpers import call, infer, infer_json, outputs_of
from tests.integration.server.server_helpers import decode_response, infer_request, reference, rows_for
from zoo.core import repository


def _assert_reference(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    np.testing.assert_allclose(got["probabilities"], want["probabilities"], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(got["one_hot"], want["one_hot"])
    np.testing.assert_array_equal(got["label"], want["label"])


@pytest.mark.parametrize("nested", [True, False], ids=["nested data", "flat data"])
@pytest.mark.parametrize("model, version", [("iris", ""), ("iris", "1"), ("breast-cancer", "")])
def test_json_predictions_equal_in_process_onnxruntime(server, served_repo, model, version, nested):
    x = rows_for(served_repo, model, 23, seed=4)
    a = infer(server.server.http_port, model, infer_json(x, nested=nested, request_id="req-7"), version=version)
    assert a.status == 200 and a.headers.get("Content-Type").startswith("application/json")
    assert a.headers.get("Inference-Header-Content-Length") is None
    doc = a.json()
    v = int(version) if version else repository.latest_version(served_repo, model)
    assert (doc["model_name"], doc["model_version"], doc["id"]) == (model, str(v), "req-7")
    assert [(o["name"], o["datatype"]) for o in doc["outputs"]] == [("probabilities", "FP32"), ("one_hot", "FP32"), ("label", "INT64")]
    _assert_reference(outputs_of(a), reference(served_repo, model, v, x))


@pytest.mark.parametrize("binary_in", [True, False], ids=["binary in", "JSON in"])
@pytest.mark.parametrize("binary_out", [True, False], ids=["binary out", "JSON out"])
def test_stock_tritonclient_http_binary_and_json_tensors(server, served_repo, binary_in, binary_out):
    x = rows_for(served_repo, "iris", 9, seed=5)
    client = httpclient.InferenceServerClient(f"127.0.0.1:{server.server.http_port}")
    try:
        assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("iris")
        inp = httpclient.InferInput("input", list(x.shape), "FP32")
        inp.set_data_from_numpy(x, binary_data=binary_in)
        outputs = [httpclient.InferRequestedOutput(n, binary_data=binary_out) for n in ("probabilities", "one_hot", "label")]
        result = client.infer("iris", [inp], outputs=outputs, request_id="abc")
        assert result.get_response()["id"] == "abc"
        got = {n: result.as_numpy(n) for n in ("probabilities", "one_hot", "label")}
        assert all(("parameters" in o) == binary_out for o in result.get_response()["outputs"])
        _assert_reference(got, reference(served_repo, "iris", 2, x))
        # No outputs named: tritonclient asks for all of them as binary data (binary_data_output).
        everything = client.infer("iris", [inp], model_version="1")
        _assert_reference({n: everything.as_numpy(n) for n in got}, reference(served_repo, "iris", 1, x))
    finally:
        client.close()


def test_tritonclient_metadata_config_statistics_and_repository(server):
    client = httpclient.InferenceServerClient(f"127.0.0.1:{server.server.http_port}")
    try:
        assert client.get_server_metadata()["name"] == "zoo"
        md = client.get_model_metadata("iris")
        assert md["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
        assert client.get_model_config("iris")["max_batch_size"] == 1024
        stats = client.get_inference_statistics("iris", "2")["model_stats"]
        assert [(s["name"], s["version"]) for s in stats] == [("iris", "2")]
        assert {m["name"] for m in client.get_model_repository_index()} >= {"iris", "breast-cancer", "broken"}
        with pytest.raises(httpclient.InferenceServerException) as e:
            client.load_model("iris")
        assert e.value.status() == "403" and "--model-control-mode none" in e.value.message()
        with pytest.raises(httpclient.InferenceServerException) as e:
            client.get_model_metadata("nope")
        assert e.value.status() == "404" and "unknown model 'nope'" in e.value.message()
    finally:
        client.close()


@pytest.mark.parametrize("threshold", [0.7, "0.7"], ids=["JSON number", "string"])
def test_threshold_parameter_equals_the_grpc_result(server, stub, served_repo, threshold):
    x = rows_for(served_repo, "breast-cancer", 64, seed=6)
    want = decode_response(stub.ModelInfer(infer_request("breast-cancer", x, threshold=0.7)))
    plain = decode_response(stub.ModelInfer(infer_request("breast-cancer", x)))
    assert not np.array_equal(want["label"], plain["label"])  # the threshold changes something
    a = infer(server.server.http_port, "breast-cancer", infer_json(x, parameters={"threshold": threshold}))
    got = outputs_of(a)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])


def test_tritonclient_threshold_and_output_subset_in_request_order(server, stub, served_repo):
    x = rows_for(served_repo, "breast-cancer", 16, seed=7)
    client = httpclient.InferenceServerClient(f"127.0.0.1:{server.server.http_port}")
    try:
        inp = httpclient.InferInput("input", list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        outputs = [httpclient.InferRequestedOutput("label"), httpclient.InferRequestedOutput("probabilities", binary_data=False)]
        result = client.infer("breast-cancer", [inp], outputs=outputs, parameters={"threshold": "0.9"})
    finally:
        client.close()
    assert [o["name"] for o in result.get_response()["outputs"]] == ["label", "probabilities"]
    want = decode_response(stub.ModelInfer(infer_request("breast-cancer", x, threshold=0.9, outputs=["label", "probabilities"])))
    np.testing.assert_array_equal(result.as_numpy("label"), want["label"])
    np.testing.assert_allclose(result.as_numpy("probabilities"), want["probabilities"], atol=1e-6)


def test_binary_response_layout_is_tritons(server, served_repo):
    """Raw bytes after the JSON header, in output order, sized by binary_data_size; the header's length in a header."""
    x = rows_for(served_repo, "iris", 3, seed=8)
    header = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [3, 4], "parameters": {"binary_data_size": 48}}],
                         "outputs": [{"name": "label", "parameters": {"binary_data": True}}, {"name": "one_hot"}],
                         "parameters": {"binary_data_output": False}}).encode()
    a = call(server.server.http_port, "POST", "/v2/models/iris/infer", header + x.tobytes(),
             {"Inference-Header-Content-Length": str(len(header)), "Content-Type": "application/octet-stream"})
    assert a.status == 200 and a.headers.get("Content-Type") == "application/octet-stream"
    n = int(a.headers.get("Inference-Header-Content-Length"))
    doc = json.loads(a.body[:n])
    label, one_hot = doc["outputs"]
    assert label["parameters"] == {"binary_data_size": 24} and "data" not in label
    assert "data" in one_hot and "parameters" not in one_hot  # binary_data_output false: JSON for the rest
    want = reference(served_repo, "iris", 2, x)
    np.testing.assert_array_equal(np.frombuffer(a.body[n:], "<i8"), want["label"])
    np.testing.assert_array_equal(np.asarray(one_hot["data"], np.float32).reshape(3, 3), want["one_hot"])
