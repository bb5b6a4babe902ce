"""Triton's system shared-memory extension: regions a client on the same host registers, read and written in place.

A region is a POSIX shared-memory object under /dev/shm, opened once at registration. Its descriptor is kept and
tensors move with pread/pwrite on it, never through a mapping: a client that shrinks, truncates, unlinks or
replaces its object afterwards gets an error naming the region (or reads its old object), where a mapping would
kill the server with SIGBUS. It is a boundary: only regular files directly under /dev/shm (no symlinks, FIFOs or
folders), offsets and sizes checked, a cap on regions and on registered bytes, and only when the server allows it
(--allow-shared-memory). Who may use it (clients on this host) is the transports' check (server/locality.py).
"""

from __future__ import annotations

import math
import os
import re
import stat
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zoo.core.contract import TensorSpec
from zoo.core.repository import shown
from zoo.server.errors import InvalidInput, NotAllowed, NotFound, RegionExists

SHM_ROOT = "/dev/shm"
REGION, OFFSET, BYTE_SIZE = "shared_memory_region", "shared_memory_offset", "shared_memory_byte_size"
_KEY = re.compile(r"/?[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
WIDEST = 8  # bytes per element of the widest tensor datatype (FP64, INT64)
REMOTE = "shared memory is for clients on the server's own host; this request came from another one"


@dataclass
class Region:
    """One registered region: bytes [offset, offset + byte_size) of a shared-memory object, by its kept descriptor."""

    name: str
    key: str
    offset: int
    byte_size: int
    fd: int
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def check(self, offset: int, byte_size: int) -> None:
        """InvalidInput when byte_size bytes at `offset` do not fit inside the region."""
        if offset < 0 or byte_size < 0 or offset + byte_size > self.byte_size:
            raise InvalidInput(
                f"shared-memory region {shown(self.name)} holds {self.byte_size} bytes; offset {offset} + {byte_size} bytes does not fit"
            )

    def read(self, offset: int, byte_size: int) -> memoryview:
        """A copy of byte_size bytes at `offset`; InvalidInput when they do not fit or the object has shrunk."""
        self.check(offset, byte_size)
        buf = np.empty(byte_size, np.uint8).data
        start = self.offset + offset
        fd = self._borrow()
        try:
            got = 0
            while got < byte_size:  # one call reads it all from tmpfs; the loop is for the 2 GiB per-call limit
                n = os.preadv(fd, [buf[got:]], start + got)
                if n == 0:
                    raise self._shrunk(fd, start + byte_size)
                got += n
        finally:
            os.close(fd)
        return buf

    def write(self, offset: int, data: np.ndarray) -> None:
        """Copy an array's bytes to `offset`; InvalidInput when they do not fit or the object has shrunk."""
        raw = np.ascontiguousarray(data).data.cast("B")
        self.check(offset, len(raw))
        start = self.offset + offset
        fd = self._borrow()
        try:
            if os.fstat(fd).st_size < start + len(raw):  # writing past the end would grow the client's object
                raise self._shrunk(fd, start + len(raw))
            done = 0
            while done < len(raw):
                done += os.pwritev(fd, [raw[done:]], start + done)
        finally:
            os.close(fd)

    def close(self) -> None:
        """Release the descriptor; a request still reading keeps its own duplicate until it is done."""
        with self._lock:
            fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)

    def _borrow(self) -> int:
        # A duplicate per use: unregistering cannot close a descriptor under a read, nor let its number be reused.
        with self._lock:
            if self.fd < 0:
                raise InvalidInput(f"shared-memory region {shown(self.name)} was unregistered while this request used it")
            return os.dup(self.fd)

    def _shrunk(self, fd: int, need: int) -> InvalidInput:
        size = os.fstat(fd).st_size
        return InvalidInput(
            f"shared-memory region {shown(self.name)}: object {shown(self.key)} holds {size} bytes now, "
            f"{need} expected (offset + byte_size): it shrank after it was registered; register it again"
        )


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

    def guard(self, local: bool) -> None:
        """NotAllowed unless the caller is on this host: every register, status and unregister asks first."""
        if not local:
            raise NotAllowed(REMOTE)

    def for_peer(self, local: bool) -> SharedMemory:
        """The regions as a request from this peer may use them: all of them, or (another host) none at all."""
        return self if local else _Refused(allowed=self.allowed)

    def _require(self) -> None:
        if not self.allowed:
            raise InvalidInput("shared memory is off on this server: start it with --allow-shared-memory (clients on the same host only)")

    def register(self, name: str, key: str, offset: int, byte_size: int) -> None:
        """Open the shared-memory object `key` and register `byte_size` bytes of it at `offset` as region `name`."""
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
            registered = sum(r.offset + r.byte_size for r in self._regions.values())
            if registered + offset + byte_size > self.max_bytes:
                raise InvalidInput(
                    f"registering {offset + byte_size} more bytes would register more than {self.max_bytes} bytes of shared memory"
                )
            self._regions[name] = Region(name, key, offset, byte_size, _open(key, offset + byte_size))

    def unregister(self, name: str = "") -> None:
        """Forget one region ('' : all) and close its descriptor."""
        self._require()
        with self._lock:
            if not name:
                regions, self._regions = list(self._regions.values()), {}
            elif name in self._regions:
                regions = [self._regions.pop(name)]
            else:
                raise NotFound(f"no shared-memory region {shown(name)} is registered")
        for r in regions:
            r.close()

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

    def input_bytes(self, params: dict[str, Any], tensor: str, shape: Sequence[int]) -> memoryview | None:
        """The bytes of an input that lives in shared memory (per its parameters), or None when it does not.

        They are copied out, so more than the tensor's shape can hold (at 8 bytes an element, the widest datatype)
        is refused before anything is read: a client cannot make the server copy a whole large region.
        """
        target = parse_target(params, tensor)
        if target is None:
            return None
        region = self.region(target.region)
        most = WIDEST * math.prod(shape)
        if target.byte_size > most:
            raise InvalidInput(
                f"input {tensor!r} of shape {list(shape)} holds at most {most} bytes; "
                f"{BYTE_SIZE} {target.byte_size} of shared-memory region {shown(target.region)} is more"
            )
        return region.read(target.offset, target.byte_size)

    def write(self, target: Target, array: np.ndarray) -> None:
        """Copy an output into the client's region."""
        region = self.region(target.region)
        if array.nbytes > target.byte_size:
            raise InvalidInput(
                f"output needs {array.nbytes} bytes; shared-memory region {shown(target.region)} was given {target.byte_size}"
            )
        region.check(target.offset, target.byte_size)
        region.write(target.offset, array)

    def check_outputs(self, targets: dict[str, Target], outputs: Iterable[TensorSpec], rows: int) -> None:
        """Before the model runs: each output bound for a region fits the bytes the client gave it, inside the region."""
        for spec in outputs:
            t = targets.get(spec.name)
            if t is not None:
                need = rows * spec.dtype.itemsize * math.prod(spec.shape[1:])
                if t.byte_size < need:
                    raise InvalidInput(
                        f"output {spec.name!r} of {rows} rows needs {need} bytes; {t.byte_size} were given "
                        f"in shared-memory region {t.region!r}"
                    )
                self.region(t.region).check(t.offset, t.byte_size)


class _Refused(SharedMemory):
    """Shared memory as a peer on another host sees it: a tensor that names any region is refused."""

    def region(self, name: str) -> Region:
        raise NotAllowed(f"shared-memory region {shown(name)}: {REMOTE}")


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


def _open(key: str, length: int) -> int:
    """A descriptor of /dev/shm/<key>, refusing anything but a regular file at least `length` bytes long."""
    path = os.path.join(SHM_ROOT, key.lstrip("/"))
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; O_NOFOLLOW: a symlink is refused, not followed.
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
    except BaseException:
        os.close(fd)
        raise
    return fd
