"""The v2 REST endpoints: each decodes its request, asks the data plane, and encodes the answer.

Handlers see plain values (path parameters, the body, the one header the protocol defines) and return a Reply,
so server.py only moves bytes. Domain errors raised here become status codes at server.py's error edge.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from zoo.core import contract
from zoo.core.contract import TensorSpec
from zoo.server import statistics
from zoo.server.dataplane import DataPlane
from zoo.server.errors import InvalidInput
from zoo.server.http_api import codec
from zoo.server.http_api.messages import to_json
from zoo.server.locality import is_local
from zoo.server.properties import model_properties

# The protocol's health answer: 200 means true, a 4xx false (Triton answers 400; so do we).
NOT_READY = 400
OPEN_PATHS = frozenset({"/v2/health/live", "/v2/health/ready"})  # probes carry no credentials
DECODE_INLINE_BYTES = 64 * 1024  # larger JSON is decoded on a thread: the event loop keeps serving meanwhile
MODEL = "/v2/models/{name}"
VERSION = "/v2/models/{name}/versions/{version}"


@dataclass(slots=True)
class Call:
    """One request as a handler sees it."""

    params: Mapping[str, str]  # path parameters: name, version
    body: bytes | bytearray = b""
    header_length: str | None = None  # the Inference-Header-Content-Length header
    remote: str | None = None  # the peer's address: shared memory is for peers on this host
    trace: dict[str, str] = field(default_factory=dict)  # the caller's W3C trace context (traceparent, tracestate)

    @property
    def local(self) -> bool:
        """Whether the caller is on this host (loopback or a Unix socket)."""
        return is_local(self.remote)


@dataclass(slots=True)
class Reply:
    """One response: status, body and its content type, extra headers, the charset of a text body."""

    status: int = 200
    body: bytes = b""
    content_type: str | None = codec.JSON_TYPE
    headers: dict[str, str] = field(default_factory=dict)
    charset: str | None = None


Handler = Callable[[Call], Awaitable[Reply]]


def reply(doc: Any, status: int = 200) -> Reply:
    """A JSON reply."""
    return Reply(status, orjson.dumps(doc))


def error(status: int, message: str) -> Reply:
    """The protocol's error reply: {"error": message}."""
    return reply({"error": message}, status)


class Endpoints:
    """Every v2 REST endpoint zoo serves, over one data plane."""

    def __init__(self, plane: DataPlane):
        self.plane = plane

    def routes(self) -> list[tuple[str, str, Handler]]:
        """(method, path, handler): `{name}` and `{version}` are path parameters; each model route has a versioned form."""
        table: list[tuple[str, str, Handler]] = []
        for method, suffix, handler in [
            ("POST", "/infer", self.infer),
            ("GET", "", self.model_metadata),
            ("GET", "/ready", self.model_ready),
            ("GET", "/config", self.model_config),
            ("GET", "/stats", self.statistics),
        ]:
            table += [(method, MODEL + suffix, handler), (method, VERSION + suffix, handler)]
        return table + [
            ("GET", "/v2/health/live", self.live),
            ("GET", "/v2/health/ready", self.ready),
            ("GET", "/v2", self.server_metadata),
            ("GET", "/v2/", self.server_metadata),  # the Open Inference Protocol's OpenAPI file writes it so
            ("GET", "/v2/models/stats", self.statistics),  # a fixed path wins over /v2/models/{name}, as in Triton
            ("POST", "/v2/repository/index", self.index),
            ("POST", "/v2/repository/models/{name}/load", self.load),
            ("POST", "/v2/repository/models/{name}/unload", self.unload),
            ("GET", "/v2/systemsharedmemory/status", self.shm_status),
            ("GET", "/v2/systemsharedmemory/region/{name}/status", self.shm_status),
            ("POST", "/v2/systemsharedmemory/region/{name}/register", self.shm_register),
            ("POST", "/v2/systemsharedmemory/unregister", self.shm_unregister),
            ("POST", "/v2/systemsharedmemory/region/{name}/unregister", self.shm_unregister),
        ]

    # health

    async def live(self, call: Call) -> Reply:
        return reply({"live": True})

    async def ready(self, call: Call) -> Reply:
        ready = self.plane.ready()
        return reply({"ready": ready}, 200 if ready else NOT_READY)

    async def model_ready(self, call: Call) -> Reply:
        name = call.params["name"]
        ready = await self.plane.model_ready(name, call.params.get("version", ""))
        return reply({"name": name, "ready": ready}, 200 if ready else NOT_READY)

    # metadata

    async def server_metadata(self, call: Call) -> Reply:
        name, version, extensions = self.plane.server_metadata()
        return reply({"name": name, "version": version, "extensions": list(extensions)})

    async def model_metadata(self, call: Call) -> Reply:
        name = call.params["name"]
        lv = await self.plane.lookup(name, call.params.get("version", ""))
        return reply(
            {
                "name": name,
                "versions": self.plane.versions(name),
                "platform": contract.PLATFORM,
                "inputs": [_tensor(lv.card.input)],
                "outputs": [_tensor(s) for s in lv.card.outputs],
                "properties": model_properties(lv.card),
            }
        )

    async def model_config(self, call: Call) -> Reply:
        lv = await self.plane.lookup(call.params["name"], call.params.get("version", ""))
        return reply(to_json(self.plane.model_config(lv)))

    async def statistics(self, call: Call) -> Reply:
        rows = self.plane.statistics(call.params.get("name", ""), call.params.get("version", ""))
        return reply(to_json(statistics.message(rows)))

    # repository

    async def index(self, call: Call) -> Reply:
        ready = codec.flag(_options(call.body, '{"ready": true|false}').get("ready", False), "ready")
        rows = await self.plane.index(ready)
        return reply([{"name": n, "version": v, "state": s, "reason": r} for n, v, s, r in rows])

    async def load(self, call: Call) -> Reply:
        _options(call.body, '{"parameters": {...}}')  # parameters (config overrides) are not supported; still checked
        await self.plane.load(call.params["name"])
        return Reply(content_type=None)

    async def unload(self, call: Call) -> Reply:
        _options(call.body, '{"parameters": {...}}')
        await self.plane.unload(call.params["name"])
        return Reply(content_type=None)

    # system shared memory (clients on this host only), as Triton serves it over HTTP

    async def shm_status(self, call: Call) -> Reply:
        self.plane.shm.guard(call.local)
        rows = self.plane.shm.status(call.params.get("name", ""))
        return reply([{"name": n, "key": k, "offset": o, "byte_size": b} for n, k, o, b in rows])

    async def shm_register(self, call: Call) -> Reply:
        self.plane.shm.guard(call.local)
        expected = '{"key": "/name", "offset": 0, "byte_size": N}'
        doc = _options(call.body, expected)
        key, offset, size = doc.get("key"), doc.get("offset", 0), doc.get("byte_size")
        if not isinstance(key, str) or type(offset) is not int or type(size) is not int:
            raise InvalidInput(f"expected a JSON object {expected}; got key {key!r}, offset {offset!r}, byte_size {size!r}")
        self.plane.register_region(call.params["name"], key, offset, size)
        return Reply(content_type=None)

    async def shm_unregister(self, call: Call) -> Reply:
        self.plane.shm.guard(call.local)
        self.plane.unregister_region(call.params.get("name", ""))
        return Reply(content_type=None)

    # inference

    async def infer(self, call: Call) -> Reply:
        shm = self.plane.shm.for_peer(call.local)  # a tensor naming a region: this host only
        if len(call.body) > DECODE_INLINE_BYTES:
            request = await asyncio.to_thread(codec.decode, call.body, call.header_length, shm)
        else:
            request = codec.decode(call.body, call.header_length, shm)
        result = await self.plane.infer(request.request(call.params["name"], call.params.get("version", ""), call.trace))
        body, json_length = codec.encode(result, request)
        if json_length is None:
            return Reply(body=body)
        return Reply(body=body, content_type=codec.BINARY_TYPE, headers={codec.HEADER_LENGTH: str(json_length)})


def _tensor(spec: TensorSpec) -> dict[str, Any]:
    return {"name": spec.name, "datatype": spec.datatype, "shape": list(spec.shape)}


def _options(body: bytes | bytearray, expected: str) -> dict[str, Any]:
    """The optional JSON object of a repository request (an empty body: none)."""
    if not body.strip():
        return {}
    doc = codec.parse_json(body, f"a JSON object {expected}, or no body")
    if not isinstance(doc, dict):
        raise InvalidInput(f"expected a JSON object {expected}, or no body; got a JSON {codec.json_type(doc)}")
    return doc
