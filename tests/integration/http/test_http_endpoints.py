"""Every v2 REST endpoint on a real server answers what its gRPC twin answers, in the JSON Triton's clients read."""

from __future__ import annotations

import http.client

import numpy as np
from google.protobuf import json_format

from tests.integration.http.http_helpers import call, infer, infer_json
from tests.integration.server.server_helpers import ThreadServer, infer_request, settings_for
from zoo.core.contract import DEFAULT_BATCHING
from zoo.proto import grpc_service_pb2 as pb
from zoo.proto import model_config_pb2 as mc

X = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


def test_health_is_live_and_ready_and_models_report_readiness(server):
    port = server.server.http_port
    assert (call(port, "GET", "/v2/health/live").status, call(port, "GET", "/v2/health/live").json()) == (200, {"live": True})
    assert (call(port, "GET", "/v2/health/ready").status, call(port, "GET", "/v2/health/ready").json()) == (200, {"ready": True})
    for path in ("/v2/models/iris/ready", "/v2/models/iris/versions/1/ready"):
        a = call(port, "GET", path)
        assert (a.status, a.json()) == (200, {"name": "iris", "ready": True})
    a = call(port, "GET", "/v2/models/broken/ready")  # the protocol: a 4xx status means false
    assert (a.status, a.json()) == (400, {"name": "broken", "ready": False})
    assert call(port, "GET", "/v2/models/nope/ready").status == 404


def test_server_and_model_metadata_equal_grpc(server, stub):
    port = server.server.http_port
    sm = stub.ServerMetadata(pb.ServerMetadataRequest())
    assert call(port, "GET", "/v2").json() == {"name": sm.name, "version": sm.version, "extensions": list(sm.extensions)}
    for path, name, version in [("/v2/models/iris", "iris", ""), ("/v2/models/iris/versions/1", "iris", "1"),
                                ("/v2/models/breast-cancer", "breast-cancer", "")]:
        a = call(port, "GET", path)
        assert a.status == 200 and a.headers.get("Content-Type").startswith("application/json")
        want = stub.ModelMetadata(pb.ModelMetadataRequest(name=name, version=version))
        assert json_format.ParseDict(a.json(), pb.ModelMetadataResponse()) == want


def test_model_config_is_the_grpc_message_as_triton_json(server, stub):
    port = server.server.http_port
    for path, version in [("/v2/models/iris/config", ""), ("/v2/models/iris/versions/1/config", "1")]:
        doc = call(port, "GET", path).json()
        assert json_format.ParseDict(doc, mc.ModelConfig()) == stub.ModelConfig(pb.ModelConfigRequest(name="iris", version=version)).config
        # Triton writes 64-bit integers as JSON numbers, not proto3's strings, and names fields as in the .proto.
        assert doc["input"][0]["dims"] == [4] and doc["max_batch_size"] == 1024
        assert doc["dynamic_batching"]["max_queue_delay_microseconds"] == DEFAULT_BATCHING.max_queue_delay_us


def test_statistics_equal_grpc_in_tritons_json_shape(server, stub):
    port = server.server.http_port
    assert infer(port, "iris", infer_json(X)).status == 200
    for path, name, version in [("/v2/models/iris/stats", "iris", ""), ("/v2/models/iris/versions/2/stats", "iris", "2"),
                                ("/v2/models/stats", "", "")]:
        doc = call(port, "GET", path).json()
        want = stub.ModelStatistics(pb.ModelStatisticsRequest(name=name, version=version))
        assert json_format.ParseDict(doc, pb.ModelStatisticsResponse()) == want
    iris2 = next(s for s in call(port, "GET", "/v2/models/stats").json()["model_stats"] if (s["name"], s["version"]) == ("iris", "2"))
    assert isinstance(iris2["inference_count"], int) and iris2["inference_count"] >= 2
    assert set(iris2["inference_stats"]) >= {"success", "fail", "queue", "compute_input", "compute_infer", "compute_output"}
    assert iris2["batch_stats"] and isinstance(iris2["batch_stats"][0]["compute_infer"]["ns"], int)


def test_repository_index_equals_grpc_and_filters_ready(server, stub):
    port = server.server.http_port
    want = [json_format.MessageToDict(m, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
            for m in stub.RepositoryIndex(pb.RepositoryIndexRequest()).models]
    assert call(port, "POST", "/v2/repository/index").json() == want
    assert call(port, "POST", "/v2/repository/index", "{}").json() == want
    ready = call(port, "POST", "/v2/repository/index", '{"ready": true}').json()
    assert {m["name"] for m in ready} == {"iris", "breast-cancer"} and all(m["state"] == "READY" for m in ready)


def test_load_and_unload_under_explicit_model_control(model_repo):
    srv = ThreadServer(settings_for(model_repo, model_control_mode="explicit", load_model=["iris"])).start()
    port = srv.server.http_port
    try:
        assert call(port, "GET", "/v2/models/breast-cancer/ready").status == 404
        a = call(port, "POST", "/v2/repository/models/breast-cancer/load")
        assert (a.status, a.body) == (200, b"")
        assert call(port, "GET", "/v2/models/breast-cancer/ready").status == 200
        assert call(port, "POST", "/v2/repository/models/iris/unload", '{"parameters": {}}').status == 200
        assert call(port, "GET", "/v2/models/iris/ready").json() == {"name": "iris", "ready": False}
        a = infer(port, "iris", infer_json(X))
        assert a.status == 503 and "unloaded" in a.json()["error"]
        assert call(port, "POST", "/v2/repository/models/iris/load", "").status == 200
        assert infer(port, "iris", infer_json(X)).status == 200
        a = call(port, "POST", "/v2/repository/models/nope/load")
        assert a.status == 404 and "no model 'nope'" in a.json()["error"]
    finally:
        srv.stop()


def test_unknown_routes_are_404_and_wrong_methods_405_in_json(server):
    port = server.server.http_port
    for path in ("/v1/models/iris", "/v2/models/iris/predict", "/v2/health", "/models/iris/"):  # `/`: the model browser
        a = call(port, "GET", path)
        assert a.status == 404 and "no endpoint" in a.json()["error"], path
    a = call(port, "GET", "/v2/models/iris/infer")
    assert a.status == 405 and a.headers.get("Allow") == "POST" and "use POST" in a.json()["error"]
    a = call(port, "DELETE", "/v2/health/live")
    assert a.status == 405 and a.headers.get("Allow") == "GET"


def test_requests_keep_their_connection_alive(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.server.http_port, timeout=30)
    try:
        for _ in range(3):  # several requests, errors included, on one connection
            conn.request("POST", "/v2/models/iris/infer", body=b'{"inputs": [')
            r = conn.getresponse()
            assert r.status == 400 and r.read()
            conn.request("GET", "/v2/models/iris/ready")
            r = conn.getresponse()
            assert r.status == 200 and r.read()
    finally:
        conn.close()


def test_grpc_and_http_answer_the_same_model_version(server, stub):
    port = server.server.http_port
    x = np.asarray(X, np.float32)
    for version in ("", "1", "2"):
        grpc_version = stub.ModelInfer(infer_request("iris", x, version=version)).model_version
        a = infer(port, "iris", infer_json(x), version=version)
        assert a.json()["model_version"] == grpc_version and a.json()["model_name"] == "iris"
