"""Live monitoring on a real server: predictions counted per label equal the rows served (gRPC and HTTP), a shifted
feature's drift rises while the others stay low, and the payload log holds exactly the sampled requests."""

from __future__ import annotations

import json

import grpc
import numpy as np
import pytest
from tests.integration.http.http_helpers import infer, infer_json
from tests.integration.server.server_helpers import ThreadServer, infer_request, metric, reference, scrape, settings_for

from zoo.core import repository
from zoo.data import get_recipe
from zoo.proto import grpc_service_pb2_grpc as pb_grpc


@pytest.fixture
def serve(exported_repo):
    servers = []

    def start(**overrides) -> ThreadServer:
        srv = ThreadServer(settings_for(exported_repo, **overrides)).start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.stop()


def _stub(srv):
    channel = grpc.insecure_channel(srv.address)
    return channel, pb_grpc.GRPCInferenceServiceStub(channel)


def test_predictions_counted_per_label_equal_the_rows_served(serve, exported_repo):
    srv = serve()
    card = repository.read_card(exported_repo, "iris", 2)
    x = get_recipe("iris").load().X_test.astype(np.float32)
    channel, stub = _stub(srv)
    with channel:
        stub.ModelInfer(infer_request("iris", x[:10], version="2"))
        stub.ModelInfer(infer_request("iris", x[10:12], version="2", threshold=0.99, outputs=["probabilities"]))
    assert infer(srv.server.http_port, "iris", infer_json(x[12:]), version="2").status == 200
    want = reference(exported_repo, "iris", 2, x)["label"]
    p = reference(exported_repo, "iris", 2, x[10:12])["probabilities"]
    want[10:12] = np.where(p.max(axis=1) >= 0.99, p.argmax(axis=1), -1)  # that request's own threshold decides
    text = scrape(srv.server.metrics_port)
    counts = {c: metric(text, "zoo_predictions_total", model="iris", version="2", label=c) or 0 for c in card.class_names}
    counts["-1"] = metric(text, "zoo_predictions_total", model="iris", version="2", label="-1") or 0
    assert counts == {**{c: int((want == i).sum()) for i, c in enumerate(card.class_names)}, "-1": int((want == -1).sum())}
    assert sum(counts.values()) == len(x)  # served rows only: the load-time self-check rows are not counted
    assert metric(text, "zoo_top_probability_count", model="iris", version="2") == len(x)


def test_a_shifted_feature_raises_its_drift_while_the_others_stay_low(serve):
    srv = serve()
    x = get_recipe("iris").load().X_train.astype(np.float32)  # the reference rows themselves: no sampling noise
    channel, stub = _stub(srv)
    with channel:
        stub.ModelInfer(infer_request("iris", x, version="1"))
        text = scrape(srv.server.metrics_port)
        psi = {f: metric(text, "zoo_feature_drift_psi", model="iris", version="1", feature=f) for f in get_recipe("iris").load().feature_names}
        assert all(v is not None and v < 0.01 for v in psi.values()), psi
        shifted = x.copy()
        shifted[:, 3] += 2.5  # petal width far beyond what training saw
        for chunk in np.array_split(shifted, 4):
            stub.ModelInfer(infer_request("iris", chunk, version="1"))
    text = scrape(srv.server.metrics_port)
    names = get_recipe("iris").load().feature_names
    psi = {f: metric(text, "zoo_feature_drift_psi", model="iris", version="1", feature=f) for f in names}
    assert psi[names[3]] > 0.5 and all(psi[f] < 0.01 for f in names[:3]), psi  # half the window moved: a major shift
    assert metric(text, "zoo_inputs_out_of_range_total", model="iris", version="1", feature=names[3]) >= 0.9 * len(x)
    assert metric(text, "zoo_inputs_out_of_range_total", model="iris", version="1", feature=names[0]) == 0
    assert metric(text, "zoo_feature_drift_psi_max", model="iris", version="1") == pytest.approx(psi[names[3]])


def test_without_monitoring_no_figures_are_kept(serve):
    srv = serve(monitoring=False)
    channel, stub = _stub(srv)
    with channel:
        stub.ModelInfer(infer_request("iris", np.ones((3, 4), np.float32), version="1"))
    assert "zoo_predictions_total" not in scrape(srv.server.metrics_port) and srv.server.monitor is None


def test_the_payload_log_holds_exactly_the_sampled_requests(serve, exported_repo, tmp_path):
    srv = serve(payload_log=str(tmp_path / "log"), payload_log_sample=0.5)
    x = get_recipe("iris").load().X_test.astype(np.float32)
    channel, stub = _stub(srv)
    with channel:
        for i in range(8):  # one after another: the sampler takes every second request, the 2nd, 4th, ...
            req = infer_request("iris", x[i : i + 2], version="2", threshold=0.6 if i == 3 else None)
            req.id = f"req-{i}"
            stub.ModelInfer(req)
    text = scrape(srv.server.metrics_port)
    srv.stop()  # the drain flushes the log
    assert metric(text, "zoo_payload_log_dropped_total") == 0 and metric(text, "zoo_payload_log_records_total") is not None
    records = [json.loads(line) for path in sorted((tmp_path / "log").glob("payloads-*.jsonl")) for line in path.read_text().splitlines()]
    assert [r["id"] for r in records] == ["req-1", "req-3", "req-5", "req-7"]
    r3 = records[1]
    assert r3["model"] == "iris" and r3["version"] == 2 and r3["threshold"] == 0.6 and r3["latency_ms"] > 0
    assert np.array_equal(np.asarray(r3["inputs"], np.float32), x[3:5])
    want = reference(exported_repo, "iris", 2, x[3:5])
    assert np.allclose(r3["outputs"]["probabilities"], want["probabilities"], atol=1e-6)
