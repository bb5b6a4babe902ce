"""The shared-memory registry on real /dev/shm objects: mapping, bounds, caps, and unregistering a region in use."""

from __future__ import annotations

import os
import uuid

import numpy as np
import pytest

from zoo.server.errors import InvalidInput, NotFound, RegionExists
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
        os.unlink(f"/dev/shm/{key}")


def test_inputs_are_views_of_the_mapping_and_outputs_land_at_their_offset(objects):
    key = objects(4096)
    mem = SharedMemory(allowed=True)
    mem.register("r", key, 1024, 2048)
    with open(f"/dev/shm{key}", "r+b") as f:  # the client writes its rows at offset 1024 + 16
        f.seek(1024 + 16)
        f.write(np.arange(8, dtype="<f4").tobytes())
    view = mem.input_bytes({"shared_memory_region": "r", "shared_memory_byte_size": 32, "shared_memory_offset": 16}, "input")
    np.testing.assert_array_equal(np.frombuffer(view, np.float32), np.arange(8))
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
            mem.region("r").view(offset, size)
    with pytest.raises(InvalidInput, match="needs 16 bytes"):
        mem.write(Target("r", 0, 8), np.zeros(4, np.float32))
    with pytest.raises(InvalidInput, match="holds 256 bytes"):
        mem.register("s", objects(256), 128, 256)


def test_caps_on_regions_and_mapped_bytes(objects):
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
    for params in ({"shared_memory_region": "r"}, {"shared_memory_byte_size": 8}, {"shared_memory_region": 3, "shared_memory_byte_size": 8},
                   {"shared_memory_region": "r", "shared_memory_byte_size": "8"}, {"shared_memory_region": "r", "shared_memory_byte_size": True}):
        with pytest.raises(InvalidInput, match="tensor 't'"):
            parse_target(params, "t")


def test_unregistering_a_region_in_use_keeps_the_reader_safe(objects):
    mem = SharedMemory(allowed=True)
    mem.register("r", objects(64), 0, 64)
    view = mem.region("r").view(0, 16)  # a request still reads it
    mem.unregister("r")
    assert bytes(view) == b"\0" * 16  # still mapped for the reader
    with pytest.raises(NotFound):
        mem.unregister("r")
    with pytest.raises(InvalidInput, match="no shared-memory region 'r'"):
        mem.region("r")


def test_off_unless_allowed():
    mem = SharedMemory(allowed=False)
    for call in (lambda: mem.register("r", "/x", 0, 8), lambda: mem.status(), lambda: mem.unregister("")):
        with pytest.raises(InvalidInput, match="--allow-shared-memory"):
            call()
