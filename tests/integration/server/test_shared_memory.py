"""Triton's system shared-memory extension, driven by stock tritonclient: inputs read from and outputs written into
the client's regions, every offset and size bounds-checked, an object that shrinks after registration refused
without harm (one process and --workers 2), IPv6 loopback served, and the feature off unless the server allows it."""

from __future__ import annotations

import os
import signal
import socket
import uuid

import grpc
import numpy as np
import pytest
from tests.integration.server.server_helpers import ThreadServer, reference, rows_for, settings_for, start_subprocess_server, wait_until
from tests.integration.server.test_workers import on_worker

from zoo.proto import grpc_service_pb2 as pb

shm = pytest.importorskip("tritonclient.utils.shared_memory")
tc = pytest.importorskip("tritonclient.grpc")


@pytest.fixture(scope="module")
def server(model_repo):
    srv = ThreadServer(settings_for(model_repo, allow_shared_memory=True)).start()
    yield srv
    srv.stop()


@pytest.fixture
def client(server):
    c = tc.InferenceServerClient(server.address)
    yield c
    c.unregister_system_shared_memory()
    c.close()


@pytest.fixture
def region():
    """A factory of fresh shared-memory regions, destroyed after the test."""
    made = []

    def make(byte_size: int):
        name = f"zoo-test-{uuid.uuid4().hex[:12]}"
        handle = shm.create_shared_memory_region(name, "/" + name, byte_size)
        made.append(handle)
        return name, "/" + name, handle

    yield make
    for h in made:
        shm.destroy_shared_memory_region(h)


def test_inputs_and_outputs_through_shared_memory_equal_onnxruntime(client, region, model_repo):
    x = rows_for(model_repo, "iris", 64, seed=21)
    in_name, in_key, in_handle = region(x.nbytes + 128)
    out_name, out_key, out_handle = region(64 * 3 * 4 + 64 * 8 + 256)
    shm.set_shared_memory_region(in_handle, [x], offset=128)
    client.register_system_shared_memory(in_name, in_key, x.nbytes + 128)
    client.register_system_shared_memory(out_name, out_key, 64 * 3 * 4 + 64 * 8 + 256)
    inp = tc.InferInput("input", list(x.shape), "FP32")
    inp.set_shared_memory(in_name, x.nbytes, offset=128)
    probs = tc.InferRequestedOutput("probabilities")
    probs.set_shared_memory(out_name, 64 * 3 * 4, offset=256)
    label = tc.InferRequestedOutput("label")  # one output inline, beside one in shared memory
    result = client.infer("iris", [inp], outputs=[probs, label])
    want = reference(model_repo, "iris", 2, x)
    got = shm.get_contents_as_numpy(out_handle, np.float32, [64, 3], offset=256)
    np.testing.assert_allclose(got, want["probabilities"], atol=1e-6)
    np.testing.assert_array_equal(result.as_numpy("label"), want["label"])
    regions = client.get_system_shared_memory_status(as_json=True)["regions"]
    assert regions[in_name]["byte_size"] in (str(x.nbytes + 128), x.nbytes + 128)


def test_offsets_and_sizes_are_bounds_checked(client, region, model_repo):
    x = rows_for(model_repo, "iris", 4, seed=22)
    name, key, handle = region(x.nbytes)
    client.register_system_shared_memory(name, key, x.nbytes)
    for size, offset, says in ((x.nbytes, 4, "does not fit"), (x.nbytes + 4, 0, "does not fit"), (x.nbytes - 4, 0, "needs 64 bytes")):
        inp = tc.InferInput("input", list(x.shape), "FP32")
        inp.set_shared_memory(name, size, offset=offset)
        with pytest.raises(tc.InferenceServerException) as e:
            client.infer("iris", [inp])
        assert e.value.status() == "StatusCode.INVALID_ARGUMENT" and says in e.value.message()
    out = tc.InferRequestedOutput("probabilities")
    out.set_shared_memory(name, 8)  # 4 rows x 3 classes x 4 bytes do not fit in 8
    inp = tc.InferInput("input", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    with pytest.raises(tc.InferenceServerException) as e:
        client.infer("iris", [inp], outputs=[out])
    assert "needs 48 bytes; 8 were given" in e.value.message()


def test_registration_is_a_boundary(client, region, tmp_path):
    name, key, _ = region(1024)
    with pytest.raises(tc.InferenceServerException) as e:
        client.register_system_shared_memory(name, key, 4096)  # larger than the object
    assert "holds 1024 bytes" in e.value.message()
    for bad_key in ("/../etc/passwd", "/a/b", "../x", str(tmp_path)):
        with pytest.raises(tc.InferenceServerException) as e:
            client.register_system_shared_memory("bad", bad_key, 16)
        assert e.value.status() == "StatusCode.INVALID_ARGUMENT" and "directly under /dev/shm" in e.value.message()
    link = f"zoo-test-link-{uuid.uuid4().hex[:8]}"
    os.symlink("/etc/hostname", f"/dev/shm/{link}")
    try:
        with pytest.raises(tc.InferenceServerException) as e:
            client.register_system_shared_memory("link", "/" + link, 4)
        assert "cannot be opened" in e.value.message()  # symlinks are not followed
    finally:
        os.unlink(f"/dev/shm/{link}")
    client.register_system_shared_memory(name, key, 1024)
    with pytest.raises(tc.InferenceServerException) as e:
        client.register_system_shared_memory(name, key, 1024)
    assert e.value.status() == "StatusCode.ALREADY_EXISTS"
    client.unregister_system_shared_memory(name)
    with pytest.raises(tc.InferenceServerException) as e:
        client.get_system_shared_memory_status(name)
    assert e.value.status() == "StatusCode.NOT_FOUND"
    inp = tc.InferInput("input", [1, 4], "FP32")
    inp.set_shared_memory(name, 16)
    with pytest.raises(tc.InferenceServerException) as e:
        client.infer("iris", [inp])
    assert "no shared-memory region" in e.value.message()


def test_shared_memory_is_off_unless_allowed(model_repo, region):
    srv = ThreadServer(settings_for(model_repo)).start()
    try:
        c = tc.InferenceServerClient(srv.address)
        assert "system_shared_memory" not in c.get_server_metadata(as_json=True)["extensions"]
        name, key, _ = region(64)
        with pytest.raises(tc.InferenceServerException) as e:
            c.register_system_shared_memory(name, key, 64)
        assert "--allow-shared-memory" in e.value.message()
        c.close()
    finally:
        srv.stop()


def test_cuda_shared_memory_cleanup_succeeds_and_registering_is_refused(client):
    # perf_analyzer and tritonclient clean up both kinds of region; a CPU server has no CUDA ones.
    client.unregister_cuda_shared_memory()
    assert client.get_cuda_shared_memory_status(as_json=True).get("regions", {}) == {}
    with pytest.raises(tc.InferenceServerException) as e:
        client.register_cuda_shared_memory("gpu", b"\0" * 64, 0, 64)
    assert e.value.status() == "StatusCode.INVALID_ARGUMENT" and "system shared memory" in e.value.message()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_an_object_truncated_after_registration_is_refused_and_the_server_keeps_serving(model_repo, region, workers):
    # Before: the server read a mapping of the object and died of SIGBUS (under --workers 2 the supervisor gave up).
    proc, port, lines = start_subprocess_server(model_repo, "--allow-shared-memory", "--workers", workers, "--http-port", "-1")
    try:
        x = rows_for(model_repo, "iris", 16, seed=23)
        name, key, handle = region(x.nbytes)
        shm.set_shared_memory_region(handle, [x])
        with tc.InferenceServerClient(f"127.0.0.1:{port}") as c:
            c.register_system_shared_memory(name, key, x.nbytes)  # under --workers 2 the other worker learns it too
        for i in (0, 1) if workers == "2" else ():  # every worker holds the region before the client spoils its object
            wait_until(lambda: on_worker(port, i, lambda stub: _knows(stub, name)), f"worker {i} to learn region {name}")  # noqa: B023
        os.truncate(f"/dev/shm/{name}", 0)
        inp = tc.InferInput("input", list(x.shape), "FP32")
        inp.set_shared_memory(name, x.nbytes)
        for _ in range(6):  # fresh connections: with two workers the kernel spreads them over both
            with tc.InferenceServerClient(f"127.0.0.1:{port}", channel_args=[("grpc.use_local_subchannel_pool", 1)]) as c:
                with pytest.raises(tc.InferenceServerException) as e:
                    c.infer("iris", [inp])
            assert e.value.status() == "StatusCode.INVALID_ARGUMENT", e.value.message()
            assert f"region {name!r}" in e.value.message() and f"holds 0 bytes now, {x.nbytes} expected" in e.value.message()
        assert proc.poll() is None, "".join(lines)
        os.truncate(f"/dev/shm/{name}", x.nbytes)  # the client repairs its object: served again
        shm.set_shared_memory_region(handle, [x])
        with tc.InferenceServerClient(f"127.0.0.1:{port}") as c:
            got = c.infer("iris", [inp]).as_numpy("probabilities")
        np.testing.assert_allclose(got, reference(model_repo, "iris", 2, x)["probabilities"], atol=1e-6)
        assert not any("starting a new one" in line for line in lines), "".join(lines)  # no worker died on the way
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, "".join(lines)


def _knows(stub, name: str) -> bool:
    try:
        stub.SystemSharedMemoryStatus(pb.SystemSharedMemoryStatusRequest(name=name), timeout=30)
        return True
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.NOT_FOUND:
            raise
        return False


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="this machine has no IPv6 loopback (::1)")
def test_a_client_on_ipv6_loopback_is_local(model_repo, region):
    # gRPC reports such a peer as 'ipv6:%5B::1%5D:PORT'; before, the locality check did not decode it and refused.
    srv = ThreadServer(settings_for(model_repo, allow_shared_memory=True, host="::1", http_port=-1, metrics_port=-1)).start()
    try:
        x = rows_for(model_repo, "iris", 4, seed=24)
        name, key, handle = region(x.nbytes)
        shm.set_shared_memory_region(handle, [x])
        with tc.InferenceServerClient(f"[::1]:{srv.port}") as c:
            c.register_system_shared_memory(name, key, x.nbytes)
            assert name in c.get_system_shared_memory_status(as_json=True)["regions"]
            inp = tc.InferInput("input", list(x.shape), "FP32")
            inp.set_shared_memory(name, x.nbytes)
            got = c.infer("iris", [inp]).as_numpy("probabilities")
            c.unregister_system_shared_memory(name)
        np.testing.assert_allclose(got, reference(model_repo, "iris", 2, x)["probabilities"], atol=1e-6)
    finally:
        srv.stop()


def test_http_shared_memory_as_triton_serves_it(server, region, model_repo):
    # Before: no HTTP endpoints (404), and an output naming a region was answered 200 in the body, the region untouched.
    http = pytest.importorskip("tritonclient.http")
    x = rows_for(model_repo, "iris", 8, seed=25)
    in_name, in_key, in_handle = region(x.nbytes + 64)
    out_name, out_key, out_handle = region(512)
    shm.set_shared_memory_region(in_handle, [x], offset=64)
    c = http.InferenceServerClient(f"127.0.0.1:{server.server.http_port}")
    c.register_system_shared_memory(in_name, in_key, x.nbytes + 64)
    c.register_system_shared_memory(out_name, out_key, 512)
    status = c.get_system_shared_memory_status(in_name)
    assert [(r["name"], r["key"], int(r["offset"]), int(r["byte_size"])) for r in status] == [(in_name, in_key, 0, x.nbytes + 64)]
    assert {r["name"] for r in c.get_system_shared_memory_status()} >= {in_name, out_name}
    inp = http.InferInput("input", list(x.shape), "FP32")
    inp.set_shared_memory(in_name, x.nbytes, offset=64)
    probs = http.InferRequestedOutput("probabilities")
    probs.set_shared_memory(out_name, 8 * 3 * 4, offset=100)
    label = http.InferRequestedOutput("label", binary_data=True)
    result = c.infer("iris", [inp], outputs=[probs, label])
    want = reference(model_repo, "iris", 2, x)
    np.testing.assert_allclose(shm.get_contents_as_numpy(out_handle, np.float32, [8, 3], offset=100), want["probabilities"], atol=1e-6)
    np.testing.assert_array_equal(result.as_numpy("label"), want["label"])
    assert result.get_output("probabilities")["parameters"] == {
        "shared_memory_region": out_name, "shared_memory_byte_size": 96, "shared_memory_offset": 100,
    }  # fmt: skip
    small = http.InferRequestedOutput("probabilities")
    small.set_shared_memory(out_name, 8)  # 8 rows x 3 classes x 4 bytes do not fit in 8
    for call, says in (
        (lambda: c.infer("iris", [inp], outputs=[small]), "needs 96 bytes; 8 were given"),
        (lambda: c.register_system_shared_memory("big", in_key, 1 << 20), "holds"),
        (lambda: c.register_system_shared_memory("bad", "/../etc/passwd", 16), "directly under /dev/shm"),
    ):
        with pytest.raises(http.InferenceServerException) as e:
            call()
        assert e.value.status() == "400" and says in e.value.message(), e.value
    c.unregister_system_shared_memory(in_name)
    with pytest.raises(http.InferenceServerException) as e:
        c.infer("iris", [inp])
    assert e.value.status() == "400" and "no shared-memory region" in e.value.message()
    c.unregister_system_shared_memory()
    assert c.get_system_shared_memory_status() == []
    c.close()


def test_http_shared_memory_is_off_unless_allowed(model_repo, region):
    http = pytest.importorskip("tritonclient.http")
    srv = ThreadServer(settings_for(model_repo)).start()
    try:
        c = http.InferenceServerClient(f"127.0.0.1:{srv.server.http_port}")
        name, key, _ = region(64)
        out = http.InferRequestedOutput("probabilities")
        out.set_shared_memory(name, 64)
        inp = http.InferInput("input", [1, 4], "FP32")
        inp.set_data_from_numpy(np.ones((1, 4), np.float32))
        for call in (lambda: c.register_system_shared_memory(name, key, 64), lambda: c.infer("iris", [inp], outputs=[out])):
            with pytest.raises(http.InferenceServerException) as e:
                call()
            assert e.value.status() == "400" and "--allow-shared-memory" in e.value.message()
        c.close()
    finally:
        srv.stop()
