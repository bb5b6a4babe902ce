"""The HTTP server of the v2 REST API on aiohttp: binding, TLS, the bearer token, body limits and the error edge.

aiohttp serves on the event loop already running (uvloop, beside grpc.aio) without signal handlers of its own,
so REST and gRPC requests reach the same DataPlane and batch together. aiohttp was chosen by measurement over
Starlette on uvicorn and a hand-written httptools server (numbers in the change that introduced this package).
"""

from __future__ import annotations

import hmac
import socket
import ssl

from aiohttp import web

from zoo.server.dataplane import DataPlane
from zoo.server.http_api import codec
from zoo.server.http_api.routes import OPEN_PATHS, Call, Endpoints, Handler, Reply, error
from zoo.server.http_api.status import status_for
from zoo.server.settings import ServerSettings, SettingsError

DENIED = "missing or wrong bearer token: send the header 'Authorization: Bearer <token>'"
BACKLOG = 1024


class HttpServer:
    """The v2 REST endpoints on one port: bind() (port taken: OSError), start() after models load, close(grace)."""

    def __init__(self, runner: web.AppRunner, sock: socket.socket, tls: ssl.SSLContext | None):
        self._runner = runner
        self._sock = sock
        self._site = web.SockSite(runner, sock, ssl_context=tls, backlog=BACKLOG)
        self._started = False
        self.port: int = sock.getsockname()[1]

    @classmethod
    async def bind(cls, plane: DataPlane, settings: ServerSettings) -> "HttpServer":
        """Listen on settings.host:settings.http_port (0: a free port); connections wait until start()."""
        tls = _tls(settings)
        app = web.Application(middlewares=[_edge(settings.token())], client_max_size=settings.max_message_bytes)
        for method, path, handler in Endpoints(plane).routes():
            app.router.add_route(method, path, _endpoint(handler, settings.max_message_bytes))
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=settings.grace,
                               keepalive_timeout=settings.connection_idle_timeout)
        await runner.setup()
        try:
            sock = _listen(settings.host, settings.http_port)
        except OSError:
            await runner.cleanup()
            raise
        return cls(runner, sock, tls)

    async def start(self) -> None:
        """Start accepting connections."""
        await self._site.start()
        self._started = True

    async def close(self, grace: float) -> None:
        """Stop accepting; requests in flight get up to the grace period given at bind (settings.grace)."""
        await self._runner.cleanup()
        if not self._started:
            self._sock.close()


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=BACKLOG)


def _tls(s: ServerSettings) -> ssl.SSLContext | None:
    if not s.tls_cert:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(s.tls_cert, s.tls_key)
        if s.tls_client_ca:
            ctx.load_verify_locations(s.tls_client_ca)
            ctx.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as e:  # an OSError here is not a port problem: say which file
        raise SettingsError(f"--tls-cert/--tls-key/--tls-client-ca: cannot load for HTTPS: {e}") from None
    return ctx


def _response(reply: Reply) -> web.Response:
    return web.Response(status=reply.status, body=reply.body, content_type=reply.content_type, headers=reply.headers)


def _endpoint(handler: Handler, limit: int):
    """An aiohttp handler calling `handler` with the request's path parameters, body and binary-data header."""

    async def endpoint(request: web.Request) -> web.Response:
        body = b""
        if request.can_read_body:
            size = request.content_length
            if size is not None and size > limit:  # refused before a byte of it is read
                return _response(_too_large(limit, size))
            try:
                body = await request.read()
            except web.HTTPRequestEntityTooLarge:  # no Content-Length (chunked, or compressed): counted while read
                return _response(_too_large(limit))
        call = Call(request.match_info, body, request.headers.get(codec.HEADER_LENGTH))
        return _response(await handler(call))

    return endpoint


def _too_large(limit: int, size: int | None = None) -> Reply:
    got = f" of {size} bytes" if size is not None else ""
    return error(413, f"the request body{got} is larger than the server's limit of {limit} bytes (--max-message-bytes)")


def _edge(token: str):
    """The middleware around every route (the model pages' too): the bearer token, then errors as JSON."""
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def edge(request: web.Request, handler) -> web.StreamResponse:
        if token and request.path not in OPEN_PATHS:
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


def _routing_error(request: web.Request, e: web.HTTPException) -> web.Response:
    path = request.path if len(request.path) <= 200 else request.path[:200] + "..."
    if isinstance(e, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(e.allowed_methods))
        resp = _response(error(405, f"{request.method} is not allowed on {path}; use {allowed}"))
        resp.headers["Allow"] = allowed
        return resp
    if isinstance(e, web.HTTPNotFound):
        return _response(error(404, f"no endpoint {request.method} {path}: the KServe v2 REST API lives under /v2"))
    return _response(error(e.status, e.text or e.reason))
