"""zoo.client (sync and asyncio) against a real server on an ephemeral port, compared with in-process onnxruntime."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading

import grpc
import numpy as np
import pytest
from tests.conftest import require_tool
from tests.integration.server.server_helpers import ThreadServer, copy_version, reference, rows_for, settings_for, wait_until

from zoo.core import decision, repository
from zoo.client import AsyncZooClient, ClientError, ZooClient


@pytest.fixture(scope="module")
def server(exported_repo):
    srv = ThreadServer(settings_for(exported_repo)).start()
    yield srv
    srv.stop()


@pytest.fixture
def client(server):
    with ZooClient(server.address, timeout=20) as c:
        yield c


def run_async(coro_fn, address: str, **kwargs):
    """Run `await coro_fn(client)` with a fresh AsyncZooClient in a fresh event loop."""

    async def main():
        async with AsyncZooClient(address, timeout=20, **kwargs) as c:
            return await coro_fn(c)

    return asyncio.run(main())


def assert_matches_reference(pred, repo, model, version, x):
    want = reference(repo, model, version, x)
    card = repository.read_card(repo, model, version)
    assert pred.model == model and pred.version == str(version)
    assert pred.class_names == card.class_names
    np.testing.assert_allclose(pred.probabilities, want["probabilities"], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(pred.one_hot, want["one_hot"])
    np.testing.assert_array_equal(pred.labels, want["label"])
    assert pred.labels.dtype == np.int64 and pred.probabilities.dtype == np.float32
    assert pred.label_names == [card.class_names[k] if k >= 0 else None for k in want["label"].tolist()]


def test_health_and_metadata(client, exported_repo):
    assert client.is_live() and client.is_ready()
    assert client.model_ready("iris") and client.model_ready("iris", 1) and client.model_ready("breast-cancer")
    card = repository.read_card(exported_repo, "iris", 2)
    info = client.metadata("iris")
    assert (info.name, info.version, info.versions, info.task) == ("iris", "2", ["1", "2"], card.task)
    assert info.feature_names == card.feature_names and info.class_names == card.class_names
    assert info.default_threshold == card.default_threshold
    assert client.metadata("breast-cancer").class_names == repository.read_card(exported_repo, "breast-cancer", 1).class_names


@pytest.mark.parametrize("model, version", [("iris", None), ("iris", 1), ("iris", "2"), ("breast-cancer", None)])
def test_sync_predictions_equal_in_process_onnxruntime(client, exported_repo, model, version):
    x = rows_for(exported_repo, model, 41, seed=1)
    v = int(version) if version else repository.latest_version(exported_repo, model)
    assert_matches_reference(client.predict(model, x, version=version), exported_repo, model, v, x)


@pytest.mark.parametrize("model, version", [("iris", None), ("iris", 1), ("breast-cancer", None)])
def test_async_predictions_equal_in_process_onnxruntime(server, exported_repo, model, version):
    x = rows_for(exported_repo, model, 23, seed=2)
    pred = run_async(lambda c: c.predict(model, x, version=version), server.address)
    v = version or repository.latest_version(exported_repo, model)
    assert_matches_reference(pred, exported_repo, model, v, x)


def test_versions_answer_differently(client, exported_repo):
    x = rows_for(exported_repo, "iris", 30, seed=3)
    p1, p2 = client.predict("iris", x, version=1), client.predict("iris", x, version=2)
    assert (p1.version, p2.version) == ("1", "2")
    assert not np.allclose(p1.probabilities, p2.probabilities, atol=1e-6)  # two trainings, two models


@pytest.mark.parametrize("model", ["iris", "breast-cancer"])
def test_threshold_sync_and_async(client, server, exported_repo, model):
    card = repository.read_card(exported_repo, model, 2 if model == "iris" else 1)
    x = rows_for(exported_repo, model, 64, seed=5)
    base = client.predict(model, x)
    t = 0.9
    for tuned in (client.predict(model, x, threshold=t), run_async(lambda c: c.predict(model, x, threshold=t), server.address)):
        np.testing.assert_array_equal(tuned.probabilities, base.probabilities)
        np.testing.assert_array_equal(tuned.one_hot, decision.one_hot(tuned.probabilities, card.task, t))
        np.testing.assert_array_equal(tuned.labels, decision.labels(tuned.probabilities, card.task, t))
        assert not np.array_equal(tuned.labels, base.labels)  # the threshold really changed something


def test_one_row_list_and_float64_input(client, exported_repo):
    x = rows_for(exported_repo, "iris", 1, seed=6)
    row = x[0].astype(np.float64).tolist()  # a plain list of Python floats, 1-D
    pred = client.predict("iris", row)
    assert pred.probabilities.shape == (1, 3) and pred.labels.shape == (1,)
    assert_matches_reference(pred, exported_repo, "iris", 2, x)
    f_order = np.asfortranarray(rows_for(exported_repo, "iris", 5, seed=7))  # not C-contiguous
    assert_matches_reference(client.predict("iris", f_order), exported_repo, "iris", 2, f_order)


def test_requested_outputs_subset(client):
    pred = client.predict("iris", np.ones((2, 4)), outputs=["label"])
    assert pred.probabilities is None and pred.one_hot is None and pred.labels.shape == (2,)


def test_errors_are_client_errors_with_the_status_code(client, server):
    ok = np.ones((2, 4), np.float32)
    with pytest.raises(ClientError) as e:
        client.predict("nope", ok)
    assert e.value.code == grpc.StatusCode.NOT_FOUND and "iris" in e.value.details
    assert e.value.__suppress_context__ and e.value.__cause__ is None  # raised `from None`
    with pytest.raises(ClientError) as e:
        client.predict("iris", np.ones((2, 3)))
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT and "got [2, 3]" in e.value.details
    bad = ok.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ClientError) as e:
        client.predict("iris", bad)
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT and "row 1" in e.value.details
    with pytest.raises(ClientError) as e:
        client.predict("iris", ok, version=7)
    assert e.value.code == grpc.StatusCode.NOT_FOUND
    with pytest.raises(ClientError) as e:
        client.predict("iris", ok, threshold=1.5)
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT and "threshold" in e.value.details
    with pytest.raises(ClientError) as e:
        client.predict("iris", np.ones((2, 2, 4)))
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(ClientError) as e:
        client.model_ready("nope")
    assert e.value.code == grpc.StatusCode.NOT_FOUND

    async def unknown(c):
        with pytest.raises(ClientError) as e:
            await c.predict("nope", ok)
        assert e.value.code == grpc.StatusCode.NOT_FOUND
        with pytest.raises(ClientError) as e:
            await c.predict("iris", np.ones((2, 3)))
        assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
        return True

    assert run_async(unknown, server.address)


def test_server_down_is_unavailable():
    with ZooClient("127.0.0.1:1", timeout=5) as c:
        with pytest.raises(ClientError) as e:
            c.is_live()
    assert e.value.code == grpc.StatusCode.UNAVAILABLE


# chunking


@pytest.fixture(scope="module")
def small_server(exported_repo):
    """A server that refuses messages over 8 KiB."""
    srv = ThreadServer(settings_for(exported_repo, max_message_bytes=8192)).start()
    yield srv
    srv.stop()


def test_large_inputs_are_chunked_and_reassembled_in_order(small_server, exported_repo):
    x = rows_for(exported_repo, "breast-cancer", 700, seed=8)  # 700 x 30 x 4 = 84 KB: ten times the cap
    with ZooClient(small_server.address, timeout=20) as whole:
        with pytest.raises(ClientError) as e:
            whole.predict("breast-cancer", x)  # one request: the server refuses it
        assert e.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    with ZooClient(small_server.address, timeout=20, max_message_bytes=8192) as c:
        pred = c.predict("breast-cancer", x)
    assert_matches_reference(pred, exported_repo, "breast-cancer", 1, x)
    pred = run_async(lambda c: c.predict("breast-cancer", x, threshold=0.8), small_server.address, max_message_bytes=8192)
    assert len(pred) == 700
    np.testing.assert_allclose(pred.probabilities, reference(exported_repo, "breast-cancer", 1, x)["probabilities"], atol=1e-6)
    np.testing.assert_array_equal(pred.labels, decision.labels(pred.probabilities, "binary", 0.8))


def test_chunks_of_one_prediction_come_from_one_version(exported_repo, tmp_path):
    """A new version takes over between two chunks of one prediction (the second chunk is held in the model by a gate
    until it has): every chunk still asks for the version that answered the first."""
    repo = tmp_path / "models"
    shutil.copytree(exported_repo, repo)
    srv = ThreadServer(settings_for(repo, max_message_bytes=8192, model_control_mode="poll", poll_interval=0.05)).start()
    try:
        x = rows_for(repo, "iris", 3000, seed=9)
        v2 = srv.server.registry.get("iris")
        chunks: list[int] = []
        entered, gate = threading.Event(), threading.Event()
        real = v2.batcher.predict

        def second_chunk_held(rows):
            chunks.append(len(rows))
            if len(chunks) == 2:
                entered.set()
                assert gate.wait(120), "the test never released the second chunk"
            return real(rows)

        # On the model's thread, not the event loop: the server must go on polling while the chunk is held.
        v2.batcher.predict, v2.batcher.inline_rows = second_chunk_held, 0
        outcome: dict = {}

        def predict() -> None:
            try:
                with ZooClient(srv.address, timeout=60, max_message_bytes=8192) as c:
                    outcome["pred"] = c.predict("iris", x)
            except BaseException as e:  # surfaced below
                outcome["error"] = e

        t = threading.Thread(target=predict)
        t.start()
        try:
            wait_until(entered.is_set, "the second chunk to be held in the model")
            copy_version(exported_repo, "iris", 1, repo, "iris", 3)  # v3 (a copy of v1) lands mid-prediction
            wait_until(lambda: srv.server.registry.get("iris").version == 3, "v3 to take over as the default")
        finally:
            gate.set()
            t.join(120)
        assert "error" not in outcome, outcome.get("error")
        pred = outcome["pred"]
        assert pred.version == "2" and len(pred) == len(x) == sum(chunks) and len(chunks) >= 3  # chunks after the swap too
        want = reference(repo, "iris", 2, x)["probabilities"]
        np.testing.assert_allclose(pred.probabilities, want, atol=1e-6)
        assert not np.allclose(reference(repo, "iris", 3, x)["probabilities"], want, atol=1e-3)  # a mix would show
    finally:
        srv.stop()


# TLS


def _self_signed(tmp_path):
    require_tool("openssl", "needed to make a self-signed certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )
    return key.read_bytes(), cert.read_bytes()


def test_tls_client_against_zoo_server_over_tls(exported_repo, tmp_path):
    """zoo-server with --tls-cert/--tls-key; the sync and async clients trust its self-signed certificate."""
    key, cert = _self_signed(tmp_path)
    (tmp_path / "srv.key").write_bytes(key)
    (tmp_path / "srv.crt").write_bytes(cert)
    srv = ThreadServer(settings_for(exported_repo, tls_cert=str(tmp_path / "srv.crt"), tls_key=str(tmp_path / "srv.key"))).start()
    try:
        address = srv.address
        x = rows_for(exported_repo, "iris", 9, seed=10)
        with ZooClient(address, tls=True, root_certificates=cert, timeout=20) as c:
            assert c.is_ready()
            assert_matches_reference(c.predict("iris", x), exported_repo, "iris", 2, x)
        pred = run_async(lambda c: c.predict("iris", x), address, tls=True, root_certificates=cert)
        assert_matches_reference(pred, exported_repo, "iris", 2, x)
        with ZooClient(address, timeout=5) as plain:  # plaintext to a TLS port fails as a ClientError
            with pytest.raises(ClientError) as e:
                plain.is_live()
            assert e.value.code == grpc.StatusCode.UNAVAILABLE
        with ZooClient(address, tls=True, timeout=5) as untrusted:  # the system roots don't trust a self-signed cert
            with pytest.raises(ClientError) as e:
                untrusted.is_live()
            assert e.value.code == grpc.StatusCode.UNAVAILABLE
    finally:
        srv.stop()


def test_tls_client_against_a_plaintext_server_fails_cleanly(server, tmp_path):
    _, cert = _self_signed(tmp_path)
    with ZooClient(server.address, tls=True, root_certificates=cert, timeout=5) as c:
        with pytest.raises(ClientError) as e:
            c.is_live()
    assert e.value.code == grpc.StatusCode.UNAVAILABLE


# streaming


def test_predict_many_pipelines_batches_over_one_stream_in_order(client, exported_repo):
    batches = [rows_for(exported_repo, "iris", n, seed=20 + n) for n in (1, 5, 2, 9, 3)]
    preds = list(client.predict_many("iris", iter(batches)))
    assert [len(p) for p in preds] == [1, 5, 2, 9, 3]
    for x, pred in zip(batches, preds, strict=True):
        assert_matches_reference(pred, exported_repo, "iris", 2, x)
    (one,) = client.predict_many("breast-cancer", [rows_for(exported_repo, "breast-cancer", 3, seed=2)], threshold=0.9)
    assert one.labels.tolist() == decision.labels(one.probabilities, "binary", 0.9).tolist()


def test_async_predict_stream_takes_an_async_iterable(server, exported_repo):
    batches = [rows_for(exported_repo, "iris", n, seed=40 + n) for n in (4, 1, 6)]

    async def source():
        for x in batches:
            yield x

    async def collect(c):
        return [p async for p in c.predict_stream("iris", source(), version=1)]

    preds = run_async(collect, server.address)
    assert [len(p) for p in preds] == [4, 1, 6]
    for x, pred in zip(batches, preds, strict=True):
        assert_matches_reference(pred, exported_repo, "iris", 1, x)


def test_an_error_in_one_batch_of_a_stream_names_it(client):
    with pytest.raises(ClientError) as e:
        list(client.predict_many("iris", [np.ones((1, 4)), np.ones((1, 3)), np.ones((1, 4))]))
    assert "batch 1" in e.value.details and "expected FP32 [-1, 4]" in e.value.details
