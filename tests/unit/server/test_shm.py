"""The shared-memory registry on real /dev/shm objects: reads and writes by descriptor, bounds, caps, objects that
shrink or go away after registration, what may be registered at all, and which peers are on this host."""

from __future__ import annotations

import os
import uuid

import numpy as np
import pytest

from zoo.server.errors import InvalidInput, NotFound, RegionExists
from zoo.server.locality import is_local, is_local_grpc_peer
from zoo.server.shm import SharedMemory, Target, parse_target


@pytest.fixture
def objects():
    """Make /dev/shm objects of given sizes; removed afterwards."""
    made = []

    def make(size: int) -> str:
        key = f"zoo-unit-{uuid.uuid4().hex[:12]}"
        with open(f"/dev/shm/{key}", "wb") as f:
            f.truncate(size)
        made.append(key)
        return "/" + key

    yield make
    for key in made:
        if os.path.lexists(f"/dev/shm/{key}"):
            os.unlink(f"/dev/shm/{key}")


def test_inputs_are_read_at_their_offset_and_outputs_land_at_theirs(objects):
    key = objects(4096)
    mem = SharedMemory(allowed=True)
    mem.register("r", key, 1024, 2048)
    with open(f"/dev/shm{key}", "r+b") as f:  # the client writes its rows at offset 1024 + 16
        f.seek(1024 + 16)
        f.write(np.arange(8, dtype="<f4").tobytes())
    data = mem.input_bytes({"shared_memory_region": "r", "shared_memory_byte_size": 32, "shared_memory_offset": 16}, "input", [2, 4])
    np.testing.assert_array_equal(np.frombuffer(data, np.float32), np.arange(8))
    mem.write(Target("r", 100, 12), np.array([7, 8, 9], np.float32))
    with open(f"/dev/shm{key}", "rb") as f:
        f.seek(1024 + 100)
        assert np.frombuffer(f.read(12), np.float32).tolist() == [7, 8, 9]
    assert mem.status() == [("r", key, 1024, 2048)]


def test_every_offset_and_size_is_checked(objects):
    mem = SharedMemory(allowed=True)
    mem.register("r", objects(256), 0, 256)
    for offset, size in ((250, 8), (-1, 4), (0, 257), (256, 1)):
        with pytest.raises(InvalidInput, match="does not fit"):
            mem.region("r").check(offset, size)
        with pytest.raises(InvalidInput, match="does not fit"):
            mem.region("r").read(offset, size)
    with pytest.raises(InvalidInput, match="needs 16 bytes"):
        mem.write(Target("r", 0, 8), np.zeros(4, np.float32))
    with pytest.raises(InvalidInput, match="does not fit"):
        mem.write(Target("r", 250, 8), np.zeros(2, np.float32))
    with pytest.raises(InvalidInput, match="holds 256 bytes"):
        mem.register("s", objects(256), 128, 256)


def test_an_object_shrunk_after_registration_is_a_clear_error_not_a_crash(objects):
    key = objects(4096)
    mem = SharedMemory(allowed=True)
    mem.register("r", key, 1024, 2048)
    os.truncate(f"/dev/shm{key}", 0)  # what a careless (or hostile) client does to its own object
    params = {"shared_memory_region": "r", "shared_memory_byte_size": 64, "shared_memory_offset": 16}
    with pytest.raises(InvalidInput) as e:
        mem.input_bytes(params, "input", [4, 4])
    assert "'r'" in str(e.value) and "holds 0 bytes now" in str(e.value) and f"{1024 + 16 + 64} expected" in str(e.value)
    with pytest.raises(InvalidInput, match="holds 0 bytes now"):
        mem.write(Target("r", 0, 64), np.zeros(4, np.float32))
    assert os.path.getsize(f"/dev/shm{key}") == 0  # a refused write does not grow the client's object back
    os.truncate(f"/dev/shm{key}", 1024 + 40)  # shrunk to the middle of a read: a short read, still refused
    with pytest.raises(InvalidInput, match=f"holds {1024 + 40} bytes now"):
        mem.input_bytes(params, "input", [4, 4])
    os.truncate(f"/dev/shm{key}", 4096)  # grown back: served again
    assert bytes(mem.input_bytes(params, "input", [4, 4])) == b"\0" * 64


def test_an_unlinked_or_replaced_object_keeps_serving_the_registered_one(objects):
    key = objects(64)
    with open(f"/dev/shm{key}", "r+b") as f:
        f.write(b"\1" * 64)
    mem = SharedMemory(allowed=True)
    mem.register("r", key, 0, 64)
    os.unlink(f"/dev/shm{key}")
    with open(f"/dev/shm{key}", "wb") as f:  # a new object under the same name
        f.write(b"\2" * 8)
    assert bytes(mem.region("r").read(0, 64)) == b"\1" * 64
    mem.write(Target("r", 0, 4), np.array([0], np.int32))
    assert bytes(mem.region("r").read(0, 8)) == b"\0" * 4 + b"\1" * 4


def test_an_input_is_never_read_past_what_its_shape_can_hold(objects):
    mem = SharedMemory(allowed=True)
    mem.register("r", objects(1 << 20), 0, 1 << 20)
    params = {"shared_memory_region": "r", "shared_memory_byte_size": 1 << 20}
    with pytest.raises(InvalidInput, match=r"input 'input' of shape \[2, 4\] holds at most 64 bytes; shared_memory_byte_size 1048576"):
        mem.input_bytes(params, "input", [2, 4])  # a whole megabyte would be copied for 8 values
    assert len(mem.input_bytes(params, "input", [1024, 128])) == 1 << 20


def test_caps_on_regions_and_registered_bytes(objects):
    mem = SharedMemory(allowed=True, max_regions=2, max_bytes=1000)
    mem.register("a", objects(400), 0, 400)
    with pytest.raises(InvalidInput, match="more than 1000 bytes"):
        mem.register("b", objects(700), 0, 700)
    mem.register("b", objects(500), 0, 500)
    with pytest.raises(InvalidInput, match="at most 2"):
        mem.register("c", objects(10), 0, 10)
    with pytest.raises(RegionExists):
        mem.register("a", objects(10), 0, 10)


def test_parameters_must_come_in_pairs_of_the_right_types():
    assert parse_target({}, "t") is None
    assert parse_target({"shared_memory_region": "r", "shared_memory_byte_size": 8}, "t") == Target("r", 0, 8)
    for params in (
        {"shared_memory_region": "r"},
        {"shared_memory_byte_size": 8},
        {"shared_memory_region": 3, "shared_memory_byte_size": 8},
        {"shared_memory_region": "r", "shared_memory_byte_size": "8"},
        {"shared_memory_region": "r", "shared_memory_byte_size": True},
    ):
        with pytest.raises(InvalidInput, match="tensor 't'"):
            parse_target(params, "t")


def test_unregistering_closes_the_descriptor_and_a_later_use_is_refused(objects):
    mem = SharedMemory(allowed=True)
    mem.register("r", objects(64), 0, 64)
    region = mem.region("r")  # a request that looked the region up just before it went
    fds = len(os.listdir("/proc/self/fd"))
    mem.unregister("r")
    assert len(os.listdir("/proc/self/fd")) == fds - 1
    with pytest.raises(InvalidInput, match="'r' was unregistered"):
        region.read(0, 16)
    with pytest.raises(NotFound):
        mem.unregister("r")
    with pytest.raises(InvalidInput, match="no shared-memory region 'r'"):
        mem.region("r")


def test_only_regular_files_directly_under_dev_shm_are_registered():
    name = f"zoo-unit-{uuid.uuid4().hex[:12]}"
    mem = SharedMemory(allowed=True)
    os.mkfifo(f"/dev/shm/{name}")
    try:  # opened without blocking (no writer needed), then refused for what it is
        with pytest.raises(InvalidInput, match="is not a regular shared-memory file"):
            mem.register("fifo", "/" + name, 0, 8)
    finally:
        os.unlink(f"/dev/shm/{name}")
    os.mkdir(f"/dev/shm/{name}")
    try:
        with pytest.raises(InvalidInput, match="cannot be opened: Is a directory"):
            mem.register("dir", "/" + name, 0, 8)
    finally:
        os.rmdir(f"/dev/shm/{name}")
    os.symlink("/etc/hostname", f"/dev/shm/{name}")
    try:
        with pytest.raises(InvalidInput, match="cannot be opened"):
            mem.register("link", "/" + name, 0, 4)
    finally:
        os.unlink(f"/dev/shm/{name}")
    with pytest.raises(InvalidInput, match=f"no shared-memory object '/{name}'"):
        mem.register("gone", "/" + name, 0, 4)
    assert mem.status() == []


def test_off_unless_allowed():
    mem = SharedMemory(allowed=False)
    for call in (lambda: mem.register("r", "/x", 0, 8), lambda: mem.status(), lambda: mem.unregister("")):
        with pytest.raises(InvalidInput, match="--allow-shared-memory"):
            call()


@pytest.mark.parametrize(
    ("peer", "local"),
    [
        ("ipv4:127.0.0.1:50051", True),
        ("ipv4:127.8.9.10:1", True),
        ("ipv6:[::1]:50051", True),
        ("ipv6:%5B::1%5D:50051", True),  # what grpc really reports for an IPv6 peer
        ("ipv6:%5B::ffff:127.0.0.1%5D:7", True),
        ("ipv6:[0:0:0:0:0:0:0:1]:7", True),
        ("unix:/run/zoo.sock", True),
        ("unix-abstract:zoo", True),
        ("ipv4:10.0.0.2:50051", False),
        ("ipv4:128.0.0.1:1", False),
        ("ipv4:127.evil.example:1", False),
        ("ipv6:%5B::2%5D:50051", False),
        ("ipv6:%5B::ffff:10.0.0.1%5D:7", False),
        ("ipv6:%5Bfe80::1%25eth0%5D:7", False),
        ("ipv4:0.0.0.0:1", False),
        ("", False),
        ("127.0.0.1:5", False),  # not a gRPC peer string
    ],
)
def test_which_grpc_peers_are_on_this_host(peer, local):
    assert is_local_grpc_peer(peer) is local


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.2", True),
        ("unix:/x", True),
        ("10.1.2.3", False),
        ("::", False),
        ("localhost", False),
        ("", False),
        (None, False),
    ],
)
def test_which_http_peers_are_on_this_host(host, local):
    assert is_local(host) is local
