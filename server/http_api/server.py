"""The HTTP server of the v2 REST API on aiohttp: binding, TLS, the bearer token and the error edge.

Bodies are read by body.py (size, deadline and rate), connections kept under a cap by connections.py.

aiohttp's Application serves on the event loop already running (uvloop, beside grpc.aio) with no signal handlers
of its own, so REST and gRPC requests reach the same DataPlane and batch together. Chosen by measurement (1-row
requests from perf_analyzer, JSON and binary, 2 cores): within noise of aiohttp's low-level server with a router
of our own and of uvicorn with a bare ASGI callable, less CPU per request than Starlette and FastAPI. A minimal
hand-written httptools server was 1.3-1.5x faster, but lacked what aiohttp brings (limits, timeouts, back-pressure,
draining, malformed-request handling): not a gap worth owning an HTTP/1.1 implementation for.
"""

from __future__ import annotations

import hmac
import logging
import socket
import ssl

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from zoo.server.browser.endpoints import Browser
from zoo.server.dataplane import DataPlane
from zoo.server.http_api import codec
from zoo.server.http_api.body import BodyError, BodyLimits, read_body
from zoo.server.http_api.connections import ConnectionCap, Site, default_cap
from zoo.server.http_api.routes import OPEN_PATHS, Call, Endpoints, Handler, Reply, error
from zoo.server.http_api.status import status_for
from zoo.server.listen import listen
from zoo.server.settings import ServerSettings, SettingsError

TRACE_HEADERS = ("traceparent", "tracestate")  # W3C trace context: the server's spans join the caller's trace
log = logging.getLogger("zoo.server")
DENIED = "missing or wrong bearer token: send the header 'Authorization: Bearer <token>'"
BACKLOG = 1024


class HttpServer:
    """The v2 REST endpoints on one port: bind() (port taken: OSError), start() after models load, close(grace)."""

    def __init__(self, runner: web.AppRunner, socks: list[socket.socket], tls: ssl.SSLContext | None, cap: ConnectionCap):
        self._runner = runner
        self._socks = socks  # one, or two for `localhost` (IPv4 and IPv6 loopback on one port)
        self._sites = [Site(runner, sock, cap, ssl_context=tls, backlog=BACKLOG) for sock in socks]
        self._started = False
        self.port: int = socks[0].getsockname()[1]

    @classmethod
    async def bind(cls, plane: DataPlane, settings: ServerSettings) -> HttpServer:
        """Listen on settings.host:settings.http_port (0: a free port); connections wait until start()."""
        tls = _tls(settings)
        token = settings.token()
        app = web.Application(middlewares=[_edge(token)], client_max_size=settings.max_message_bytes)
        cap = ConnectionCap(settings.http_max_connections or default_cap())
        limits = BodyLimits(settings.max_message_bytes, settings.max_json_bytes, settings.http_body_timeout, settings.http_body_min_rate)
        # The v2 API for programs, and the model browser (/ and /models/...) for people, behind the same edge.
        for method, path, handler in Endpoints(plane).routes() + Browser(plane, token_required=bool(token)).routes():
            app.router.add_route(method, path, _endpoint(handler, limits, cap))
        runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=settings.grace, keepalive_timeout=settings.connection_idle_timeout
        )
        await runner.setup()
        _quiet_malformed_requests()
        try:
            # Without SO_REUSEPORT a second server on the port fails; only a supervisor's --workers share theirs.
            socks = listen(settings.host, settings.http_port, reuse_port=settings.reuse_port, backlog=BACKLOG)
        except OSError:
            await runner.cleanup()
            raise
        return cls(runner, socks, tls, cap)

    async def start(self) -> None:
        """Start accepting connections."""
        for site in self._sites:
            await site.start()
        self._started = True

    async def close(self, grace: float) -> None:
        """Stop accepting; requests in flight get the grace period (settings.grace, which the server passes)."""
        await self._runner.cleanup()
        if not self._started:
            for sock in self._socks:
                sock.close()


def _edge(token: str):
    """The middleware around every route (the model pages' too, and unknown paths): the token, then errors as JSON."""
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def edge(request: web.Request, handler) -> web.StreamResponse:
        if token and request.rel_url.raw_path not in OPEN_PATHS:
            given = request.headers.get("Authorization", "").encode("utf-8", "replace")
            if not hmac.compare_digest(given, expected):
                resp = _response(error(401, DENIED))
                resp.headers["WWW-Authenticate"] = "Bearer"
                return resp
        try:
            return await handler(request)
        except web.HTTPException as e:  # the router's 404 and 405
            return _routing_error(request, e)
        except Exception as e:
            return _response(error(*status_for(e)))

    return edge


def _endpoint(handler: Handler, limits: BodyLimits, cap: ConnectionCap):
    """An aiohttp handler calling `handler` with the request's path parameters, body and binary-data header."""

    async def endpoint(request: web.Request) -> web.Response:
        header_length = request.headers.get(codec.HEADER_LENGTH)
        body: bytes | bytearray = b""
        if request.can_read_body:
            try:
                body = await read_body(request, header_length, limits)
            except BodyError as e:
                return _response(_reply(e))
            except ConnectionError:  # the client left mid-body: nobody to answer, nothing to trace
                log.info("a client closed its connection while sending a request body")
                return _response(error(400, "the request body ended early"))
        cap.begin(request.protocol)
        try:
            trace = {k: v for k in TRACE_HEADERS if (v := request.headers.get(k))}
            return _response(await handler(Call(request.match_info, body, header_length, request.remote, trace)))
        finally:
            cap.end(request.protocol)

    return endpoint


def _reply(e: BodyError) -> Reply:
    resp = error(e.status, str(e))
    if e.status == 408:
        resp.headers["Connection"] = "close"
    return resp


def _routing_error(request: web.Request, e: web.HTTPException) -> web.Response:
    path = _cut(request.rel_url.raw_path)
    if isinstance(e, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(e.allowed_methods))
        resp = _response(error(405, f"{request.method} is not allowed on {path}; use {allowed}"))
        resp.headers["Allow"] = allowed
        return resp
    if isinstance(e, web.HTTPNotFound):
        return _response(error(404, f"no endpoint {request.method} {path}: the KServe v2 REST API lives under /v2, the model browser at /"))
    return _response(error(e.status, e.reason))


def _response(reply: Reply) -> web.Response:
    return web.Response(status=reply.status, body=reply.body, content_type=reply.content_type, charset=reply.charset, headers=reply.headers)


def _cut(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _one_line(text: str) -> str:
    return _cut(" ".join(text.split()))


def _tls(s: ServerSettings) -> ssl.SSLContext | None:
    if not s.tls_cert:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(s.tls_cert, s.tls_key)
        if s.tls_client_ca:
            ctx.load_verify_locations(s.tls_client_ca)
            ctx.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as e:  # not a port problem (app.py reads OSErrors from bind as one): say so
        raise SettingsError(f"--tls-cert/--tls-key/--tls-client-ca: cannot load them for HTTPS: {e}") from None
    return ctx


class _OneLine(logging.Filter):
    """aiohttp logs a malformed HTTP message (a client's mistake) with a traceback; one warning line is enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.msg, record.args, record.exc_info = "refused a malformed HTTP request: %s", (_one_line(exc.message),), None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def _quiet_malformed_requests() -> None:
    logger = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, _OneLine) for f in logger.filters):
        logger.addFilter(_OneLine())
