"""The HTTP codec and JSON messages: v2 JSON and binary bodies into InferenceCalls, results back, Triton's JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest
from google.protobuf import json_format

from zoo.core import model_config
from zoo.core.contract import DEFAULT_BATCHING, ModelCard
from zoo.proto import grpc_service_pb2 as pb
from zoo.proto import model_config_pb2 as mc
from zoo.server.errors import InvalidInput
from zoo.server.http_api import codec
from zoo.server.http_api.messages import to_json
from zoo.server.inference import InferenceResult, call_for

CARD = ModelCard(name="iris", version=1, task="multiclass", feature_names=["a", "b", "c", "d"], class_names=["x", "y", "z"],
                 default_threshold=0.0, model_sha256="0" * 64)
X = np.arange(8, dtype=np.float32).reshape(2, 4) / 8


def body(doc: dict, raw: bytes = b"") -> tuple[bytes, str | None]:
    header = json.dumps(doc).encode()
    return header + raw, (str(len(header)) if raw else None)


def checked(body: codec.InferBody):
    """The body as the data plane checks it against CARD."""
    return call_for(CARD, body.request("iris", "", {}))


def tensor(**kw) -> dict:
    return {"name": "input", "datatype": "FP32", "shape": [2, 4], **kw}


@pytest.mark.parametrize("data", [X.tolist(), X.ravel().tolist(), X.reshape(2, 2, 2).tolist()], ids=["nested", "flat", "deeper"])
def test_json_data_nested_or_flat_is_read_row_major(data):
    request = codec.decode(*body({"inputs": [tensor(data=data)]}))
    np.testing.assert_array_equal(checked(request).rows, X)


def test_binary_inputs_are_sliced_in_order_after_the_json():
    request = codec.decode(*body({"inputs": [tensor(parameters={"binary_data_size": 32})]}, X.tobytes()))
    np.testing.assert_array_equal(checked(request).rows, X)
    two = codec.decode(*body({"inputs": [tensor(parameters={"binary_data_size": 32}), tensor(data=[1.0] * 8),
                                         tensor(name="other", parameters={"binary_data_size": 4})]}, X.tobytes() + b"\1\2\3\4"))
    assert [bytes(t.raw) if t.raw is not None else None for t in two.inputs] == [X.tobytes(), None, b"\1\2\3\4"]


def test_parameters_outputs_and_id_are_kept():
    request = codec.decode(*body({"id": "r1", "inputs": [tensor(data=X.tolist())],
                                  "parameters": {"threshold": 0.7, "binary_data_output": True},
                                  "outputs": [{"name": "label", "parameters": {"binary_data": False}}, {"name": "probabilities"}]}))
    call = checked(request)
    assert (call.request_id, call.threshold, call.outputs) == ("r1", 0.7, ("label", "probabilities"))
    assert request.binary == {"label": False} and request.binary_output is True


def test_non_numbers_in_data_get_the_contract_message():
    with pytest.raises(InvalidInput, match=r"expected FP32 \[-1, 4\] \(a, b, c, d\); got values that are not numbers"):
        checked(codec.decode(*body({"inputs": [tensor(data=["0.5"] * 8)]})))


def test_encode_sends_binary_outputs_after_the_json_and_the_rest_as_data():
    outputs = {"label": np.array([2, 0], np.int64), "probabilities": np.full((2, 3), 0.25, np.float32)}
    request = codec.decode(*body({"id": "r2", "inputs": [], "outputs": [{"name": "label", "parameters": {"binary_data": True}},
                                                                          {"name": "probabilities"}]}))
    payload, n = codec.encode(InferenceResult("iris", 3, "r2", outputs), request)
    doc = json.loads(payload[:n])
    assert (doc["model_name"], doc["model_version"], doc["id"]) == ("iris", "3", "r2")
    assert doc["outputs"][0] == {"name": "label", "datatype": "INT64", "shape": [2], "parameters": {"binary_data_size": 16}}
    assert doc["outputs"][1]["data"] == [0.25] * 6
    assert payload[n:] == outputs["label"].tobytes()
    json_only, none = codec.encode(InferenceResult("iris", 3, "", outputs), codec.decode(*body({"inputs": []})))
    assert none is None and "id" not in json.loads(json_only)


def test_model_config_json_is_the_message_with_64_bit_integers_as_numbers():
    cfg = model_config.build(CARD, DEFAULT_BATCHING)
    doc = to_json(cfg)
    assert doc["input"][0]["dims"] == [4] and doc["output"][2]["reshape"] == {"shape": []}
    assert json_format.ParseDict(doc, mc.ModelConfig()) == cfg


def test_statistics_json_writes_large_counters_as_numbers():
    resp = pb.ModelStatisticsResponse()
    m = resp.model_stats.add(name="iris", version="1", inference_count=2**63 + 5)
    m.batch_stats.add(batch_size=3).compute_infer.ns = 2**40
    doc = to_json(resp)
    assert doc["model_stats"][0]["inference_count"] == 2**63 + 5
    assert doc["model_stats"][0]["batch_stats"][0]["compute_infer"] == {"count": 0, "ns": 2**40}
    assert doc["model_stats"][0]["execution_count"] == 0  # zero counters are printed, as Triton does


@pytest.mark.parametrize("value", ["input", "", "x" * 40, "x" * 41, "é'\"\n", "\x00" * 10, "\x00" * 13, "a\tb" * 13, 7, None, ["x"] * 9])
def test_a_value_is_quoted_as_reprlib_quotes_it(value):
    """Error messages quote a short name with repr (the hot path) and anything else through reprlib: the same text."""
    assert codec._shown(value) == codec._SHORT.repr(value)
