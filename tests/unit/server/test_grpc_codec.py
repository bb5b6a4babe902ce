"""The gRPC codec: ModelInferRequest inputs (raw and typed) into an InferRequest (checked into an InferenceCall), results
into raw outputs."""

from __future__ import annotations

import numpy as np
import pytest

from zoo.core.contract import ModelCard
from zoo.proto import grpc_service_pb2 as pb
from zoo.server.errors import InvalidInput
from zoo.server.grpc_api import codec
from zoo.server.inference import InferenceResult, call_for


def decode_input(req: pb.ModelInferRequest, card: ModelCard) -> np.ndarray:
    return call_for(card, codec.decode(req)).rows

CARD = ModelCard(
    name="iris",
    version=1,
    task="multiclass",
    feature_names=["sepal_length", "sepal_width", "petal_length", "petal_width"],
    class_names=["a", "b", "c"],
    default_threshold=0.0,
    model_sha256="0" * 64,
)


def raw_request(x: np.ndarray, *, shape=None, datatype="FP32", name="input", raw: bytes | None = None) -> pb.ModelInferRequest:
    req = pb.ModelInferRequest(model_name="iris")
    req.inputs.add(name=name, datatype=datatype, shape=list(x.shape if shape is None else shape))
    req.raw_input_contents.append(x.tobytes() if raw is None else raw)
    return req


def typed_request(values, shape) -> pb.ModelInferRequest:
    req = pb.ModelInferRequest(model_name="iris")
    t = req.inputs.add(name="input", datatype="FP32", shape=shape)
    t.contents.fp32_contents.extend(values)
    return req


def test_raw_and_typed_inputs_decode_to_the_same_rows():
    x = np.arange(8, dtype=np.float32).reshape(2, 4) / 3
    a = decode_input(raw_request(x), CARD)
    b = decode_input(typed_request(x.ravel().tolist(), [2, 4]), CARD)
    np.testing.assert_array_equal(a, x)
    np.testing.assert_array_equal(b, x)
    assert a.dtype == b.dtype == np.float32


def test_missing_batch_dimension_says_so_and_lists_features():
    x = np.ones(4, dtype=np.float32)
    with pytest.raises(InvalidInput) as e:
        decode_input(raw_request(x), CARD)
    assert str(e.value) == (
        "expected FP32 [-1, 4] (sepal_length, sepal_width, petal_length, petal_width); got [4]: add the batch dimension"
    )


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(shape=[1, 3]), "got [1, 3]"),
        (dict(shape=[0, 4]), "at least one row"),
        (dict(datatype="FP64"), "got datatype FP64"),
        (dict(name="features"), "got input 'features'"),
        (dict(raw=b"\0" * 12), "needs 16 bytes of FP32, got 12 bytes"),
    ],
)
def test_bad_inputs_are_refused_with_what_was_expected(kwargs, fragment):
    with pytest.raises(InvalidInput) as e:
        decode_input(raw_request(np.ones((1, 4), np.float32), **kwargs), CARD)
    assert fragment in str(e.value)
    assert str(e.value).startswith("expected FP32 [-1, 4]")


def test_typed_count_mismatch_and_wrong_typed_field():
    with pytest.raises(InvalidInput, match="needs 8 values, got 7"):
        decode_input(typed_request([1.0] * 7, [2, 4]), CARD)
    req = pb.ModelInferRequest(model_name="iris")
    req.inputs.add(name="input", datatype="FP32", shape=[1, 4]).contents.fp64_contents.extend([1.0] * 4)
    with pytest.raises(InvalidInput, match="fp64_contents"):
        decode_input(req, CARD)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_name_the_row(bad):
    x = np.ones((5, 4), dtype=np.float32)
    x[3, 2] = bad
    with pytest.raises(InvalidInput, match=r"row 3 .*petal_length"):
        decode_input(raw_request(x), CARD)


def test_huge_finite_values_whose_sum_overflows_are_accepted():
    x = np.full((3, 4), 3e38, dtype=np.float32)  # each finite; their float32 sum is inf
    with np.errstate(over="ignore"):
        assert not np.isfinite(x.sum())
    np.testing.assert_array_equal(decode_input(raw_request(x), CARD), x)


def test_two_inputs_or_raw_plus_typed_are_refused():
    req = raw_request(np.ones((1, 4), np.float32))
    req.inputs.add(name="other", datatype="FP32", shape=[1, 4])
    with pytest.raises(InvalidInput, match="one input"):
        decode_input(req, CARD)
    req = raw_request(np.ones((1, 4), np.float32))
    req.inputs[0].contents.fp32_contents.extend([1.0] * 4)
    with pytest.raises(InvalidInput, match="not both"):
        decode_input(req, CARD)


def test_encode_response_round_trips_through_raw_bytes():
    outs = {"probabilities": np.array([[0.2, 0.8]], np.float32), "label": np.array([1], np.int64)}
    resp = codec.encode(InferenceResult("iris", 3, "abc", outs))
    assert (resp.model_name, resp.model_version, resp.id) == ("iris", "3", "abc")
    assert [(o.name, o.datatype, list(o.shape)) for o in resp.outputs] == [("probabilities", "FP32", [1, 2]), ("label", "INT64", [1])]
    np.testing.assert_array_equal(np.frombuffer(resp.raw_output_contents[0], np.float32), outs["probabilities"].ravel())
    np.testing.assert_array_equal(np.frombuffer(resp.raw_output_contents[1], np.int64), [1])


def test_request_parameters_become_plain_values():
    req = pb.ModelInferRequest()
    req.parameters["threshold"].double_param = 0.25
    req.parameters["n"].int64_param = 3
    req.parameters["s"].string_param = "x"
    req.parameters["b"].bool_param = True
    assert codec.parameters(req.parameters) == {"threshold": 0.25, "n": 3, "s": "x", "b": True}


def test_threshold_as_a_string_parameter_reaches_the_call():
    # tritonclient and KServe's SDK can only send bool, int and str parameters: a numeric string is the way.
    req = typed_request([1.0] * 4, [1, 4])
    req.parameters["threshold"].string_param = "0.7"
    call = call_for(CARD, codec.decode(req))
    assert call.threshold == 0.7 and call.outputs == ("probabilities", "one_hot", "label")


def test_raw_contents_count_must_match_the_inputs():
    req = raw_request(np.ones((1, 4), np.float32))
    req.raw_input_contents.append(b"")
    with pytest.raises(InvalidInput, match="2 raw_input_contents for 1 inputs"):
        call_for(CARD, codec.decode(req))
