"""The HTTP connections themselves: a cap below the file-descriptor limit, and aiohttp's own errors as JSON.

aiohttp answers a malformed request line or header itself, in plain text quoting the request; our handler class
answers {"error": ...} and quotes nothing. Each connection holds a file descriptor, shared with gRPC: past the cap
a new connection closes the least recently active one that is not being answered (stalled, trickling or idle),
so slow clients cannot lock new ones out, and gRPC always keeps descriptors of its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
from collections import OrderedDict
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger("zoo.server")
RESERVED_FDS = 64  # model files, the metrics port, the event loop's own: never handed to HTTP connections
BUSY = json.dumps({"error": "the server has too many HTTP connections open, all of them being answered; retry shortly"}).encode()


def default_cap() -> int:
    """Half the process's file-descriptor limit, less a reserve: the other half is gRPC's."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return max(8, soft // 2 - RESERVED_FDS)


class ConnectionCap:
    """Open HTTP connections, least recently active first, and which of them are being answered."""

    def __init__(self, cap: int):
        self.cap = cap
        self.open: OrderedDict[RequestHandler, None] = OrderedDict()
        self.answering: dict[RequestHandler, int] = {}

    def opened(self, handler: RequestHandler) -> bool:
        """Admit a new connection, closing the least recently active idle one past the cap; False: none could go."""
        if len(self.open) >= self.cap:
            victim = next((h for h in self.open if h not in self.answering), None)
            if victim is None:
                return False
            log.info("closed an idle or stalled HTTP connection: %d are open (--http-max-connections)", len(self.open))
            self.closed(victim)
            victim.force_close()
            if victim.transport is not None:
                victim.transport.abort()  # its file descriptor is released now, not after a lingering close
        self.open[handler] = None
        return True

    def closed(self, handler: RequestHandler) -> None:
        self.open.pop(handler, None)
        self.answering.pop(handler, None)

    def begin(self, handler: Any) -> None:
        """A request on this connection was read whole and is being answered: it is not closed for a new one."""
        if handler in self.open:
            self.answering[handler] = self.answering.get(handler, 0) + 1

    def end(self, handler: Any) -> None:
        """Its answer went out: the connection is the most recently active."""
        n = self.answering.pop(handler, 0) - 1
        if n > 0:
            self.answering[handler] = n
        if handler in self.open:
            self.open.move_to_end(handler)


class Handler(RequestHandler):
    """aiohttp's protocol, under the cap, answering its own errors as {"error": ...} without echoing the request."""

    cap: ConnectionCap  # set on the subclass made per server (make_site)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self.cap.opened(self):
            transport.write(_busy_reply())  # type: ignore[attr-defined]
            transport.close()
            return
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.cap.closed(self)
        super().connection_lost(exc)

    def handle_error(
        self, request: Any, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        self.log_exception("Error handling request", exc_info=exc)  # one line, through server.py's filter
        if request.writer.output_size > 0:
            raise ConnectionError("Response is sent already, cannot send another response with the error message")
        resp = web.json_response({"error": _describe(status, exc)}, status=status)
        resp.force_close()
        return resp


def _describe(status: int, exc: BaseException | None) -> str:
    if status >= 500 or not isinstance(exc, HttpProcessingError):
        from zoo.server.errors import INTERNAL_MESSAGE

        return INTERNAL_MESSAGE
    if isinstance(exc, LineTooLong):
        return "malformed HTTP request: a request line or header is longer than the server accepts"
    return f"malformed HTTP request ({type(exc).__name__}): the request line or a header is not valid HTTP/1.1"


def _busy_reply() -> bytes:
    head = f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {len(BUSY)}\r\nConnection: close\r\n\r\n"
    return head.encode() + BUSY


class Site(web.SockSite):
    """A SockSite whose connections are Handlers under `cap`."""

    def __init__(self, runner: web.BaseRunner, sock, cap: ConnectionCap, **kwargs: Any):
        super().__init__(runner, sock, **kwargs)
        self._cap = cap

    async def start(self) -> None:
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None
        handler = type("CappedHandler", (Handler,), {"cap": self._cap})
        # aiohttp's Server makes plain RequestHandlers; ours take the same arguments (its private _kwargs).
        kwargs = server._kwargs  # noqa: SLF001

        def factory() -> Handler:
            return handler(server, loop=asyncio.get_running_loop(), **kwargs)

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(factory, sock=self._sock, ssl=self._ssl_context, backlog=self._backlog)
