"""The provider really in use: --require-gpu refuses CPU fallback; on a CUDA machine the models run on CUDA."""

from __future__ import annotations

import subprocess
import sys

import grpc
import numpy as np
import onnxruntime as ort
import pytest
from tests.integration.server.server_helpers import ThreadServer, decode_response, infer_request, reference, settings_for

from zoo.proto import grpc_service_pb2 as pb
from zoo.proto import grpc_service_pb2_grpc as pb_grpc


def _cuda_really_works() -> bool:
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return False
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)
    s = ort.InferenceSession(m.SerializeToString(), providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    return s.get_providers()[0] == "CUDAExecutionProvider"


CUDA = _cuda_really_works()


@pytest.mark.skipif(CUDA, reason="CUDA works here: the refusal path can't be exercised")
def test_require_gpu_without_cuda_exits_nonzero_naming_the_provider(model_repo):
    out = subprocess.run(
        [sys.executable, "-m", "zoo.server", "--repository", str(model_repo), "--port", "0", "--metrics-port", "-1", "--http-port", "-1", "--require-gpu"],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 3
    assert "runs on CPUExecutionProvider, but --require-gpu is set" in out.stderr


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a working CUDAExecutionProvider")
def test_models_run_on_cuda_with_io_binding_and_match_cpu(model_repo):
    srv = ThreadServer(settings_for(model_repo, require_gpu=True)).start()
    try:
        with grpc.insecure_channel(srv.address) as ch:
            s = pb_grpc.GRPCInferenceServiceStub(ch)
            cfg = s.ModelConfig(pb.ModelConfigRequest(name="iris")).config
            assert cfg.parameters["execution_provider"].string_value == "CUDAExecutionProvider"
            x = np.random.default_rng(0).normal(size=(100, 4)).astype(np.float32)
            got = decode_response(s.ModelInfer(infer_request("iris", x)))
            want = reference(model_repo, "iris", 2, x)
            np.testing.assert_allclose(got["probabilities"], want["probabilities"], atol=1e-5)
    finally:
        srv.stop()
