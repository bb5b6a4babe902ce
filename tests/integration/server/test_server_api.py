"""A real server on an ephemeral port over a repository of real exports: protocol, predictions, errors, batching."""

from __future__ import annotations

import json
import threading
import urllib.request

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tests.integration.server.server_helpers import (
    HeldModel, ThreadServer, decode_response, infer_request, reference, rows_for, settings_for, wait_until,
)

from zoo.core import decision, repository
from zoo.proto import grpc_service_pb2 as pb
from zoo.proto import grpc_service_pb2_grpc as pb_grpc


def test_liveness_readiness_and_health(stub, server):
    assert stub.ServerLive(pb.ServerLiveRequest()).live
    assert stub.ServerReady(pb.ServerReadyRequest()).ready
    assert stub.ModelReady(pb.ModelReadyRequest(name="iris")).ready
    assert stub.ModelReady(pb.ModelReadyRequest(name="iris", version="1")).ready
    assert not stub.ModelReady(pb.ModelReadyRequest(name="broken")).ready
    with grpc.insecure_channel(server.address) as ch:
        h = health_pb2_grpc.HealthStub(ch)
        assert h.Check(health_pb2.HealthCheckRequest(service="")).status == health_pb2.HealthCheckResponse.SERVING
        assert h.Check(health_pb2.HealthCheckRequest(service="iris")).status == health_pb2.HealthCheckResponse.SERVING
        assert h.Check(health_pb2.HealthCheckRequest(service="broken")).status == health_pb2.HealthCheckResponse.NOT_SERVING


def test_model_metadata_and_config_reflect_the_card(stub, served_repo):
    card = repository.read_card(served_repo, "iris", 2)
    md = stub.ModelMetadata(pb.ModelMetadataRequest(name="iris"))
    assert md.platform == "onnxruntime_onnx" and list(md.versions) == ["1", "2"]
    assert [(t.name, t.datatype, list(t.shape)) for t in md.inputs] == [("input", "FP32", [-1, card.num_features])]
    c = card.num_classes
    assert [(t.name, t.datatype, list(t.shape)) for t in md.outputs] == [
        ("probabilities", "FP32", [-1, c]), ("one_hot", "FP32", [-1, c]), ("label", "INT64", [-1])
    ]
    cfg = stub.ModelConfig(pb.ModelConfigRequest(name="iris")).config
    assert cfg.platform == "onnxruntime_onnx" and cfg.max_batch_size == 1024
    assert [(i.name, list(i.dims)) for i in cfg.input] == [("input", [card.num_features])]
    assert [(o.name, list(o.dims)) for o in cfg.output] == [("probabilities", [c]), ("one_hot", [c]), ("label", [1])]
    assert cfg.dynamic_batching.max_queue_delay_microseconds == 2000
    assert cfg.parameters["execution_provider"].string_value in ("CPUExecutionProvider", "CUDAExecutionProvider")
    assert json.loads(cfg.parameters["feature_names"].string_value) == card.feature_names
    assert json.loads(cfg.parameters["class_names"].string_value) == card.class_names
    assert cfg.parameters["version"].string_value == "2"


def test_server_metadata_and_repository_index(stub):
    sm = stub.ServerMetadata(pb.ServerMetadataRequest())
    assert sm.name == "zoo" and "model_repository" in sm.extensions
    index = {(m.name, m.version): (m.state, m.reason) for m in stub.RepositoryIndex(pb.RepositoryIndexRequest()).models}
    assert index[("iris", "2")] == ("READY", "")
    state, reason = index[("broken", "1")]
    assert state == "UNAVAILABLE" and "corrupt" in reason
    ready = {m.name for m in stub.RepositoryIndex(pb.RepositoryIndexRequest(ready=True)).models}
    assert ready == {"iris", "breast-cancer"}


@pytest.mark.parametrize("model, version", [("iris", ""), ("iris", "1"), ("breast-cancer", "")])
def test_predictions_equal_in_process_onnxruntime(stub, served_repo, model, version):
    x = rows_for(served_repo, model, 37, seed=4)
    resp = stub.ModelInfer(infer_request(model, x, version=version))
    got = decode_response(resp)
    v = int(version) if version else repository.latest_version(served_repo, model)
    assert resp.model_version == str(v)
    want = reference(served_repo, model, v, x)
    np.testing.assert_allclose(got["probabilities"], want["probabilities"], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(got["one_hot"], want["one_hot"])
    np.testing.assert_array_equal(got["label"], want["label"])


@pytest.mark.parametrize("model", ["iris", "breast-cancer"])
def test_one_hot_equals_thresholded_probabilities_default_and_per_request(stub, served_repo, model):
    card = repository.read_card(served_repo, model, repository.latest_version(served_repo, model))
    x = rows_for(served_repo, model, 64, seed=5)
    got = decode_response(stub.ModelInfer(infer_request(model, x)))
    p = got["probabilities"]
    np.testing.assert_array_equal(got["one_hot"], decision.one_hot(p, card.task, card.default_threshold))
    np.testing.assert_array_equal(got["label"], decision.labels(p, card.task, card.default_threshold))
    t = 0.7
    tuned = decode_response(stub.ModelInfer(infer_request(model, x, threshold=t, outputs=["probabilities", "one_hot", "label"])))
    np.testing.assert_array_equal(tuned["one_hot"], decision.one_hot(tuned["probabilities"], card.task, t))
    np.testing.assert_array_equal(tuned["label"], decision.labels(tuned["probabilities"], card.task, t))
    assert not np.array_equal(tuned["label"], got["label"])  # the threshold really changed something


def test_threshold_as_string_parameter_and_requested_output_subset(stub, served_repo):
    x = rows_for(served_repo, "breast-cancer", 16, seed=6)
    req = infer_request("breast-cancer", x, outputs=["label"])
    req.parameters["threshold"].string_param = "0.9"
    resp = stub.ModelInfer(req)
    assert [o.name for o in resp.outputs] == ["label"]
    probs = reference(served_repo, "breast-cancer", 1, x)["probabilities"]
    np.testing.assert_array_equal(decode_response(resp)["label"], (probs[:, 1] >= np.float32(0.9)).astype(np.int64))


def test_typed_fp32_contents_give_the_same_answer_as_raw(stub, served_repo):
    x = rows_for(served_repo, "iris", 5, seed=7)
    req = pb.ModelInferRequest(model_name="iris")
    req.inputs.add(name="input", datatype="FP32", shape=list(x.shape)).contents.fp32_contents.extend(x.ravel().tolist())
    typed = decode_response(stub.ModelInfer(req))
    raw = decode_response(stub.ModelInfer(infer_request("iris", x)))
    for k in raw:
        np.testing.assert_array_equal(typed[k], raw[k])


def test_stream_infer_answers_every_request_by_its_id(stub, served_repo):
    x = rows_for(served_repo, "iris", 3, seed=8)
    reqs = [infer_request("iris", x[:1]), infer_request("iris", x[0]), infer_request("iris", x)]
    for i, r in enumerate(reqs):
        r.id = f"req-{i}"
    answers = {a.infer_response.id: a for a in stub.ModelStreamInfer(iter(reqs))}
    assert sorted(answers) == ["req-0", "req-1", "req-2"]
    assert [bool(answers[f"req-{i}"].error_message) for i in range(3)] == [False, True, False]
    assert "add the batch dimension" in answers["req-1"].error_message  # an error answers only its own request
    want = reference(served_repo, "iris", 2, x)["probabilities"]
    np.testing.assert_allclose(decode_response(answers["req-2"].infer_response)["probabilities"], want, atol=1e-6)
    np.testing.assert_allclose(decode_response(answers["req-0"].infer_response)["probabilities"], want[:1], atol=1e-6)


def _code(fn) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as e:
        fn()
    return e.value.code(), e.value.details()


def test_error_classes_map_to_status_codes(stub):
    ok = np.ones((2, 4), np.float32)
    code, msg = _code(lambda: stub.ModelInfer(infer_request("iris", ok[0])))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and msg.endswith("got [4]: add the batch dimension")
    code, msg = _code(lambda: stub.ModelInfer(infer_request("iris", np.ones((2, 3), np.float32))))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "got [2, 3]" in msg
    req = infer_request("iris", ok)
    req.inputs[0].datatype = "FP64"
    assert _code(lambda: stub.ModelInfer(req))[0] == grpc.StatusCode.INVALID_ARGUMENT
    req = infer_request("iris", ok)
    req.raw_input_contents[0] = req.raw_input_contents[0][:-4]
    code, msg = _code(lambda: stub.ModelInfer(req))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "needs 32 bytes of FP32, got 28" in msg
    bad = ok.copy()
    bad[1, 0] = np.nan
    code, msg = _code(lambda: stub.ModelInfer(infer_request("iris", bad)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "row 1" in msg
    code, msg = _code(lambda: stub.ModelInfer(infer_request("iris", ok, outputs=["logits"])))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "unknown output 'logits'" in msg
    code, msg = _code(lambda: stub.ModelInfer(infer_request("iris", ok, threshold=2.0)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "threshold" in msg
    code, msg = _code(lambda: stub.ModelInfer(infer_request("nope", ok)))
    assert code == grpc.StatusCode.NOT_FOUND and "iris" in msg  # lists what exists
    assert _code(lambda: stub.ModelInfer(infer_request("iris", ok, version="7")))[0] == grpc.StatusCode.NOT_FOUND
    assert _code(lambda: stub.ModelInfer(infer_request("iris", ok, version="x")))[0] == grpc.StatusCode.NOT_FOUND
    code, msg = _code(lambda: stub.ModelInfer(infer_request("broken", ok)))
    assert code == grpc.StatusCode.UNAVAILABLE and "corrupt" in msg
    assert _code(lambda: stub.ModelMetadata(pb.ModelMetadataRequest(name="nope")))[0] == grpc.StatusCode.NOT_FOUND
    # ...and the healthy models still serve.
    assert stub.ModelInfer(infer_request("iris", ok)).outputs


def _metric(server, text_name: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.server.metrics_port}/metrics", timeout=5) as r:
        return "\n".join(line for line in r.read().decode().splitlines() if line.startswith(text_name))


def test_concurrent_callers_each_get_their_own_rows(server, served_repo):
    n_callers, per_caller = 8, 25
    errors: list[BaseException] = []
    mismatches: list[int] = []
    barrier = threading.Barrier(n_callers)
    x_all = rows_for(served_repo, "iris", n_callers * 3, seed=11)
    want = reference(served_repo, "iris", 2, x_all)["probabilities"]

    def caller(i: int) -> None:
        try:
            with grpc.insecure_channel(server.address) as ch:
                s = pb_grpc.GRPCInferenceServiceStub(ch)
                barrier.wait(30)
                for _ in range(per_caller):
                    mine = slice(3 * i, 3 * i + 3)
                    got = decode_response(s.ModelInfer(infer_request("iris", x_all[mine]), timeout=30))["probabilities"]
                    if not np.allclose(got, want[mine], atol=1e-6):
                        mismatches.append(i)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(n_callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and not mismatches


def test_requests_waiting_for_a_busy_model_merge_into_one_batch_and_statistics_show_it(model_repo):
    srv = ThreadServer(settings_for(model_repo)).start()
    x_all = rows_for(model_repo, "iris", 8 * 3, seed=11)
    want = reference(model_repo, "iris", 2, x_all)["probabilities"]
    try:
        with HeldModel(srv, "iris") as held, grpc.insecure_channel(srv.address) as ch:
            stub = pb_grpc.GRPCInferenceServiceStub(ch)
            calls = [stub.ModelInfer.future(infer_request("iris", x_all[:3]), timeout=60)]
            held.wait_held()
            calls += [stub.ModelInfer.future(infer_request("iris", x_all[3 * i:3 * i + 3]), timeout=60) for i in range(1, 8)]
            wait_until(lambda: held.batcher.queued_rows == 21, "seven requests queued behind the busy model")
            held.release()
            for i, c in enumerate(calls):
                np.testing.assert_allclose(decode_response(c.result())["probabilities"], want[3 * i:3 * i + 3], atol=1e-6)
            s = stub.ModelStatistics(pb.ModelStatisticsRequest(name="iris", version="2")).model_stats[0]
        assert (s.inference_count, s.execution_count, s.inference_stats.success.count) == (24, 2, 8)
        assert sorted((b.batch_size, b.compute_infer.count) for b in s.batch_stats) == [(3, 1), (21, 1)]
        assert s.inference_stats.queue.count == 8 and s.inference_stats.compute_infer.count == 8
        assert _metric(srv, 'zoo_batch_size_count{model="iris"}').split()[-1] == "2.0"
        assert 'provider="' in _metric(srv, "zoo_model_provider")
        assert float(_metric(srv, 'zoo_requests_total{model="iris",version="2"}').split()[-1]) == 8
    finally:
        srv.stop()
