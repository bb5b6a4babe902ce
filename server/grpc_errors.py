"""The one table from domain errors to gRPC status codes, and the decorator applying it at the edge."""

from __future__ import annotations

import functools
import logging

import grpc

from zoo.server.errors import InvalidInput, ModelNotFound, ModelNotReady, Overloaded

log = logging.getLogger(__name__)

STATUS = {
    InvalidInput: grpc.StatusCode.INVALID_ARGUMENT,
    ModelNotFound: grpc.StatusCode.NOT_FOUND,
    ModelNotReady: grpc.StatusCode.UNAVAILABLE,
    Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
}
INTERNAL_MESSAGE = "internal server error; the server log has the details"


def code_for(exc: BaseException) -> grpc.StatusCode:
    """The status code of an exception (INTERNAL for anything not in STATUS)."""
    for kind, code in STATUS.items():
        if isinstance(exc, kind):
            return code
    return grpc.StatusCode.INTERNAL


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """(code, client-safe message) for an exception; unknown ones are logged and answered INTERNAL."""
    code = code_for(exc)
    if code != grpc.StatusCode.INTERNAL:
        return code, str(exc)
    # Unexpected: the traceback goes to the log, never to the client (it may hold paths or data).
    log.error("unexpected error", exc_info=exc)
    return grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE


def grpc_errors(method):
    """Decorate an async unary servicer method: domain errors become status codes via STATUS."""

    @functools.wraps(method)
    async def wrapper(self, request, context):
        try:
            return await method(self, request, context)
        except Exception as e:
            if isinstance(e, grpc.aio.AbortError):
                raise
            code, message = status_for(e)
            await context.abort(code, message)

    return wrapper
