"""The one table from domain errors to HTTP status codes, used by every endpoint at the edge."""

from __future__ import annotations

import logging

from zoo.server.errors import (
    INTERNAL_MESSAGE,
    ControlDisabled,
    InvalidInput,
    ModelNotReady,
    NotAllowed,
    NotFound,
    Overloaded,
    RegionExists,
)

log = logging.getLogger("zoo.server")

# The codes of the gRPC table (grpc_api/status.py) in HTTP terms. ControlDisabled is 403: the request is
# well formed (not 400) and neither a retry nor a credential will help (not 503, not 401); this server's
# model control mode forbids the operation.
STATUS = {
    InvalidInput: 400,
    NotFound: 404,
    RegionExists: 409,
    NotAllowed: 403,
    ModelNotReady: 503,
    Overloaded: 429,
    ControlDisabled: 403,
}
INTERNAL = 500


def status_for(exc: BaseException) -> tuple[int, str]:
    """(status, client-safe message) for an exception; unknown ones are logged and answered 500."""
    for kind, status in STATUS.items():
        if isinstance(exc, kind):
            return status, str(exc)
    # Unexpected: the traceback goes to the log, never to the client (it may hold paths or data).
    log.error("unexpected error", exc_info=exc)
    return INTERNAL, INTERNAL_MESSAGE
