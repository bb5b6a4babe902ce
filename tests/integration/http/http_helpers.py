"""Helpers of the HTTP integration tests: a plain standard-library client and v2 JSON request bodies."""

from __future__ import annotations

import http.client
import json
import ssl
from dataclasses import dataclass
from email.message import Message
from typing import Any

import grpc
import numpy as np

# The HTTP status of each gRPC code (server/http_api/status.py and grpc_api/status.py map the same errors).
HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 403,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
}


@dataclass
class Answer:
    """One HTTP response."""

    status: int
    headers: Message  # case-insensitive get()
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call(port: int, method: str, path: str, body: bytes | str | None = None, headers: dict | None = None, *,
         tls: ssl.SSLContext | None = None, chunked: bool = False, timeout: float = 30) -> Answer:
    """One request on a fresh connection to 127.0.0.1:port (HTTPS with `tls`; `chunked`: body an iterable of chunks)."""
    if tls is not None:
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=tls, timeout=timeout)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body.encode() if isinstance(body, str) else body, headers=headers or {},
                     encode_chunked=chunked)
        r = conn.getresponse()
        return Answer(r.status, r.headers, r.read())
    finally:
        conn.close()


def infer_json(x: np.ndarray, *, nested: bool = True, datatype: str = "FP32", outputs=(), parameters=None,
               request_id: str | None = None) -> dict:
    """A v2 JSON inference request carrying x as `data` (nested lists, or flat)."""
    x = np.asarray(x)
    doc: dict[str, Any] = {"inputs": [{"name": "input", "datatype": datatype, "shape": list(x.shape),
                                       "data": x.tolist() if nested else x.ravel().tolist()}]}
    if outputs:
        doc["outputs"] = [{"name": n} for n in outputs]
    if parameters:
        doc["parameters"] = parameters
    if request_id is not None:
        doc["id"] = request_id
    return doc


def infer(port: int, model: str, doc: dict, *, version: str = "", headers: dict | None = None, **kw) -> Answer:
    """POST a JSON inference request (NaN and Infinity written as Python's json writes them)."""
    path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/infer"
    return call(port, "POST", path, json.dumps(doc), {"Content-Type": "application/json", **(headers or {})}, **kw)


def outputs_of(answer: Answer) -> dict[str, np.ndarray]:
    """A JSON inference response's outputs as numpy arrays."""
    dtypes = {"FP32": np.float32, "INT64": np.int64}
    return {o["name"]: np.asarray(o["data"], dtypes[o["datatype"]]).reshape(o["shape"]) for o in answer.json()["outputs"]}
