"""Triton's system shared-memory extension, driven by stock tritonclient: inputs read from and outputs written into
the client's regions, every offset and size bounds-checked, an object that shrinks after registration refused
without harm (one process and --workers 2), IPv6 loopback served, and the feature off unless the server allows it."""

from __future__ import annotations

import os
import signal
import socket
import uuid

import numpy as np
import pytest
from tests.integration.server.server_helpers import ThreadServer, reference, rows_for, settings_for, start_subprocess_server

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


def test_http_refuses_shared_memory_naming_grpc_never_ignoring_it(server, region, model_repo):
    # Before: an output naming a region was answered 200 with the output in the body, the region left untouched.
    http = pytest.importorskip("tritonclient.http")
    x = rows_for(model_repo, "iris", 2, seed=25)
    name, key, handle = region(x.nbytes)
    shm.set_shared_memory_region(handle, [x])
    c = http.InferenceServerClient(f"127.0.0.1:{server.server.http_port}")
    refusals = [
        lambda: c.register_system_shared_memory(name, key, x.nbytes),
        lambda: c.get_system_shared_memory_status(),
        lambda: c.get_system_shared_memory_status(name),
        lambda: c.unregister_system_shared_memory(name),
        lambda: c.unregister_system_shared_memory(),
    ]
    shm_in = http.InferInput("input", list(x.shape), "FP32")
    shm_in.set_shared_memory(name, x.nbytes)
    body_in = http.InferInput("input", list(x.shape), "FP32")
    body_in.set_data_from_numpy(x)
    shm_out = http.InferRequestedOutput("probabilities")
    shm_out.set_shared_memory(name, x.nbytes)
    refusals += [lambda: c.infer("iris", [shm_in]), lambda: c.infer("iris", [body_in], outputs=[shm_out])]
    for call in refusals:
        with pytest.raises(http.InferenceServerException) as e:
            call()
        assert e.value.status() == "400" and "served over gRPC only" in e.value.message(), e.value
    np.testing.assert_array_equal(shm.get_contents_as_numpy(handle, np.float32, list(x.shape)), x)  # untouched
    assert c.infer("iris", [body_in]).as_numpy("probabilities").shape == (2, 3)
    c.close()
