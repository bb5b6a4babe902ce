"""The one table from domain errors to gRPC status codes, used by every RPC at the edge."""

from __future__ import annotations

import logging

import grpc

from zoo.server.errors import INTERNAL_MESSAGE, ControlDisabled, InvalidInput, ModelNotReady, NotAllowed, NotFound, Overloaded, RegionExists

log = logging.getLogger("zoo.server")

STATUS = {
    InvalidInput: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    RegionExists: grpc.StatusCode.ALREADY_EXISTS,
    NotAllowed: grpc.StatusCode.PERMISSION_DENIED,
    ModelNotReady: grpc.StatusCode.UNAVAILABLE,
    Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ControlDisabled: grpc.StatusCode.FAILED_PRECONDITION,
}


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
