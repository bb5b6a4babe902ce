"""Bearer-token authentication of every RPC except the server's own health check (which probes call without secrets)."""

from __future__ import annotations

import hmac

import grpc
from grpc_health.v1 import health

OPEN_PREFIX = "/grpc.health.v1.Health/"
STREAMING = {
    "/inference.GRPCInferenceService/ModelStreamInfer",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
}
DENIED = "missing or wrong bearer token: send the metadata 'authorization: Bearer <token>'"


async def _deny_unary(request, context):
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, DENIED)


async def _deny_stream(request_iterator, context):
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, DENIED)
    yield  # pragma: no cover - makes this an async generator, the shape of a streaming handler


class TokenAuth(grpc.aio.ServerInterceptor):
    """Refuses RPCs whose `authorization` metadata is not `Bearer <token>` (compared in constant time)."""

    def __init__(self, token: str):
        self._expected = f"Bearer {token}".encode()
        self._deny_unary = grpc.unary_unary_rpc_method_handler(_deny_unary)
        self._deny_stream = grpc.stream_stream_rpc_method_handler(_deny_stream)

    def authorized(self, metadata) -> bool:
        """Whether the call's metadata carries the token."""
        ok = False
        for key, value in metadata or ():
            if key == "authorization":
                given = value.encode() if isinstance(value, str) else value
                ok = hmac.compare_digest(given, self._expected) or ok
        return ok

    async def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        if method.startswith(OPEN_PREFIX) or self.authorized(handler_call_details.invocation_metadata):
            return await continuation(handler_call_details)
        return self._deny_stream if method in STREAMING else self._deny_unary


class GuardedHealth(health.aio.HealthServicer):
    """grpc.health.v1: the unnamed check (the server's) is open to probes; a named one (a model's) needs the token,
    since its answer tells whether a model of that name exists."""

    def __init__(self) -> None:
        super().__init__()
        self.auth: TokenAuth | None = None  # set once the token is read; None: no token required

    async def _guard(self, request, context) -> None:
        if request.service and self.auth is not None and not self.auth.authorized(context.invocation_metadata()):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, DENIED)

    async def Check(self, request, context):
        await self._guard(request, context)
        return await super().Check(request, context)

    async def Watch(self, request, context):
        await self._guard(request, context)
        return await super().Watch(request, context)
