"""The client codec without a server: ModelInfo from real ModelMetadata/ModelConfig messages, message-cap
arithmetic, request building, response decoding, and predict_plan driven by hand (it does no I/O)."""

from __future__ import annotations

import struct

import grpc
import numpy as np
import pytest

from zoo.client import codec
from zoo.client.codec import ClientError, ModelInfo
from zoo.core import contract, model_config
from zoo.core.contract import DEFAULT_BATCHING, LABEL, ONE_HOT, PROBABILITIES, ModelCard
from zoo.proto import grpc_service_pb2 as pb

FEATURES = ["sepal, length", "sepal width", 'petal "length"', "petal_width"]  # names may hold commas and quotes
CLASSES = ["setosa, the small", "versicolor", "virginica"]


def make_card(version: int = 2, classes=CLASSES, threshold: float = 0.5) -> ModelCard:
    """A 4-feature multiclass card, as an export records it."""
    return ModelCard("iris", version, "multiclass", list(FEATURES), list(classes), threshold, "0" * 64)


def metadata_response(card: ModelCard, versions=("1", "2")) -> pb.ModelMetadataResponse:
    """The ModelMetadata answer for `card`, built as the server builds it."""
    resp = pb.ModelMetadataResponse(name=card.name, versions=list(versions), platform=contract.PLATFORM)
    resp.inputs.add(name=card.input.name, datatype=card.input.datatype, shape=card.input.shape)
    for spec in card.outputs:
        resp.outputs.add(name=spec.name, datatype=spec.datatype, shape=spec.shape)
    return resp


def config_response(card: ModelCard) -> pb.ModelConfigResponse:
    """The ModelConfig answer for `card`, with the facts only a server adds (version, provider)."""
    runtime = {contract.CONFIG_VERSION: str(card.version), contract.CONFIG_EXECUTION_PROVIDER: "CPUExecutionProvider"}
    return pb.ModelConfigResponse(config=model_config.build(card, DEFAULT_BATCHING, runtime=runtime))


def info_for(card: ModelCard, versions=("1", "2")) -> ModelInfo:
    """ModelInfo decoded from the two real answer messages of `card`."""
    return codec.model_info(metadata_response(card, versions), config_response(card))


def request_rows(req: pb.ModelInferRequest) -> np.ndarray:
    """The FP32 rows a ModelInferRequest carries (decoded independently of the codec)."""
    shape = [int(d) for d in req.inputs[0].shape]
    return np.frombuffer(req.raw_input_contents[0], dtype="<f4").reshape(shape)


def response(model: str, version: str, outputs: dict[str, np.ndarray]) -> pb.ModelInferResponse:
    """A ModelInferResponse carrying `outputs` as raw little-endian bytes."""
    resp = pb.ModelInferResponse(model_name=model, model_version=version)
    for name, a in outputs.items():
        dt = contract.DATATYPES[a.dtype]
        resp.outputs.add(name=name, datatype=dt, shape=list(a.shape))
        resp.raw_output_contents.append(a.astype(contract.NUMPY_DTYPES[dt]).tobytes())
    return resp


def answer(req: pb.ModelInferRequest, version: str) -> pb.ModelInferResponse:
    """A fake server's answer: label = the row's first feature, so order and provenance show in the result."""
    x = request_rows(req)
    probs = np.repeat(x[:, :1], 3, axis=1).astype(np.float32)
    return response(req.model_name, version, {PROBABILITIES: probs, LABEL: x[:, 0].astype(np.int64)})


def finish(plan, reply):
    """Send the last reply to a plan and return the Prediction it returns."""
    with pytest.raises(StopIteration) as done:
        plan.send(reply)
    return done.value.value


# ModelInfo


def test_model_info_reads_names_task_threshold_version_and_tensors_from_real_messages():
    info = info_for(make_card(threshold=0.25))
    assert (info.name, info.version, info.versions, info.platform) == ("iris", "2", ["1", "2"], contract.PLATFORM)
    assert (info.task, info.default_threshold) == ("multiclass", 0.25)
    assert info.feature_names == FEATURES and info.class_names == CLASSES  # commas and quotes survive
    assert (info.num_features, info.num_classes, info.input_name) == (4, 3, "input")
    assert info.inputs == [("input", "FP32", [-1, 4])]
    assert info.outputs == [(PROBABILITIES, "FP32", [-1, 3]), (ONE_HOT, "FP32", [-1, 3]), (LABEL, "INT64", [-1])]


def test_model_info_keeps_a_zero_threshold_and_has_none_without_the_parameter():
    assert info_for(make_card(threshold=0.0)).default_threshold == 0.0
    cfg = config_response(make_card())
    del cfg.config.parameters[contract.CONFIG_DEFAULT_THRESHOLD]
    assert codec.model_info(metadata_response(make_card()), cfg).default_threshold is None


def test_bytes_per_row_sums_the_reported_tensors_without_the_batch_dimension():
    # request: 4 FP32; response: 3 FP32 + 3 FP32 + 1 INT64 (a per-row scalar counts once)
    assert info_for(make_card()).bytes_per_row() == (4 * 4, 3 * 4 + 3 * 4 + 8)


def test_rows_per_request_is_the_budget_over_the_larger_of_request_and_response():
    info = info_for(make_card())  # 32 response bytes a row, more than the 16 of the request
    assert codec.rows_per_request(info, codec.REQUEST_OVERHEAD_BYTES + 3 * 32) == 3
    assert codec.rows_per_request(info, codec.REQUEST_OVERHEAD_BYTES + 3 * 32 + 31) == 3
    assert codec.rows_per_request(info, codec.REQUEST_OVERHEAD_BYTES + 4 * 32) == 4


@pytest.mark.parametrize("cap", [1, 1024, codec.REQUEST_OVERHEAD_BYTES, codec.REQUEST_OVERHEAD_BYTES + 31])
def test_rows_per_request_is_at_least_one_when_not_even_a_row_fits(cap):
    assert codec.rows_per_request(info_for(make_card()), cap) == 1


# splitting and requests


def test_split_rows_cuts_consecutive_chunks_that_rejoin_to_the_input():
    x = np.arange(14, dtype=np.float32).reshape(7, 2)
    chunks = codec.split_rows(x, 3)
    assert [len(c) for c in chunks] == [3, 3, 1]
    np.testing.assert_array_equal(np.concatenate(chunks), x)
    assert [len(c) for c in codec.split_rows(x[:6], 3)] == [3, 3]


def test_split_rows_keeps_a_small_or_empty_input_whole():
    x = np.ones((2, 4), np.float32)
    assert codec.split_rows(x, 3)[0] is x and len(codec.split_rows(x, 3)) == 1
    empty = np.zeros((0, 4), np.float32)
    assert [c.shape for c in codec.split_rows(empty, 3)] == [(0, 4)]  # the server judges an empty request


def test_infer_request_carries_raw_little_endian_fp32_and_every_field():
    x = np.array([[1.0, -2.0], [0.5, 3.25]], dtype=">f4")  # big-endian in memory: must still go little-endian
    req = codec.infer_request("iris", x, input_name="input", version="2", threshold=0.25, outputs=[LABEL, ONE_HOT],
                              request_id="req-7")
    assert (req.model_name, req.model_version, req.id) == ("iris", "2", "req-7")
    t = req.inputs[0]
    assert (t.name, t.datatype, list(t.shape)) == ("input", "FP32", [2, 2])
    assert req.raw_input_contents[0] == struct.pack("<4f", 1.0, -2.0, 0.5, 3.25)
    assert contract.THRESHOLD_PARAM == "threshold"
    assert req.parameters[contract.THRESHOLD_PARAM].double_param == 0.25
    assert [o.name for o in req.outputs] == [LABEL, ONE_HOT]


def test_infer_request_converts_float64_and_leaves_threshold_and_outputs_out_when_not_given():
    req = codec.infer_request("m", np.array([[0.1, 0.2]]), input_name="x")
    assert req.raw_input_contents[0] == np.array([[0.1, 0.2]], dtype="<f4").tobytes()
    assert req.inputs[0].name == "x" and req.model_version == "" and req.id == ""
    assert contract.THRESHOLD_PARAM not in req.parameters and len(req.outputs) == 0


# decoding


def test_decode_outputs_reads_raw_contents_with_shapes_and_native_dtypes():
    probs = np.array([[0.1, 0.9], [0.7, 0.3]], np.float32)
    labels = np.array([1, -1], np.int64)
    out = codec.decode_outputs(response("m", "1", {PROBABILITIES: probs, LABEL: labels}))
    assert list(out) == [PROBABILITIES, LABEL]
    np.testing.assert_array_equal(out[PROBABILITIES], probs)
    np.testing.assert_array_equal(out[LABEL], labels)
    assert out[PROBABILITIES].dtype == np.float32 and out[LABEL].dtype == np.int64


def test_decode_outputs_reads_typed_contents():
    resp = pb.ModelInferResponse(model_name="m")
    t = resp.outputs.add(name=PROBABILITIES, datatype="FP32", shape=[2, 2])
    t.contents.fp32_contents.extend([0.25, 0.75, 1.0, 0.0])
    t = resp.outputs.add(name=LABEL, datatype="INT64", shape=[2])
    t.contents.int64_contents.extend([1, -1])
    out = codec.decode_outputs(resp)
    np.testing.assert_array_equal(out[PROBABILITIES], np.array([[0.25, 0.75], [1.0, 0.0]], np.float32))
    np.testing.assert_array_equal(out[LABEL], np.array([1, -1], np.int64))


@pytest.mark.parametrize("datatype", ["BYTES", "FP64", "INT32", ""])
def test_decode_outputs_refuses_an_unsupported_datatype_as_client_error(datatype):
    resp = pb.ModelInferResponse(model_name="m")
    resp.outputs.add(name="weird", datatype=datatype, shape=[1])
    resp.raw_output_contents.append(b"\0" * 8)
    with pytest.raises(ClientError, match="'weird' has unsupported datatype") as e:
        codec.decode_outputs(resp)
    assert e.value.code == grpc.StatusCode.INTERNAL


def test_decode_outputs_refuses_raw_bytes_that_do_not_fill_the_shape_as_client_error():
    resp = pb.ModelInferResponse(model_name="m")
    resp.outputs.add(name=PROBABILITIES, datatype="FP32", shape=[2, 3])
    resp.raw_output_contents.append(np.zeros(5, "<f4").tobytes())  # 5 values for a [2, 3] tensor
    with pytest.raises(ClientError):
        codec.decode_outputs(resp)


def test_assemble_concatenates_chunks_in_order():
    parts = [{PROBABILITIES: np.full((n, 2), k, np.float32), LABEL: np.arange(s, s + n, dtype=np.int64)}
             for k, (s, n) in enumerate([(0, 3), (3, 3), (6, 1)])]
    pred = codec.assemble("iris", "2", ["a", "b"], parts)
    assert (pred.model, pred.version, pred.class_names, len(pred)) == ("iris", "2", ["a", "b"], 7)
    np.testing.assert_array_equal(pred.labels, np.arange(7))
    np.testing.assert_array_equal(pred.probabilities[:, 0], [0, 0, 0, 1, 1, 1, 2])
    assert pred.one_hot is None  # not sent: None, not an empty array
    assert list(pred.outputs) == [PROBABILITIES, LABEL]


def test_assemble_leaves_out_an_output_that_some_chunk_lacks_and_handles_no_parts():
    parts = [{LABEL: np.array([0]), ONE_HOT: np.ones((1, 2), np.float32)}, {LABEL: np.array([1])}]
    pred = codec.assemble("m", "1", ["a", "b"], parts)
    assert pred.one_hot is None and pred.probabilities is None
    np.testing.assert_array_equal(pred.labels, [0, 1])
    empty = codec.assemble("m", "1", ["a", "b"], [])
    assert (empty.probabilities, empty.one_hot, empty.labels, len(empty)) == (None, None, None, 0)


# as_rows


def test_as_rows_gives_a_row_the_batch_dimension_and_makes_a_contiguous_float32_copy():
    x = codec.as_rows([1, 2, 3])
    assert x.shape == (1, 3) and x.dtype == np.float32
    strided = np.arange(12, dtype=np.float64).reshape(3, 4)[:, ::2]
    y = codec.as_rows(strided)
    assert y.flags.c_contiguous and y.dtype == np.float32
    np.testing.assert_array_equal(y, strided)


@pytest.mark.parametrize("bad, message", [
    ([["1", "x"]], "not numeric"),
    ([[1, 2], [3]], "not numeric"),  # ragged
    ({"a": 1}, "not numeric"),
    (5.0, r"expected a row \[F\] or rows \[N, F\]; got shape \[\]"),
    (np.zeros((2, 2, 2)), r"got shape \[2, 2, 2\]"),
])
def test_as_rows_refuses_what_is_not_rows_as_invalid_argument(bad, message):
    with pytest.raises(ClientError, match=message) as e:
        codec.as_rows(bad)
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT


# predict_plan, driven by hand


def test_predict_plan_asks_for_info_then_sends_one_request_per_chunk_in_order():
    card = make_card()
    cache: dict = {}
    cap = codec.REQUEST_OVERHEAD_BYTES + 3 * 32  # 3 rows a request
    x = np.arange(7 * 4, dtype=np.float32).reshape(7, 4)
    x[:, 0] = np.arange(7)
    plan = codec.predict_plan(cache, cap, "iris", x, threshold=0.4, outputs=[PROBABILITIES, LABEL])
    assert next(plan) == ("info", "iris", "")
    info = info_for(card)
    op = plan.send(info)
    sent = []
    for _ in range(2):
        assert op[0] == "infer"
        sent.append(op[1])
        op = plan.send(answer(op[1], "2"))
    sent.append(op[1])
    pred = finish(plan, answer(op[1], "2"))
    assert [len(request_rows(r)) for r in sent] == [3, 3, 1]
    np.testing.assert_array_equal(np.concatenate([request_rows(r) for r in sent]), x)
    for r in sent:
        assert r.model_name == "iris" and r.parameters[contract.THRESHOLD_PARAM].double_param == 0.4
        assert [o.name for o in r.outputs] == [PROBABILITIES, LABEL]
    np.testing.assert_array_equal(pred.labels, np.arange(7))
    assert (pred.version, pred.class_names, pred.one_hot) == ("2", CLASSES, None)
    assert cache[("iris", "")] is info


def test_predict_plan_sends_later_chunks_to_the_version_that_answered_the_first():
    cap = codec.REQUEST_OVERHEAD_BYTES + 3 * 32
    cache = {("iris", ""): info_for(make_card(version=2))}
    plan = codec.predict_plan(cache, cap, "iris", np.zeros((7, 4), np.float32))
    first = next(plan)[1]  # info is cached: straight to the first request
    assert first.model_version == ""
    second = plan.send(answer(first, "2"))[1]
    third = plan.send(answer(second, "2"))[1]
    assert (second.model_version, third.model_version) == ("2", "2")
    assert finish(plan, answer(third, "2")).version == "2"


def test_predict_plan_refetches_info_when_another_version_answered():
    cache = {("iris", ""): info_for(make_card(version=2))}  # the default was v2 when it was cached
    plan = codec.predict_plan(cache, codec.DEFAULT_MAX_MESSAGE_BYTES, "iris", np.zeros((2, 4), np.float32))
    req = next(plan)[1]
    assert plan.send(answer(req, "3")) == ("info", "iris", "3")  # a hot swap made v3 the default
    v3 = info_for(make_card(version=3, classes=["x", "y", "z"]), versions=("2", "3"))
    pred = finish(plan, v3)
    assert (pred.version, pred.class_names) == ("3", ["x", "y", "z"])  # v3's classes, not the cached v2's
    assert cache[("iris", "3")] is v3


def test_predict_plan_with_a_named_version_asks_for_that_version_throughout():
    cap = codec.REQUEST_OVERHEAD_BYTES + 3 * 32
    plan = codec.predict_plan({}, cap, "iris", np.zeros((4, 4), np.float32), version=1)
    assert next(plan) == ("info", "iris", "1")
    req = plan.send(info_for(make_card(version=1)))[1]
    assert req.model_version == "1"
    req = plan.send(answer(req, "1"))[1]
    assert req.model_version == "1"
    assert finish(plan, answer(req, "1")).version == "1"


def test_predict_plan_refuses_bad_input_before_any_io():
    plan = codec.predict_plan({}, codec.DEFAULT_MAX_MESSAGE_BYTES, "iris", [["a"]])
    with pytest.raises(ClientError, match="not numeric"):
        next(plan)
