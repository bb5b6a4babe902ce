"""Reading an HTTP request body within a size limit, a deadline and a minimum rate.

aiohttp times out only an idle connection; a body that stalls, or trickles a byte at a time, would hold its
connection (a file descriptor) forever. Here the body must arrive within --http-body-timeout seconds plus one
second per --http-body-min-rate bytes received (Apache's mod_reqtimeout rule): a slow but steady upload of any size
is fine, a stall or a trickle is cut off.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """How much, how long and how slowly a request body may come."""

    max_bytes: int
    max_json: int  # a body of JSON only (no binary tensor data after it) has this lower cap
    timeout_s: float
    min_rate: int  # bytes per second


class BodyError(Exception):
    """A body that was not read: `status` and a message for the client."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


async def read_body(request: web.Request, header_length: str | None, limits: BodyLimits) -> bytearray:
    """The whole body (decompressed, when the client sent Content-Encoding); BodyError when it cannot be had.

    `header_length` is the Inference-Header-Content-Length header: without it the body is all JSON.
    """
    size = request.content_length
    json_size(header_length, size, limits.max_json)  # refused before a byte of it is read
    if size is not None and size > limits.max_bytes:
        raise too_large(limits.max_bytes, "--max-message-bytes", size)
    cap = limits.max_bytes if header_length is not None else min(limits.max_bytes, limits.max_json)
    body = bytearray()
    loop = asyncio.get_running_loop()
    start = loop.time()
    while True:
        deadline = start + limits.timeout_s + len(body) / limits.min_rate
        try:
            if request.content.is_eof():  # all of it has arrived, as a small body's usually has: nothing to wait for
                chunk = request.content.read_nowait()
            else:
                async with asyncio.timeout_at(deadline):
                    chunk = await request.content.readany()
        except TimeoutError:
            raise BodyError(
                408,
                f"the request body came too slowly: {len(body)} bytes in {loop.time() - start:.0f} s; a body must arrive "
                f"within --http-body-timeout ({limits.timeout_s:g} s) plus 1 s per {limits.min_rate} bytes (--http-body-min-rate)",
            ) from None
        except HttpProcessingError as e:  # a chunked or compressed body that does not decode
            raise BodyError(400, f"the request body could not be read: {_kind(e)}") from None
        except Exception as e:
            # zlib's and brotli's own errors reach here from a Content-Encoding the body does not match.
            if isinstance(e, ConnectionError) or "Content-Encoding" not in request.headers:
                raise
            encoding = request.headers["Content-Encoding"][:40]
            raise BodyError(400, f"the request body does not match its Content-Encoding {encoding!r}") from None
        if not chunk:
            json_size(header_length, len(body), limits.max_json)
            return body
        body += chunk
        if len(body) > cap:  # no Content-Length (chunked), or decompressed: counted as read
            json_size(header_length, len(body), limits.max_json)
            raise too_large(limits.max_bytes, "--max-message-bytes")


def too_large(limit: int, flag: str, size: int | None = None, hint: str = "") -> BodyError:
    """413 naming the limit and its flag."""
    got = f" of {size} bytes" if size is not None else ""
    what = "the JSON of the request body" if flag == "--max-json-bytes" else "the request body"
    return BodyError(413, f"{what}{got} is larger than the server's limit of {limit} bytes ({flag}){hint}")


def json_size(header_length: str | None, size: int | None, limit: int) -> None:
    """413 when the JSON of a body is over --max-json-bytes: all of it, or what Inference-Header-Content-Length says."""
    if header_length is not None:
        size = int(header_length) if header_length.isdigit() else None  # not a number: the codec says so
    if size is not None and size > limit:
        raise too_large(
            limit,
            "--max-json-bytes",
            size,
            ": JSON costs the server far more than the bytes it carries, so send large inputs as binary tensor data "
            "(parameters.binary_data_size after the JSON, with the Inference-Header-Content-Length header; tritonclient "
            "does this with set_data_from_numpy(x, binary_data=True)) or over gRPC",
        )


def _kind(e: HttpProcessingError) -> str:
    """What went wrong, without echoing the client's bytes (aiohttp's messages may quote them)."""
    names = {"ContentEncodingError": "it does not match its Content-Encoding", "TransferEncodingError": "its chunked encoding is broken"}
    return names.get(type(e).__name__, "it is not a valid HTTP/1.1 body")
