"""A multilabel model with per-class default thresholds: its page, its answers at its defaults and at per-request
per-class thresholds over gRPC and HTTP, and the decision facts its metadata carries."""

from __future__ import annotations

import numpy as np
import pytest

from tests.integration.http.http_helpers import call
from tests.integration.server.multilabel_model import export_tags
from tests.integration.server.server_helpers import ThreadServer, settings_for
from zoo.core import decision, repository


@pytest.fixture(scope="module")
def tags(tmp_path_factory):
    """(repository, its server) with `tags` v1, whose default_threshold is a list of three numbers."""
    pytest.importorskip("torch")
    repo = export_tags(tmp_path_factory.mktemp("tags"))
    card = repository.read_card(repo, "tags", 1)
    assert isinstance(card.default_threshold, list) and len(set(card.default_threshold)) == 3
    srv = ThreadServer(settings_for(repo)).start()
    yield repo, srv
    srv.stop()


def rows(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 4)).astype(np.float32)


def test_the_page_of_a_model_with_per_class_thresholds_renders(tags):
    repo, srv = tags
    t = repository.read_card(repo, "tags", 1).default_threshold
    for path in ("/models/tags", "/models/tags/versions/1"):
        page = call(srv.server.http_port, "GET", path)
        assert page.status == 200, page.body[:400]
    text = page.body.decode()
    assert f'value="{max(t):g}"' in text and 'data-per-class="true"' in text
    for name, v in zip(("red", "green", "blue"), t, strict=True):
        assert f"{name} {v:g}" in text  # the help lists the per-class defaults by class name


def test_the_server_decides_at_the_graphs_per_class_thresholds(tags):
    repo, srv = tags
    from zoo.client import ZooClient
    from zoo.server import versions

    t = repository.read_card(repo, "tags", 1).default_threshold
    assert versions.graph_threshold(srv.server.registry.get("tags").model) == pytest.approx(t)
    with ZooClient(srv.address) as client:
        pred = client.predict("tags", rows(300))
    assert np.array_equal(pred.one_hot, decision.one_hot(pred.probabilities, "multilabel", t))
    assert np.array_equal(pred.labels, decision.labels(pred.probabilities, "multilabel", t))


PER_CLASS = [0.2, 0.85, 0.5]


def by_hand(p: np.ndarray, t: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """one_hot and label at per-class thresholds, written out: the second way of computing the decision."""
    is_set = p >= np.asarray(t, np.float32)
    masked = np.where(is_set, p, -1.0)
    return is_set.astype(np.float32), np.where(is_set.any(axis=1), masked.argmax(axis=1), -1)


def check(p: np.ndarray, one_hot: np.ndarray, labels: np.ndarray, t: list[float]) -> None:
    assert np.array_equal(one_hot, decision.one_hot(p, "multilabel", t)) and np.array_equal(labels, decision.labels(p, "multilabel", t))
    want_one_hot, want_labels = by_hand(p, t)
    assert np.array_equal(one_hot, want_one_hot) and np.array_equal(labels, want_labels)


def test_per_request_per_class_thresholds_over_grpc(tags):
    from zoo.client import ZooClient

    _, srv = tags
    X = rows(400)
    with ZooClient(srv.address) as client:
        default = client.predict("tags", X)
        for sent in (PER_CLASS, np.asarray(PER_CLASS), "0.2,0.85,0.5", " 0.2, 0.85 ,0.5"):
            pred = client.predict("tags", X, threshold=sent)
            check(pred.probabilities, pred.one_hot, pred.labels, PER_CLASS)
            assert not np.array_equal(pred.one_hot, default.one_hot)  # the request's thresholds, not the defaults
        (streamed,) = client.predict_many("tags", [X], threshold=PER_CLASS)
        check(streamed.probabilities, streamed.one_hot, streamed.labels, PER_CLASS)
        scalar = client.predict("tags", X, threshold=0.7)
        check(scalar.probabilities, scalar.one_hot, scalar.labels, [0.7] * 3)


def test_per_request_per_class_thresholds_over_http(tags):
    from tests.integration.http.http_helpers import infer, infer_json, outputs_of

    _, srv = tags
    X = rows(50, seed=2)
    for sent in (PER_CLASS, "0.2,0.85,0.5"):
        answer = infer(srv.server.http_port, "tags", infer_json(X, parameters={"threshold": sent}))
        assert answer.status == 200, answer.body
        out = outputs_of(answer)
        check(out["probabilities"], out["one_hot"], out["label"], PER_CLASS)


@pytest.mark.parametrize("sent", [[0.2, 0.5], "0.2,0.5", [0.1, 0.2, 0.3, 0.4]])
def test_a_threshold_count_other_than_the_classes_is_refused_naming_both(tags, sent):
    import grpc

    from tests.integration.http.http_helpers import infer, infer_json
    from zoo.client import ClientError, ZooClient

    _, srv = tags
    count = len(sent) if isinstance(sent, list) else 2
    with ZooClient(srv.address) as client, pytest.raises(ClientError) as e:
        client.predict("tags", rows(2), threshold=sent)
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "one value per class (3" in e.value.details and f"got {count} values" in e.value.details
    answer = infer(srv.server.http_port, "tags", infer_json(rows(2), parameters={"threshold": sent}))
    assert answer.status == 400 and "one value per class (3" in answer.json()["error"] and f"got {count} values" in answer.json()["error"]


@pytest.mark.parametrize("sent", [[0.2, 1.5, 0.5], "0.2,x,0.5", [0.2, None, 0.5], "0.2,,0.5", [0.2, True, 0.5]])
def test_per_class_values_outside_the_unit_interval_are_refused(tags, sent):
    from tests.integration.http.http_helpers import infer, infer_json

    _, srv = tags
    answer = infer(srv.server.http_port, "tags", infer_json(rows(2), parameters={"threshold": sent}))
    assert answer.status == 400 and "must be a number in [0, 1]" in answer.json()["error"]


def test_requests_with_different_thresholds_share_a_batch_and_each_gets_its_own(tags):
    from concurrent.futures import ThreadPoolExecutor

    from tests.integration.server.server_helpers import HeldModel
    from zoo.client import ZooClient

    _, srv = tags
    X = rows(20, seed=3)
    sent = [PER_CLASS, [0.9, 0.1, 0.3], 0.4, None]
    batches: list[int] = []
    with HeldModel(srv, "tags") as held, ZooClient(srv.address) as client, ThreadPoolExecutor(len(sent) + 1) as pool:
        real = held.batcher.predict

        def counted(x):
            batches.append(len(x))
            return real(x)

        held.batcher.predict = counted
        first = pool.submit(client.predict, "tags", X[:1])
        held.wait_held()
        futures = [pool.submit(client.predict, "tags", X, threshold=t) for t in sent]
        wait_queued(srv, len(sent) * len(X))
        held.release()
        first.result(60)
        preds = [f.result(60) for f in futures]
    assert len(X) * len(sent) in batches  # the four requests ran as one batch
    t_default = repository.read_card(tags[0], "tags", 1).default_threshold
    for t, pred in zip(sent, preds, strict=True):
        want = t_default if t is None else t if isinstance(t, list) else [t] * 3
        check(pred.probabilities, pred.one_hot, pred.labels, want)


def wait_queued(srv, rows_waiting: int) -> None:
    from tests.integration.server.server_helpers import wait_until

    batcher = srv.server.registry.get("tags").batcher
    wait_until(lambda: batcher.queued_rows >= rows_waiting, f"{rows_waiting} rows queued")


def test_zoo_predict_takes_per_class_thresholds(tags, tmp_path):
    import json

    from tests.integration.cli.test_cli import zoo

    _, srv = tags
    X = rows(30, seed=4)
    (tmp_path / "x.csv").write_text("a,b,c,d\n" + "\n".join(",".join(repr(float(v)) for v in r) for r in X) + "\n")
    zoo("predict", "tags", "--input", "x.csv", "--url", srv.address, "--threshold", "0.2,0.85,0.5", "--output", "out.json", cwd=tmp_path)
    got = json.loads((tmp_path / "out.json").read_text())
    p = np.asarray([[r["probabilities"][c] for c in ("red", "green", "blue")] for r in got], np.float32)
    one_hot = np.asarray([[float(c in r["one_hot"]) for c in ("red", "green", "blue")] for r in got], np.float32)
    labels = np.asarray([["red", "green", "blue"].index(r["label"]) if r["label"] else -1 for r in got])
    check(p, one_hot, labels, PER_CLASS)
    bad = zoo("predict", "tags", "--input", "x.csv", "--url", srv.address, "--threshold", "0.2,1.5", cwd=tmp_path, check=False)
    assert bad.returncode == 2 and "[0, 1]" in bad.stderr
    short = zoo("predict", "tags", "--input", "x.csv", "--url", srv.address, "--threshold", "0.2,0.5", cwd=tmp_path, check=False)
    assert short.returncode != 0 and "one value per class (3" in short.stderr


def test_metadata_properties_say_how_the_model_decides_over_grpc_and_http(tags):
    import json

    from zoo.client import ZooClient

    repo, srv = tags
    meta = json.loads((repo / "tags" / "1" / "metadata.json").read_text())
    op = meta["operating_point"]
    with ZooClient(srv.address) as client:
        info = client.metadata("tags")
    props = info.properties
    assert props["task"] == "multilabel" and json.loads(props["class_names"]) == ["red", "green", "blue"]
    assert json.loads(props["default_threshold"]) == meta["default_threshold"]
    assert info.calibration_temperature == meta["calibration"]["temperature"]
    assert info.operating_point == {k: op[k] for k in ("chosen_by", "threshold", "validation", "test")}  # not the curve
    answer = call(srv.server.http_port, "GET", "/v2/models/tags")
    assert answer.status == 200 and answer.json()["properties"] == props
    assert all(isinstance(v, str) for v in answer.json()["properties"].values())


def test_stock_tritonclients_read_the_metadata_and_send_per_class_thresholds(tags):
    tritonclient = pytest.importorskip("tritonclient.grpc")
    import tritonclient.http as triton_http

    _, srv = tags
    grpc_client = tritonclient.InferenceServerClient(srv.address)
    md = grpc_client.get_model_metadata("tags")  # Triton's stubs know no field 6: they skip it
    assert md.name == "tags" and [o.name for o in md.outputs] == ["probabilities", "one_hot", "label"]
    X = rows(40, seed=5)
    inp = tritonclient.InferInput("input", list(X.shape), "FP32")
    inp.set_data_from_numpy(X)
    result = grpc_client.infer("tags", [inp], parameters={"threshold": "0.2,0.85,0.5"})
    check(result.as_numpy("probabilities"), result.as_numpy("one_hot"), result.as_numpy("label"), PER_CLASS)
    grpc_client.close()
    http_client = triton_http.InferenceServerClient(f"127.0.0.1:{srv.server.http_port}")
    assert http_client.get_model_metadata("tags")["properties"]["task"] == "multilabel"
    http_client.close()


def test_the_try_it_slider_carries_the_validation_curve_and_states_the_scores_at_the_defaults(tags):
    import html
    import json
    import re

    repo, srv = tags
    meta = json.loads((repo / "tags" / "1" / "metadata.json").read_text())
    body = call(srv.server.http_port, "GET", "/models/tags/versions/1").body.decode()
    curves = json.loads(html.unescape(re.search(r'data-curves="([^"]*)"', body)[1]))
    stored = meta["operating_point"]["validation_curve"]
    assert list(curves) == ["red", "green", "blue"]
    for name, t in zip(curves, meta["default_threshold"], strict=True):
        assert curves[name]["threshold"] == stored[name]["threshold"] and curves[name]["precision"] == stored[name]["precision"]
        i = next(i for i, x in enumerate(stored[name]["threshold"]) if x >= t)  # the first point at or above the default
        want = f"{name}: precision {stored[name]['precision'][i]:.2f}, recall {stored[name]['recall'][i]:.2f}, "
        assert want + f"coverage {stored[name]['coverage'][i]:.2f}" in html.unescape(body)
    for figure in ("Reliability diagram", "Precision-recall curve"):
        assert f"<figcaption>{figure}: " in body
