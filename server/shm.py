"""Triton's system shared-memory extension: regions a client on the same host registers, read and written in place.

A region is a POSIX shared-memory object under /dev/shm, mapped once at registration. Inputs are numpy views
of the mapping (onnxruntime reads them where they lie); outputs are copied into the client's region. It is a
boundary: only regular files directly under /dev/shm (no symlinks), offsets and sizes checked against the
mapping, a cap on regions and on mapped bytes, and only when the server allows it (--allow-shared-memory).
"""

from __future__ import annotations

import mmap
import os
import re
import stat
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from zoo.core.repository import shown
from zoo.server.errors import InvalidInput, NotFound, RegionExists

SHM_ROOT = "/dev/shm"
REGION, OFFSET, BYTE_SIZE = "shared_memory_region", "shared_memory_offset", "shared_memory_byte_size"
_KEY = re.compile(r"/?[A-Za-z0-9][A-Za-z0-9._-]{0,254}")


@dataclass
class Region:
    """One registered region: the mapping of [0, offset + byte_size) of the shared-memory object."""

    name: str
    key: str
    offset: int
    byte_size: int
    mapping: mmap.mmap

    def view(self, offset: int, byte_size: int) -> memoryview:
        """byte_size bytes at `offset` inside the region; InvalidInput when they do not fit."""
        if offset < 0 or byte_size < 0 or offset + byte_size > self.byte_size:
            raise InvalidInput(
                f"shared-memory region {shown(self.name)} holds {self.byte_size} bytes; offset {offset} + {byte_size} bytes does not fit"
            )
        start = self.offset + offset
        return memoryview(self.mapping)[start : start + byte_size]


@dataclass(frozen=True)
class Target:
    """Where one output goes: a region, an offset in it and the bytes the client set aside."""

    region: str
    offset: int
    byte_size: int


class SharedMemory:
    """The registered regions of this server."""

    def __init__(self, *, allowed: bool, max_regions: int = 64, max_bytes: int = 8 << 30):
        self.allowed = allowed
        self.max_regions = max_regions
        self.max_bytes = max_bytes
        self._regions: dict[str, Region] = {}
        self._lock = threading.Lock()  # registration may come from a worker's control thread too

    def _require(self) -> None:
        if not self.allowed:
            raise InvalidInput("shared memory is off on this server: start it with --allow-shared-memory (clients on the same host only)")

    def register(self, name: str, key: str, offset: int, byte_size: int) -> None:
        """Map `byte_size` bytes at `offset` of the shared-memory object `key` as region `name`."""
        self._require()
        if not name or len(name) > 255:
            raise InvalidInput(f"a region needs a name of 1 to 255 characters; got {shown(name)}")
        if not _KEY.fullmatch(key or ""):
            raise InvalidInput(
                f"shared-memory key {shown(key)} must name an object directly under {SHM_ROOT} "
                "(letters, digits, '.', '_', '-', optionally with a leading '/')"
            )
        if offset < 0 or byte_size <= 0:
            raise InvalidInput(f"region {shown(name)}: offset must be >= 0 and byte_size > 0; got {offset} and {byte_size}")
        with self._lock:
            if name in self._regions:
                raise RegionExists(f"shared-memory region {shown(name)} is already registered; unregister it first")
            if len(self._regions) >= self.max_regions:
                raise InvalidInput(f"at most {self.max_regions} shared-memory regions may be registered; unregister some")
            mapped = sum(r.offset + r.byte_size for r in self._regions.values())
            if mapped + offset + byte_size > self.max_bytes:
                raise InvalidInput(
                    f"registering {offset + byte_size} more bytes would map more than {self.max_bytes} bytes of shared memory"
                )
            self._regions[name] = Region(name, key, offset, byte_size, _map(key, offset + byte_size))

    def unregister(self, name: str = "") -> None:
        """Forget one region ('' : all). A mapping in use by a running request is released when that request ends."""
        self._require()
        with self._lock:
            if not name:
                regions, self._regions = list(self._regions.values()), {}
            elif name in self._regions:
                regions = [self._regions.pop(name)]
            else:
                raise NotFound(f"no shared-memory region {shown(name)} is registered")
        for r in regions:
            try:
                r.mapping.close()
            except BufferError:  # a request still reads it: the mapping goes when its last view does
                pass

    def status(self, name: str = "") -> list[tuple[str, str, int, int]]:
        """(name, key, offset, byte_size) of one region or of all."""
        self._require()
        with self._lock:
            if name and name not in self._regions:
                raise NotFound(f"no shared-memory region {shown(name)} is registered")
            regions = [self._regions[name]] if name else list(self._regions.values())
        return [(r.name, r.key, r.offset, r.byte_size) for r in regions]

    def region(self, name: str) -> Region:
        """A registered region; InvalidInput naming it otherwise (a request refers to it)."""
        r = self._regions.get(name)
        if r is None:
            self._require()
            raise InvalidInput(f"no shared-memory region {shown(name)} is registered: register it with SystemSharedMemoryRegister first")
        return r

    def input_bytes(self, params: dict[str, Any], tensor: str) -> memoryview | None:
        """The bytes of an input that lives in shared memory (per its parameters), or None when it does not."""
        target = parse_target(params, tensor)
        return None if target is None else self.region(target.region).view(target.offset, target.byte_size)

    def write(self, target: Target, array: np.ndarray) -> None:
        """Copy an output into the client's region."""
        view = self.region(target.region).view(target.offset, target.byte_size)
        data = np.ascontiguousarray(array)
        if data.nbytes > target.byte_size:
            raise InvalidInput(
                f"output needs {data.nbytes} bytes; shared-memory region {shown(target.region)} was given {target.byte_size}"
            )
        np.frombuffer(view, dtype=np.uint8, count=data.nbytes)[:] = data.view(np.uint8).reshape(-1)


def parse_target(params: dict[str, Any], tensor: str) -> Target | None:
    """The shared-memory parameters of a tensor, or None; InvalidInput when they are incomplete or malformed."""
    if REGION not in params and BYTE_SIZE not in params:
        return None
    region, size, offset = params.get(REGION), params.get(BYTE_SIZE), params.get(OFFSET, 0)
    if not isinstance(region, str) or region == "" or size is None:
        raise InvalidInput(f"tensor {tensor!r}: shared memory needs both {REGION} (a string) and {BYTE_SIZE} (an integer)")
    if isinstance(size, bool) or isinstance(offset, bool) or not isinstance(size, int) or not isinstance(offset, int):
        raise InvalidInput(f"tensor {tensor!r}: {BYTE_SIZE} and {OFFSET} must be integers")
    return Target(region, offset, size)


def _map(key: str, length: int) -> mmap.mmap:
    """Map the first `length` bytes of /dev/shm/<key>, refusing anything but a regular file that long."""
    path = os.path.join(SHM_ROOT, key.lstrip("/"))
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise InvalidInput(f"no shared-memory object {shown(key)} under {SHM_ROOT}") from None
    except OSError as e:
        raise InvalidInput(f"shared-memory object {shown(key)} cannot be opened: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InvalidInput(f"shared-memory object {shown(key)} is not a regular shared-memory file")
        if st.st_size < length:
            raise InvalidInput(f"shared-memory object {shown(key)} holds {st.st_size} bytes; offset + byte_size is {length}")
        return mmap.mmap(fd, length, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    finally:
        os.close(fd)
