"""A corpus of hostile requests against a real server: each gets the right status and a message saying what was
expected, and a valid request right after it is answered correctly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import grpc
import numpy as np
import pytest
from tests.integration.server.server_helpers import ThreadServer, decode_response, infer_request, reference, settings_for

from zoo.proto import grpc_service_pb2 as pb

INVALID, NOT_FOUND, EXHAUSTED, PRECONDITION = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
                                               grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.FAILED_PRECONDITION)
OK_ROWS = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], np.float32)
EXPECTED = "expected FP32 [-1, 4]"
METHOD = "/inference.GRPCInferenceService/"


@dataclass
class Case:
    """One hostile call: the RPC, what is sent (a message, or raw bytes), and what must come back."""

    rpc: str
    body: Callable[[], object]
    code: grpc.StatusCode
    says: tuple[str, ...]


def req(x=OK_ROWS, **kw) -> pb.ModelInferRequest:
    return infer_request("iris", x, **kw)


def edit(fn) -> Callable[[], pb.ModelInferRequest]:
    """A valid request, changed by fn."""

    def make():
        r = req()
        fn(r)
        return r

    return make


def typed(values, shape, field="fp32_contents") -> Callable[[], pb.ModelInferRequest]:
    def make():
        r = pb.ModelInferRequest(model_name="iris")
        getattr(r.inputs.add(name="input", datatype="FP32", shape=shape).contents, field).extend(values)
        return r

    return make


def with_param(key, setter) -> Callable[[], pb.ModelInferRequest]:
    return edit(lambda r: setter(r.parameters[key]))


def filled(value: float) -> Callable[[], pb.ModelInferRequest]:
    x = OK_ROWS.copy()
    x[1, 2] = value
    return lambda: req(x)


CASES = {
    "wrong input name": Case("ModelInfer", edit(lambda r: setattr(r.inputs[0], "name", "features")), INVALID, (EXPECTED, "got input 'features'")),
    "FP64 datatype": Case("ModelInfer", edit(lambda r: setattr(r.inputs[0], "datatype", "FP64")), INVALID, (EXPECTED, "got datatype FP64")),
    "INT64 datatype": Case("ModelInfer", edit(lambda r: setattr(r.inputs[0], "datatype", "INT64")), INVALID, (EXPECTED, "INT64")),
    "no datatype": Case("ModelInfer", edit(lambda r: setattr(r.inputs[0], "datatype", "")), INVALID, (EXPECTED, "(none)")),
    "no batch dimension": Case("ModelInfer", lambda: req(OK_ROWS[0]), INVALID, (EXPECTED, "add the batch dimension")),
    "wrong feature count": Case("ModelInfer", lambda: req(np.ones((2, 3), np.float32)), INVALID, (EXPECTED, "got [2, 3]")),
    "three dimensions": Case("ModelInfer", lambda: req(np.ones((1, 2, 4), np.float32)), INVALID, (EXPECTED, "got [1, 2, 4]")),
    "zero rows": Case("ModelInfer", lambda: req(np.ones((0, 4), np.float32)), INVALID, (EXPECTED, "at least one row")),
    "negative rows": Case("ModelInfer", edit(lambda r: r.inputs[0].shape.__setitem__(0, -1)), INVALID, (EXPECTED, "at least one row")),
    "huge claimed shape": Case("ModelInfer", edit(lambda r: r.inputs[0].shape.__setitem__(0, 1 << 40)), INVALID, (EXPECTED, "bytes of FP32, got 32")),
    "huge feature dim": Case("ModelInfer", edit(lambda r: r.inputs[0].shape.__setitem__(1, 1 << 62)), INVALID, (EXPECTED,)),
    "raw too short": Case("ModelInfer", edit(lambda r: r.raw_input_contents.__setitem__(0, b"\0" * 28)), INVALID, ("needs 32 bytes of FP32, got 28",)),
    "raw too long": Case("ModelInfer", edit(lambda r: r.raw_input_contents.__setitem__(0, b"\0" * 36)), INVALID, ("needs 32 bytes of FP32, got 36",)),
    "two inputs": Case("ModelInfer", edit(lambda r: r.inputs.add(name="other", datatype="FP32", shape=[2, 4])), INVALID, (EXPECTED, "one input named 'input'")),
    "no inputs": Case("ModelInfer", lambda: pb.ModelInferRequest(model_name="iris"), INVALID, (EXPECTED, "got 0 inputs")),
    "raw and typed together": Case("ModelInfer", edit(lambda r: r.inputs[0].contents.fp32_contents.extend([1.0] * 8)), INVALID, ("not both",)),
    "two raw contents": Case("ModelInfer", edit(lambda r: r.raw_input_contents.append(b"")), INVALID, ("2 raw_input_contents for 1 inputs",)),
    "typed count short": Case("ModelInfer", typed([1.0] * 7, [2, 4]), INVALID, (EXPECTED, "needs 8 values, got 7")),
    "typed wrong field": Case("ModelInfer", typed([1] * 8, [2, 4], "int_contents"), INVALID, ("int_contents", "fp32_contents")),
    "NaN input": Case("ModelInfer", filled(np.nan), INVALID, ("row 1 holds nan in petal_length_cm", "finite")),
    "+Inf input": Case("ModelInfer", filled(np.inf), INVALID, ("row 1 holds inf",)),
    "-Inf input": Case("ModelInfer", filled(-np.inf), INVALID, ("row 1 holds -inf",)),
    "finite values that overflow the model": Case("ModelInfer", lambda: req(np.full((3, 4), 3e38, np.float32)), INVALID,
                                                  ("row(s) 0, 1, 2 overflow the model", "not finite")),
    "unknown output": Case("ModelInfer", lambda: req(outputs=["logits"]), INVALID, ("unknown output 'logits'", "probabilities, one_hot, label")),
    "threshold above 1": Case("ModelInfer", lambda: req(threshold=2.0), INVALID, ("threshold must be a number in [0, 1]", "2.0")),
    "threshold below 0": Case("ModelInfer", lambda: req(threshold=-0.5), INVALID, ("threshold must be a number in [0, 1]",)),
    "threshold not a number": Case("ModelInfer", with_param("threshold", lambda p: setattr(p, "string_param", "high")), INVALID, ("'high'",)),
    "threshold NaN string": Case("ModelInfer", with_param("threshold", lambda p: setattr(p, "string_param", "nan")), INVALID, ("'nan'",)),
    "threshold bool": Case("ModelInfer", with_param("threshold", lambda p: setattr(p, "bool_param", True)), INVALID, ("True",)),
    "unknown model": Case("ModelInfer", lambda: infer_request("nope", OK_ROWS), NOT_FOUND, ("unknown model 'nope'", "iris")),
    "empty model name": Case("ModelInfer", lambda: infer_request("", OK_ROWS), grpc.StatusCode.INVALID_ARGUMENT, ("invalid model name ''",)),
    "path traversal name": Case("ModelInfer", lambda: infer_request("../iris", OK_ROWS), INVALID, ("invalid model name '../iris'", "letters, digits")),
    "absolute path name": Case("ModelInfer", lambda: infer_request("/etc/passwd", OK_ROWS), INVALID, ("invalid model name",)),
    "hidden name": Case("ModelInfer", lambda: infer_request(".iris", OK_ROWS), INVALID, ("invalid model name",)),
    "NUL in name": Case("ModelInfer", lambda: infer_request("iris\x00x", OK_ROWS), INVALID, ("invalid model name",)),
    "10,000-character name": Case("ModelInfer", lambda: infer_request("a" * 10_000, OK_ROWS), INVALID, ("(10000 characters)",)),
    "version 01": Case("ModelInfer", lambda: req(version="01"), NOT_FOUND, ("unknown version '01'", "versions: 1, 2")),
    "version +1": Case("ModelInfer", lambda: req(version="+1"), NOT_FOUND, ("unknown version '+1'",)),
    "version with a space": Case("ModelInfer", lambda: req(version=" 1"), NOT_FOUND, ("unknown version ' 1'",)),
    "version 1.0": Case("ModelInfer", lambda: req(version="1.0"), NOT_FOUND, ("unknown version '1.0'",)),
    "version -1": Case("ModelInfer", lambda: req(version="-1"), NOT_FOUND, ("unknown version '-1'",)),
    "version 999": Case("ModelInfer", lambda: req(version="999"), NOT_FOUND, ("unknown version '999'",)),
    "body that does not parse": Case("ModelInfer", lambda: b"\xff\xff\xff\xff not protobuf", INVALID,
                                     ("not a valid inference.ModelInferRequest message",)),
    "truncated body": Case("ModelInfer", lambda: req().SerializeToString()[:-7], INVALID, ("not a valid inference.ModelInferRequest",)),
    "metadata of a traversal name": Case("ModelMetadata", lambda: pb.ModelMetadataRequest(name="../../etc"), INVALID, ("invalid model name",)),
    "config of an unknown version": Case("ModelConfig", lambda: pb.ModelConfigRequest(name="iris", version="9"), NOT_FOUND, ("unknown version '9'",)),
    "statistics of an unknown model": Case("ModelStatistics", lambda: pb.ModelStatisticsRequest(name="nope"), NOT_FOUND, ("unknown model 'nope'",)),
    "ready of a traversal name": Case("ModelReady", lambda: pb.ModelReadyRequest(name="../iris"), INVALID, ("invalid model name",)),
    "load in model control none": Case("RepositoryModelLoad", lambda: pb.RepositoryModelLoadRequest(model_name="../../tmp"), PRECONDITION,
                                       ("--model-control-mode none", "explicit")),
    "unload in model control none": Case("RepositoryModelUnload", lambda: pb.RepositoryModelUnloadRequest(model_name="iris"), PRECONDITION,
                                         ("cannot unload models",)),
    "unparseable load body": Case("RepositoryModelLoad", lambda: b"\x0a\xff", INVALID, ("not a valid inference.RepositoryModelLoadRequest",)),
}


@pytest.fixture(scope="module")
def channel(server):
    with grpc.insecure_channel(server.address) as ch:
        yield ch


def call(channel, rpc: str, body):
    """Send a message or raw bytes to one RPC; the response bytes come back (or an RpcError is raised)."""
    raw = body if isinstance(body, bytes) else body.SerializeToString()
    return channel.unary_unary(METHOD + rpc)(raw, timeout=30)


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_request_is_refused_clearly_and_the_server_keeps_serving(channel, served_repo, name):
    case = CASES[name]
    with pytest.raises(grpc.RpcError) as e:
        call(channel, case.rpc, case.body())
    assert e.value.code() == case.code, e.value.details()
    for fragment in case.says:
        assert fragment in e.value.details(), e.value.details()
    assert len(e.value.details()) < 600  # whatever came, the answer stays short
    answer = pb.ModelInferResponse.FromString(call(channel, "ModelInfer", req()))
    want = reference(served_repo, "iris", 2, OK_ROWS)
    got = decode_response(answer)
    np.testing.assert_allclose(got["probabilities"], want["probabilities"], atol=1e-6)
    np.testing.assert_array_equal(got["label"], want["label"])


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 40


def test_a_message_over_the_size_limit_is_refused_and_the_server_keeps_serving(model_repo):
    srv = ThreadServer(settings_for(model_repo, max_message_bytes=65536)).start()
    try:
        with grpc.insecure_channel(srv.address) as ch:
            with pytest.raises(grpc.RpcError) as e:
                call(ch, "ModelInfer", req(np.ones((10_000, 4), np.float32)))  # 160 KB
            assert e.value.code() == EXHAUSTED
            assert pb.ModelInferResponse.FromString(call(ch, "ModelInfer", req())).outputs
    finally:
        srv.stop()
